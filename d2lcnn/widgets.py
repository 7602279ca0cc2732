"""Training panel: change a chapter's settings, re-train with one click, compare runs.

Built from core ipywidgets only (the API shared by 7.6+ and 8, so Colab works). A run
goes through the same ``load_data_fashion_mnist`` and ``train_ch6`` as notebook cells,
in a background thread: widget callbacks (the Stop click) arrive on the kernel's main
thread, which stays free while the worker trains, and ``train_ch6`` checks the Stop
event at every batch boundary. Constructing or displaying a panel trains nothing.
"""

from __future__ import annotations

import html
import io
import math
import threading
import time
import traceback
from dataclasses import dataclass, field
from types import SimpleNamespace

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from .train import History

__all__ = ["PanelRun", "TrainingPanel", "draw_runs"]

BATCH_SIZES = (16, 32, 64, 128, 256, 512)
NATIVE_SIZE = 28  # Fashion-MNIST's own resolution: no resize needed
DATA_KEYS = ("subset", "test_subset", "source", "root", "seed")  # go to the loader
TRAIN_KEYS = ("precision", "channels_last")  # go to train_ch6
SERIES = {"train loss": ("C0", "-"), "train acc": ("m", "--"), "test acc": ("g", "-.")}
MAX_OVERLAID = 6  # more faded curves than this turn the plot into noise
CELL = "padding:1px 8px;text-align:right"  # runs-table cells: numbers line up
STATUS_COLORS = {"completed": "green", "stopped": "darkorange", "running": "steelblue"}


@dataclass
class PanelRun:
    """One click on Train: the settings, the curves, and how it ended.

    ``status`` is a History status (``completed``, ``stopped``, ``diverged``,
    ``out_of_memory``), ``running``, or ``error`` when something raised; ``error`` then
    holds the full traceback.

    Example:
        >>> run = PanelRun(1, {"lr": 0.1})
        >>> run.add_point("train loss", 0.5, 1.2); run.final("train loss")
        1.2
    """

    number: int
    settings: dict
    history: History | None = None
    status: str = "running"
    message: str = ""
    error: str = ""
    wall_time: float = 0.0
    points: dict = field(default_factory=lambda: {name: ([], []) for name in SERIES})

    def add_point(self, series: str, x: float, y: float) -> None:
        xs, ys = self.points[series]
        xs.append(x)
        ys.append(y)

    def final(self, series: str) -> float | None:
        ys = self.points[series][1]
        return ys[-1] if ys else None

    @property
    def examples_per_sec(self) -> float | None:
        speeds = getattr(self.history, "examples_per_sec", None)
        return sum(speeds) / len(speeds) if speeds else None


class _RunPlot:
    """The animator the panel gives ``train_ch6``: records points, redraws throttled."""

    def __init__(self, panel: TrainingPanel, run: PanelRun):
        self.panel, self.run = panel, run

    def add(self, x, ys) -> None:
        for name, y in zip(SERIES, ys):
            if y is not None:
                self.run.add_point(name, x, y)
        self.panel._show_progress(self.run, x)

    def finish(self, title=None) -> None:
        pass  # the panel redraws once the run's status is known


def draw_runs(runs: list[PanelRun], *, overlay: bool = True) -> Figure:
    """Loss and accuracy of the newest run, earlier runs faded behind it.

    Example:
        >>> run = PanelRun(1, {}); run.add_point("test acc", 1, 0.7)
        >>> len(draw_runs([run]).axes)
        2
    """
    fig = Figure(figsize=(9, 2.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    shown = runs[-MAX_OVERLAID:] if overlay else runs[-1:]
    for run in shown:
        newest = run is runs[-1]
        for name, (color, style) in SERIES.items():
            xs, ys = run.points[name]
            ax = ax_loss if name == "train loss" else ax_acc
            label = name if newest else None
            alpha, width = (1.0, 1.8) if newest else (0.25, 1.0)
            ax.plot(xs, ys, style, color=color, alpha=alpha, lw=width, label=label)
            if not newest and name == "test acc" and xs:
                ax.annotate(f"#{run.number}", (xs[-1], ys[-1]), fontsize=7, alpha=0.6)
    epochs = max([1] + [run.settings.get("num_epochs", 1) for run in shown])
    for ax, ylabel in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlim(0, epochs)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines and any(line.get_label()[0] != "_" for line in ax.lines):
            ax.legend(loc="best", fontsize=8)
    ax_acc.set_ylim(0, 1)
    if runs:
        ax_acc.set_title(f"run #{runs[-1].number}: {runs[-1].status}", fontsize=9)
        if overlay and len(shown) > 1:
            ax_loss.set_title("earlier runs faded", fontsize=9)
    fig.tight_layout()
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


class TrainingPanel:
    """Sliders for batch size, epochs, resolution, lr; Train/Stop; curves; runs table.

    Args:
        make_net: called with the chosen settings (a namespace: ``batch_size``,
            ``num_epochs``, ``lr``, ``resize`` as a side length, each knob, and the
            other ``defaults``); returns a fresh net built for that resolution.
        defaults: a dict or namespace (e.g. a profile from ``choose_profile``) with
            ``lr``, ``num_epochs``, ``batch_size`` and optionally ``resize``; its
            ``subset``/``test_subset``/``source``/``root``/``seed`` go to the loader,
            ``precision``/``channels_last`` to ``train_ch6``.
        knobs: extra model settings as ``{name: [choices]}``, e.g. ``{"width_mult":
            [0.25, 0.5, 1.0]}``; defaults come from ``defaults`` or the first choice.
        load_data: replaces ``load_data_fashion_mnist(batch_size, resize, **data)``.
        background: train in a worker thread (keeps Stop responsive); ``False`` trains
            inside the click, for scripts.

    Example:
        >>> from torch import nn
        >>> panel = TrainingPanel(
        ...     lambda s: nn.Sequential(nn.Flatten(), nn.LazyLinear(10)),
        ...     defaults=dict(lr=0.1, num_epochs=2, batch_size=64))
        >>> panel.num_epochs.value, panel.runs
        (2, [])
    """

    def __init__(
        self,
        make_net,
        *,
        defaults,
        knobs: dict | None = None,
        batch_sizes=BATCH_SIZES,
        max_epochs: int | None = None,
        max_resize: int = 224,
        lr_range: tuple[float, float] = (1e-4, 10.0),
        channels: int = 1,
        device=None,
        load_data=None,
        background: bool = True,
        min_interval: float = 0.5,
        title: str = "Training panel",
    ):
        if not callable(make_net):
            raise TypeError(
                f"make_net must be a function of the settings, got {make_net!r}"
            )
        self.make_net = make_net
        self.defaults = self._check_defaults(defaults)
        self.knob_choices = self._check_knobs(knobs, self.defaults)
        self.channels = channels
        self.background = background
        self.min_interval = min_interval
        self._device = device
        self._load_data = load_data
        self.runs: list[PanelRun] = []
        self.last_error = ""  # full traceback of the newest failure
        self.net = None  # the net of the newest run, to inspect after training
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._draw_lock = threading.Lock()
        self._last_draw = -math.inf
        self._probes: dict = {}  # (resize, knobs) -> (net or None, error text)
        self._problems: dict = {}  # (resize, knobs) -> why the net cannot take it
        self._cost_texts: dict = {}  # (resize, knobs) -> "parameters · FLOPs" text
        self._min_sizes: dict = {}  # knobs -> smallest side the net takes
        self._estimates: dict = {}  # settings -> (seconds per example, timed batch)
        self._num_train = self.defaults.get("subset")
        self._build_controls(batch_sizes, max_epochs, max_resize, lr_range, title)
        self._update_min_size()
        self._update_info()
        self._update_table()
        self._redraw(force=True)

    # ------------------------------------------------------------------ controls

    @staticmethod
    def _check_defaults(defaults) -> dict:
        values = dict(
            vars(defaults) if isinstance(defaults, SimpleNamespace) else defaults
        )
        missing = [
            key for key in ("lr", "num_epochs", "batch_size") if key not in values
        ]
        if missing:
            raise ValueError(
                f"defaults must set lr, num_epochs and batch_size; missing {missing}, "
                f"e.g. defaults=dict(lr=0.1, num_epochs=10, batch_size=256)"
            )
        if values.get("resize") is None:
            values["resize"] = NATIVE_SIZE
        for key in ("num_epochs", "batch_size", "resize"):
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"defaults[{key!r}] must be a positive int, got {value!r}"
                )
        lr = values["lr"]
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
            raise ValueError(
                f"defaults['lr'] must be a number > 0 (e.g. 0.1), got {lr!r}"
            )
        return values

    @staticmethod
    def _check_knobs(knobs, defaults: dict) -> dict:
        choices = {name: list(options) for name, options in (knobs or {}).items()}
        for name, options in choices.items():
            if not options:
                raise ValueError(f"knob {name!r} needs at least one choice, got none")
            if name in defaults and defaults[name] not in options:
                raise ValueError(
                    f"defaults[{name!r}]={defaults[name]!r} is not one of the knob's "
                    f"choices {options}; add it to knobs[{name!r}]"
                )
        return choices

    def _build_controls(self, batch_sizes, max_epochs, max_resize, lr_range, title):
        d = self.defaults
        style = {"description_width": "90px"}
        sizes = sorted(set(batch_sizes) | {d["batch_size"]})
        self.batch_size = widgets.Dropdown(
            options=sizes, value=d["batch_size"], description="batch size", style=style
        )
        self.num_epochs = widgets.IntSlider(
            value=d["num_epochs"],
            min=1,
            max=max_epochs or max(20, 2 * d["num_epochs"]),
            description="epochs",
            style=style,
        )
        self.resize = widgets.IntSlider(
            value=d["resize"],
            min=1,
            max=max(max_resize, d["resize"]),
            description="resolution",
            style=style,
        )
        # the browser snaps the value to min + k * step: put the default on that grid
        step, exponent = 0.1, math.log10(d["lr"])
        low, high = (math.log10(v) for v in lr_range)
        low, high = min(low, exponent), max(high, exponent)
        self.lr = widgets.FloatLogSlider(
            value=d["lr"],
            base=10,
            min=exponent - math.ceil(round((exponent - low) / step, 6)) * step,
            max=exponent + math.ceil(round((high - exponent) / step, 6)) * step,
            step=step,
            readout_format=".3g",
            description="learning rate",
            style=style,
        )
        self.knobs = {
            name: widgets.Dropdown(
                options=choices,
                value=d.get(name, choices[0]),
                description=name,
                style=style,
            )
            for name, choices in self.knob_choices.items()
        }
        self.train_button = widgets.Button(
            description="Train", button_style="success", icon="play"
        )
        self.stop_button = widgets.Button(
            description="Stop", button_style="danger", icon="stop", disabled=True
        )
        self.measure_button = widgets.Button(
            description="Time an epoch", tooltip="a few measured steps"
        )
        self.overlay = widgets.Checkbox(
            value=True, description="overlay earlier runs", indent=False
        )
        self.info = widgets.HTML()
        self.status = widgets.HTML("Ready: change the settings, then press Train.")
        self.error = widgets.HTML()
        self.plot = widgets.Image(
            format="png", layout=widgets.Layout(max_width="760px")
        )
        self.table = widgets.HTML()

        self.train_button.on_click(lambda _: self.train())
        self.stop_button.on_click(lambda _: self.stop())
        self.measure_button.on_click(lambda _: self.measure())
        self.overlay.observe(lambda _: self._redraw(force=True), names="value")
        for control in self._controls():
            control.observe(self._on_change, names="value")
        for knob in self.knobs.values():
            knob.observe(lambda _: self._update_min_size(), names="value")

        settings = widgets.VBox(self._controls())
        buttons = widgets.VBox(
            [self.train_button, self.stop_button, self.measure_button, self.overlay]
        )
        self.widget = widgets.VBox(
            [
                widgets.HTML(f"<b>{html.escape(title)}</b>"),
                widgets.HBox([settings, buttons]),
                self.info,
                self.status,
                self.error,
                self.plot,
                self.table,
            ]
        )

    def _controls(self) -> list:
        return [
            self.batch_size,
            self.num_epochs,
            self.resize,
            self.lr,
            *self.knobs.values(),
        ]

    def settings(self) -> SimpleNamespace:
        """The chosen settings, as ``make_net`` receives them."""
        values = dict(self.defaults)
        lr = float(f"{self.lr.value:.6g}")  # 0.3, not the slider's 0.30000000000000004
        values.update(
            batch_size=self.batch_size.value,
            num_epochs=self.num_epochs.value,
            lr=lr,
            resize=self.resize.value,
        )
        values.update({name: knob.value for name, knob in self.knobs.items()})
        return SimpleNamespace(**values)

    def _knob_key(self, settings) -> tuple:
        return tuple(getattr(settings, name) for name in self.knobs)

    # ------------------------------------------------------------- derived info

    def _probe(self, settings):
        """The net for these settings on the meta device, cached."""
        key = (settings.resize, self._knob_key(settings))
        if key not in self._probes:
            try:
                with torch.device("meta"):
                    net = self.make_net(settings)
                self._probes[key] = (net, "")
            except Exception as error:  # shown in the info line; a run shows it again
                self._probes[key] = (
                    None,
                    f"make_net failed: {type(error).__name__}: {error}",
                )
        return self._probes[key]

    def _update_min_size(self) -> None:
        from .summary import min_input_size

        settings = self.settings()
        key = self._knob_key(settings)
        if key not in self._min_sizes:
            net, _ = self._probe(settings)
            try:
                self._min_sizes[key] = min_input_size(net, self.channels) if net else 1
            except Exception:  # the check before training reports the real problem
                self._min_sizes[key] = 1
        smallest = self._min_sizes[key]
        raised = self.resize.value < smallest
        self.resize.max = max(self.resize.max, smallest)
        self.resize.min = smallest  # clamps the value up: the bound is visible
        if raised:
            self.status.value = (
                f"Resolution raised to {smallest}, the smallest input this net takes."
            )

    def check(self, settings=None) -> str:
        """Why the net cannot take these settings ('' when it can); cheap, cached.

        Example:
            >>> from torch import nn
            >>> panel = TrainingPanel(lambda s: nn.Sequential(nn.Conv2d(1, 2, 5)),
            ...                       defaults=dict(lr=0.1, num_epochs=1, batch_size=8))
            >>> panel.check()
            ''
        """
        from .summary import check_input_shape

        settings = settings or self.settings()
        key = (settings.resize, self._knob_key(settings))
        if key not in self._problems:
            net, _ = self._probe(settings)
            problem = ""  # other failures are not shape problems: a run shows them
            if net is not None:
                shape = (1, self.channels, settings.resize, settings.resize)
                try:
                    check_input_shape(net, shape)
                except ValueError as error:  # ShapeError names the layer and the fix
                    problem = (
                        f"resolution {settings.resize}x{settings.resize} does not fit "
                        f"this net: {error}"
                    )
                except Exception:
                    pass
            self._problems[key] = problem
        return self._problems[key]

    def _on_change(self, _change=None) -> None:
        self._update_info()

    def _update_info(self) -> None:
        settings = self.settings()
        r, c = settings.resize, self.channels
        resized = " (Fashion-MNIST resized from 28x28)" if r != NATIVE_SIZE else ""
        parts = [f"input {c}x{r}x{r}{resized}"]
        _, error = self._probe(settings)
        problem = error or self.check(settings)
        if problem:
            text = html.escape(problem)
            self.info.value = (
                f"{parts[0]} · <span style='color:firebrick'>{text}</span>"
            )
            return
        parts.append(self._costs(settings))
        estimate = self._estimates.get(self._speed_key(settings))
        if estimate is None:
            parts.append("time per epoch: press <i>Time an epoch</i>")
        else:
            (per_example, batch), n = estimate, self._num_train or 60_000
            parts.append(
                f"≈ {per_example * n:.3g} s per epoch of {n:,} images on "
                f"{self.device} (2 timed steps of {batch}; training only)"
            )
        self.info.value = " · ".join(parts)

    def _costs(self, settings) -> str:
        """Parameters and FLOPs per image, cached (a FLOP count traces the net)."""
        from .summary import count_flops, count_params

        key = (settings.resize, self._knob_key(settings))
        if key not in self._cost_texts:
            net, _ = self._probe(settings)
            r, c = settings.resize, self.channels
            try:
                self._cost_texts[key] = (
                    f"{_si(count_params(net))} parameters · "
                    f"{_si(count_flops(net, (1, c, r, r)))} FLOPs per image"
                )
            except Exception as error:
                self._cost_texts[key] = f"costs unavailable ({type(error).__name__})"
        return self._cost_texts[key]

    @property
    def device(self) -> torch.device:
        from .devices import best_device

        return torch.device(self._device) if self._device is not None else best_device()

    def _speed_key(self, settings) -> tuple:
        return (
            settings.batch_size,
            settings.resize,
            self._knob_key(settings),
            str(self.device),
            settings.__dict__.get("precision", "fp32"),
        )

    def measure(self) -> bool:
        """Time a few training steps on a random batch to estimate the epoch time."""
        settings = self.settings()
        problem = self.check(settings)
        if problem:
            self.status.value = html.escape(problem)
            return False
        before = self.status.value  # a run's result stays on show after the timing
        return self._start(
            lambda: self._measure_job(settings, before), "Timing a few steps..."
        )

    def _measure_job(self, settings, status: str) -> None:
        device = self.device
        # a CPU step at 224x224 can take seconds: time a small batch and scale
        batch = (
            settings.batch_size
            if device.type != "cpu"
            else min(settings.batch_size, 16)
        )
        try:
            net = self.make_net(settings).to(device)
            X = torch.rand(
                batch, self.channels, settings.resize, settings.resize, device=device
            )
            y = torch.randint(0, 10, (batch,), device=device)
            with torch.no_grad():
                net(X)  # materialises lazy layers before the optimizer sees them
            optimizer = torch.optim.SGD(net.parameters(), lr=settings.lr)
            elapsed = []
            for _ in range(3):  # the first step warms up (allocations, kernels)
                start = time.perf_counter()
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(net(X), y).backward()
                optimizer.step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                elapsed.append(time.perf_counter() - start)
            per_example = min(elapsed[1:]) / batch
            self._estimates[self._speed_key(settings)] = (per_example, batch)
            self.status.value = status
        except Exception as error:
            self._show_error("timing a step", error)
        self._update_info()

    # ------------------------------------------------------------------ running

    @property
    def busy(self) -> bool:
        """True while a run or a timing is in progress."""
        return self._busy

    def train(self) -> PanelRun | None:
        """Start a run with the chosen settings (what the Train button does)."""
        if self._busy:
            self.status.value = "A run is in progress: press Stop first."
            return None
        settings = self.settings()
        problem = self.check(settings)
        if problem:
            self.status.value = (
                f"<span style='color:firebrick'>Not started: "
                f"{html.escape(problem)}</span>"
            )
            return None
        run = PanelRun(len(self.runs) + 1, dict(vars(settings)))
        self.runs.append(run)
        self.error.value = ""
        self._stop_event.clear()
        self._update_table()
        self._start(
            lambda: self._train_job(run, settings), f"Run #{run.number}: starting..."
        )
        return run

    def stop(self) -> None:
        """Ask the current run to end at the next batch boundary (the Stop button)."""
        if self._busy:
            self._stop_event.set()
            self.status.value = "Stopping at the next batch..."

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is done (for tests and scripts); True if it is.

        Do not call it in a notebook cell while you want Stop to work: the kernel
        handles the click only once the cell has finished.
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self._busy

    def _start(self, job, message: str) -> bool:
        if self._busy:
            return False
        self._busy = True
        self._set_buttons(running=True)
        self.status.value = html.escape(message)

        def guarded():
            try:
                job()
            finally:
                self._busy = False
                self._set_buttons(running=False)

        if self.background:
            self._thread = threading.Thread(
                target=guarded, name="d2lcnn-panel", daemon=True
            )
            self._thread.start()
        else:
            guarded()
        return True

    def _set_buttons(self, running: bool) -> None:
        self.train_button.disabled = running
        self.measure_button.disabled = running
        self.stop_button.disabled = not running

    def _train_job(self, run: PanelRun, settings) -> None:
        from .train import train_ch6

        start = time.perf_counter()
        stage = "building the net (make_net)"
        try:
            self.net = net = self.make_net(settings)
            stage = "loading the data"
            train_iter, test_iter = self._data(settings)
            stage = "training"
            extra = {
                key: self.defaults[key] for key in TRAIN_KEYS if key in self.defaults
            }
            history = train_ch6(
                net,
                train_iter,
                test_iter,
                settings.num_epochs,
                settings.lr,
                self.device,
                animator=_RunPlot(self, run),
                stop=self._stop_event,
                verbose=False,
                progress=False,
                **extra,
            )
            run.history, run.status, run.message = (
                history,
                history.status,
                history.message,
            )
        except Exception as error:
            run.history = getattr(error, "history", None)
            run.status = "error"
            run.error = traceback.format_exc()  # kept with the run: never lost
            run.message = f"{stage} failed: {type(error).__name__}: {error}"
            self._show_error(stage, error)
        run.wall_time = time.perf_counter() - start
        self._redraw(force=True)
        self._update_table()
        self.status.value = self._summary(run)
        self._update_info()

    def _data(self, settings):
        resize = None if settings.resize == NATIVE_SIZE else settings.resize
        data = {key: self.defaults[key] for key in DATA_KEYS if key in self.defaults}
        if self._load_data is not None:
            return self._load_data(settings.batch_size, resize, **data)
        from .data import load_data_fashion_mnist

        iters = load_data_fashion_mnist(
            settings.batch_size, resize, verbose=False, **data
        )
        self._num_train = getattr(iters[0], "num_examples", self._num_train)
        return iters

    # ------------------------------------------------------------------ display

    def _show_progress(self, run: PanelRun, x: float) -> None:
        loss, acc = run.final("train loss"), run.final("train acc")
        test = run.final("test acc")
        epochs = run.settings["num_epochs"]
        text = f"Run #{run.number} training: {x:.2f} of {epochs} epochs done"
        if loss is not None:
            text += f", loss {loss:.3f}, train acc {acc:.3f}"
        if test is not None:
            text += f", test acc {test:.3f}"
        if not self._stop_event.is_set():
            self.status.value = html.escape(text)
        self._redraw()

    def _redraw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < self.min_interval:
            return
        with self._draw_lock:  # the worker and the main thread may both draw
            self._last_draw = now
            self.plot.value = _png(draw_runs(self.runs, overlay=self.overlay.value))

    def _show_error(self, stage: str, error: Exception) -> None:
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        self.last_error = "".join(lines)
        summary = "".join(lines[-4:])  # the innermost frames and the message
        self.error.value = (
            f"<div style='color:firebrick'><b>{html.escape(stage)} failed</b> "
            f"(the panel is still usable; full traceback: panel.last_error)"
            f"<pre style='font-size:11px'>{html.escape(summary)}</pre></div>"
        )

    def _summary(self, run: PanelRun) -> str:
        color = STATUS_COLORS.get(run.status, "firebrick")
        text = f"Run #{run.number} {run.status} after {run.wall_time:.1f} s"
        if run.final("test acc") is not None:
            text += f": test acc {run.final('test acc'):.3f}"
        if run.status == "stopped":  # train_ch6's hint to continue is for cells
            epochs = len(run.history)
            text += (
                f". {epochs} full epoch{'s' * (epochs != 1)} kept in "
                f"panel.runs[{run.number - 1}].history, the net in panel.net"
            )
        elif run.message:
            text += f". {run.message}"
        return f"<span style='color:{color}'>{html.escape(text)}</span>"

    def _update_table(self) -> None:
        knobs = list(self.knobs)
        head = [
            "#",
            "batch",
            "epochs",
            "res",
            "lr",
            *knobs,
            "done",
            "train loss",
            "train acc",
            "test acc",
            "ex/s",
            "wall s",
            "status",
        ]

        def number(value, fmt):
            return "–" if value is None else format(value, fmt)

        rows = []
        for run in self.runs:
            s = run.settings
            cells = [
                run.number,
                s["batch_size"],
                s["num_epochs"],
                s["resize"],
                f"{s['lr']:.3g}",
                *(s[k] for k in knobs),
                len(run.history) if run.history is not None else 0,
                number(run.final("train loss"), ".3f"),
                number(run.final("train acc"), ".3f"),
                number(run.final("test acc"), ".3f"),
                number(run.examples_per_sec, ".0f"),
                number(run.wall_time or None, ".1f"),
            ]
            color = STATUS_COLORS.get(run.status, "firebrick")
            tds = "".join(
                f"<td style='{CELL}'>{html.escape(str(c))}</td>" for c in cells
            )
            status = f"<td style='{CELL};color:{color}'>{run.status}</td>"
            rows.append(f"<tr>{tds}{status}</tr>")
        ths = "".join(
            f"<th style='{CELL};border-bottom:1px solid #999'>{html.escape(h)}</th>"
            for h in head
        )
        self.table.value = (
            "<table style='font-size:12px;border-collapse:collapse'>"
            f"<thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            if rows
            else "<i>No runs yet.</i>"
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        s = self.settings()
        return (
            f"TrainingPanel(runs={len(self.runs)}, busy={self._busy}, "
            f"batch_size={s.batch_size}, num_epochs={s.num_epochs}, "
            f"resize={s.resize}, lr={s.lr:.3g})"
        )
