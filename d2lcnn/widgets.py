"""Training panel: change a chapter's settings, re-train with one click, compare runs. Train
runs ``train_ch6`` in a worker thread, so Stop gets through (core ipywidgets 7.6+ and 8 only)."""

from __future__ import annotations

import base64
import dataclasses
import functools
import html
import math
import threading
import time
import traceback
from types import SimpleNamespace

import ipywidgets as widgets
import torch

from .data import load_data_fashion_mnist
from .history import SERIES, History
from .plot import Animator, figure_png
from .summary import check_input_shape, count_flops, count_params, min_input_size
from .summary.table import si_str
from .train import train_ch6
from .utils import best_device, positive_int, positive_number

__all__ = ["TrainingPanel"]

BATCH_SIZES = (16, 32, 64, 128, 256, 512)
NATIVE = 28  # Fashion-MNIST's own side: the loader gets resize=None, as in d2l
DATA_KEYS = ("subset", "test_subset", "source", "root", "seed")  # go to the loader
TRAIN_KEYS = ("precision", "channels_last", "recipe")  # go to train_ch6
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STYLE = {"description_width": "90px"}
COLORS = {"completed": "green", "stopped": "darkorange", "running": "steelblue", "info": "inherit"}
CELL = "padding:1px 8px;text-align:right"


def _plain(value):  # a numpy scalar as the Python number it holds (np.int64(2) -> 2)
    numpy = type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0
    return value.item() if numpy else value


def _checked_defaults(defaults) -> dict:  # plain values, resize filled in; or what to fix
    try:  # a dict, or a namespace or Settings (a chapter's hp)
        values = dict(defaults) if hasattr(defaults, "keys") else vars(defaults)
    except TypeError:
        raise TypeError(f"defaults must be a dict, a namespace or a Settings, got "
                        f"{type(defaults).__name__}; e.g. defaults=hp") from None
    values = {key: _plain(value) for key, value in values.items()}
    if missing := [key for key in ("lr", "num_epochs", "batch_size") if key not in values]:
        raise ValueError(f"defaults must set lr, num_epochs and batch_size; missing {missing}, "
                         "e.g. defaults=dict(lr=0.1, num_epochs=10, batch_size=256)")
    values["resize"] = NATIVE if values.get("resize") is None else values["resize"]
    for key in ("num_epochs", "batch_size", "resize"):
        values[key] = positive_int(f"defaults[{key!r}]", values[key])
    values["lr"] = positive_number("defaults['lr']", values["lr"], "0.1")
    return values


def _lr_bounds(lr: float, lr_range) -> tuple[float, float]:
    """A log slider's (min, max) exponents on a 0.1 grid through ``lr`` (the browser
    snaps a value to ``min + k * step``: that must not move the default)."""
    e, (low, high) = math.log10(lr), (math.log10(v) for v in lr_range)
    return (e - math.ceil(round((e - min(low, e)) / 0.1, 6)) * 0.1,
            e + math.ceil(round((max(high, e) - e) / 0.1, 6)) * 0.1)


def _number(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _span(text: str, tone: str = "info") -> str:  # any tone not in COLORS: red
    return f"<span style='color:{COLORS.get(tone, 'firebrick')}'>{html.escape(text)}</span>"


@dataclasses.dataclass
class Run:
    """One click on Train: the settings, the run's History, the traceback if it raised."""

    number: int
    settings: dict
    history: History
    error: str = ""  # the full traceback when something raised
    wall_time: float = 0.0
    animator: object = dataclasses.field(default=None, repr=False)  # draws the History


class TrainingPanel:
    """Sliders for batch size, epochs, resolution, lr; Train/Stop; the curve; the runs.

    ``make_net(settings)`` returns a fresh net for the chosen settings (a namespace of the
    ``defaults``, a dict, namespace or Settings with lr, num_epochs, batch_size and optionally
    resize, with each slider and knob ``{name: [choices]}`` applied). The defaults' DATA_KEYS
    go to the loader (``load_data`` replaces it), TRAIN_KEYS to ``train_ch6``;
    ``background=False`` trains inside the click (scripts).

    Example:
        >>> from torch import nn
        >>> panel = TrainingPanel(lambda s: nn.Sequential(nn.Conv2d(1, 2, 5)),
        ...                       defaults=dict(lr=0.1, num_epochs=2, batch_size=64))
        >>> panel.num_epochs.value, panel.resize.min, panel.runs, panel.check()
        (2, 5, [], '')
        >>> panel.info.value
        'input 1x28x28 · 52 parameters · 57.6K FLOPs per image'
        >>> "No runs yet" in panel.snapshot_html()  # the static copy for saved notebooks
        True
    """

    def __init__(self, make_net, *, defaults, knobs: dict | None = None,
                 batch_sizes=BATCH_SIZES, max_epochs: int | None = None,
                 max_resize: int = 224, lr_range=(1e-4, 10.0), channels: int = 1,
                 device=None, load_data=None, background: bool = True,
                 min_interval: float = 0.5, title: str = "Training panel"):
        if not callable(make_net):
            raise TypeError(f"make_net must be a function of the settings, got {make_net!r}; "
                            "e.g. make_net=lambda s: alexnet(resolution=s.resize)")
        self.make_net, self.defaults = make_net, _checked_defaults(defaults)
        self.title, self.channels, self.min_interval = title, int(channels), min_interval
        self.device = torch.device(device) if device is not None else best_device()
        self.runs: list[Run] = []
        self.net = None  # the newest run's net, to inspect after training
        self.last_error = ""  # the newest failure's full traceback, never cleared
        self.background, self._load_data, self.busy = background, load_data, False
        self._stop, self._thread = threading.Event(), None
        self._cache, self._handles, self._last_draw = {}, [], -math.inf
        d = self.defaults
        sizes = sorted({int(b) for b in batch_sizes} | {d["batch_size"]})
        self.batch_size = widgets.Dropdown(options=sizes, value=d["batch_size"],
                                           description="batch size", style=STYLE)
        self.num_epochs = widgets.IntSlider(value=d["num_epochs"], min=1, description="epochs",
                                            max=int(max_epochs or max(20, 2 * d["num_epochs"])),
                                            style=STYLE)
        self.resize = widgets.IntSlider(value=d["resize"], min=1, description="resolution",
                                        max=max(int(max_resize), d["resize"]), style=STYLE)
        low, high = _lr_bounds(d["lr"], lr_range)
        self.lr = widgets.FloatLogSlider(value=d["lr"], base=10, min=low, max=high, step=0.1,
                                         readout_format=".3g", description="learning rate",
                                         style=STYLE)
        self.knobs = {}
        for name, options in (knobs or {}).items():
            options = [_plain(v) for v in options]
            if name in d and d[name] not in options:
                raise ValueError(f"defaults[{name!r}]={d[name]!r} is not one of the "
                                 f"knob's choices {options}; add it to knobs[{name!r}]")
            self.knobs[name] = widgets.Dropdown(options=options, value=d.get(name, options[0]),
                                                description=name, style=STYLE)
        self.train_button = widgets.Button(description="Train", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop",
                                          disabled=True)
        self.info, self.status, self.error = (widgets.HTML() for _ in range(3))
        self.plot = widgets.Image(format="png", layout=widgets.Layout(display="none"))
        self.table = widgets.HTML("<i>No runs yet.</i>")
        controls = [self.batch_size, self.num_epochs, self.resize, self.lr, *self.knobs.values()]
        buttons = widgets.VBox([self.train_button, self.stop_button])
        self.widget = widgets.VBox([widgets.HTML(f"<b>{html.escape(title)}</b>"),
                                    widgets.HBox([widgets.VBox(controls), buttons]), self.info,
                                    self.status, self.error, self.plot, self.table])
        self.train_button.on_click(self._guard(lambda _: self.train()))
        self.stop_button.on_click(self._guard(lambda _: self.stop()))
        for control in controls:
            control.observe(self._guard(lambda _: self._update_info()), names="value")
        for knob in self.knobs.values():
            knob.observe(self._guard(lambda _: self._update_min_size()), names="value")
        self._set_status("Ready: change the settings, then press Train.")
        self._update_min_size()
        self._update_info()

    def settings(self) -> SimpleNamespace:
        """The chosen settings, as ``make_net`` receives them."""
        return SimpleNamespace(**dict(
            self.defaults, batch_size=self.batch_size.value, num_epochs=self.num_epochs.value,
            resize=self.resize.value,
            lr=float(f"{self.lr.value:.6g}"),  # 0.3, not the log slider's 0.30000000000000004
            **{name: knob.value for name, knob in self.knobs.items()}))

    def _probe(self, s) -> tuple:
        """(net, shape problem, costs or why make_net failed), cached by resolution and knobs;
        the net is built on the meta device (shapes only, no memory)."""
        key = (s.resize, *(getattr(s, name) for name in self.knobs))
        if key in self._cache:
            return self._cache[key]
        shape = (1, self.channels, s.resize, s.resize)
        try:
            with torch.device("meta"):
                net = self.make_net(s)
        except Exception:  # e.g. .to("cpu") cannot copy meta tensors: build it for real
            try:
                net = self.make_net(s)
            except Exception as error:  # a run reports it again, with its traceback
                return None, "", f"make_net failed: {type(error).__name__}: {error}"
        try:
            check_input_shape(net, shape)
            facts = (net, "", f"{si_str(count_params(net))} parameters · "
                              f"{si_str(count_flops(net, shape))} FLOPs per image")
        except ValueError as error:  # a ShapeError names the layer and the fix
            facts = (net, f"resolution {s.resize}x{s.resize} does not fit this net: {error}", "")
        except Exception as error:  # anything else is a run's to report
            facts = (net, "", f"costs unavailable ({type(error).__name__})")
        self._cache[key] = facts
        return facts

    def check(self, settings=None) -> str:
        """Why the net cannot take the chosen resolution ('' when it can); cached."""
        return self._probe(settings or self.settings())[1]

    def _update_info(self) -> None:
        s = self.settings()
        net, problem, note = self._probe(s)
        head = f"input {self.channels}x{s.resize}x{s.resize}"
        if s.resize != NATIVE:
            head += " (Fashion-MNIST resized from 28x28)"
        note = _span(problem or note, "refused") if problem or net is None else note
        self.info.value = f"{html.escape(head)} · {note}"

    def _update_min_size(self) -> None:
        """Bound the resolution slider below by the smallest input the net takes."""
        net = self._probe(self.settings())[0]
        try:
            smallest = min_input_size(net, self.channels) if net is not None else 1
        except Exception:  # the check before training reports the real problem
            smallest = 1
        self.resize.max = max(self.resize.max, smallest)
        self.resize.min = smallest  # clamps the value up: the bound is visible

    def train(self) -> Run | None:
        """Start a run with the chosen settings (the Train button); None if refused."""
        if self.busy:
            self._set_status("A run is in progress: press Stop first.", "refused")
            return None
        s = self.settings()
        if problem := self.check(s):
            self._set_status(f"Not started: {problem}", "refused")
            return None
        run = Run(len(self.runs) + 1, dict(vars(s)), History(device=str(self.device)))
        self.runs.append(run)
        self.error.value = ""  # an older failure stays in its run and in last_error
        self._stop.clear()
        self._set_busy(True)
        self._set_status(f"Run #{run.number}: starting...", "running")
        self.table.value = self._table_html()
        if self.background:
            self._thread = threading.Thread(target=self._work, args=(run, s), daemon=True)
            self._thread.start()
        else:
            self._work(run, s)
        return run

    def stop(self) -> None:
        """Ask the current run to end at the next batch boundary (the Stop button)."""
        if self.busy:
            self._stop.set()
            self._set_status("Stopping at the next batch...", "stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended; True if it has (scripts: a cell holds back Stop)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.busy

    def _work(self, run: Run, s) -> None:
        start, stage = time.perf_counter(), "building the net (make_net)"
        listener = run.history.subscribe(lambda event, h: self._on_history(run, event))
        try:
            self.net = net = self.make_net(s)
            stage = "loading the data"
            data = {k: self.defaults[k] for k in DATA_KEYS if k in self.defaults}
            load = self._load_data or functools.partial(load_data_fashion_mnist, verbose=False)
            iters = load(s.batch_size, None if s.resize == NATIVE else s.resize, **data)
            stage = "training"
            extra = {k: self.defaults[k] for k in TRAIN_KEYS if k in self.defaults}
            train_ch6(net, *iters, s.num_epochs, s.lr, self.device, animator=False, stop=self._stop,
                      history=run.history, progress=False, verbose=False, **extra)
        except Exception as error:  # nothing raised in a run is lost: shown and kept
            run.error = self._show_error(stage, error)
            if run.history.status == "running":
                run.history.end("failed", f"{stage} failed: {type(error).__name__}: {error}")
        finally:
            run.history.unsubscribe(listener)
            run.wall_time = time.perf_counter() - start
            try:
                self._end(run)
            except Exception as error:
                self._show_error("updating the panel", error)
            self._set_busy(False)  # last: a new run starts after this one is drawn

    def _on_history(self, run: Run, event: str) -> None:
        """A History event, on the worker: the progress line and a throttled redraw."""
        try:
            h = run.history
            if not self._stop.is_set():  # "Stopping..." stays until the run has ended
                values = ", ".join(f"{n} {v:.3f}" for n in SERIES if (v := h.last(n)) is not None)
                self._set_status(f"Run #{run.number} training: {h.last_x or 0:.2f} of "
                                 f"{run.settings['num_epochs']} epochs done, {values}", "running")
            if time.perf_counter() - self._last_draw >= self.min_interval:
                self._draw(run)
        except Exception as error:  # a display problem must not end the run unseen
            self._show_error("updating the panel", error)

    def _draw(self, run: Run) -> None:
        if run.animator is None:  # the one renderer of a History, following this run
            run.animator = Animator(xlabel="epoch", xlim=[0, run.settings["num_epochs"]],
                                    legend=list(SERIES), figsize=(4.5, 2.8), display=False)
            run.animator.history = run.history  # it draws the points: nothing to subscribe
        run.animator.title = f"run #{run.number}: {run.history.status}"
        self._last_draw = time.perf_counter()
        self.plot.value = figure_png(run.animator.draw())
        self.plot.layout.display = None

    def _end(self, run: Run) -> None:
        h = run.history
        text = f"Run #{run.number} {h.status} after {run.wall_time:.1f} s"
        if len(h):
            text += f": test acc {h.test_acc[-1]:.3f}"
        if h.status != "completed":
            why = f" ({h.message.split('; ')[0]})" if h.message else ""
            text += f"{why}; its History: panel.runs[{run.number - 1}].history"
        self._set_status(text, h.status)
        self.table.value = self._table_html()
        if h.last_x is not None:
            self._draw(run)
        bundle = self._repr_mimebundle_()  # the saved notebook holds the newest state
        for handle in self._handles:
            handle.update(bundle, raw=True)

    def _set_status(self, text: str, tone: str = "info") -> None:
        self.status.value = _span(text, tone)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy  # True while a run is in progress
        self.train_button.disabled, self.stop_button.disabled = busy, not busy

    def _show_error(self, stage: str, error: BaseException) -> str:
        """Put a failure in the panel (innermost frames); keep its full traceback."""
        self.last_error = "".join(traceback.format_exception(error))
        tail = "\n".join(self.last_error.rstrip().splitlines()[-8:])
        self.error.value = (f"<div style='color:firebrick'><b>{html.escape(stage)} failed</b> (the "
                            "panel is still usable; full traceback: panel.last_error)"
                            f"<pre style='font-size:11px'>{html.escape(tail)}</pre></div>")
        return self.last_error

    def _guard(self, callback):
        """A widget callback whose exception is shown in the panel, not in a hidden log."""
        def guarded(change):
            try:
                callback(change)
            except Exception as error:
                self._show_error("handling the click", error)
        return guarded

    def _table_html(self) -> str:
        """The runs so far, one row each: settings, epochs done, results, status."""
        if not self.runs:
            return "<i>No runs yet.</i>"
        head = ["#", "batch", "epochs", "res", "lr", *self.knobs, "done", *SERIES, "ex/s",
                "wall s", "status"]
        rows = ["".join(f"<th style='{CELL}'>{html.escape(name)}</th>" for name in head)]
        for run in self.runs:
            s, h = run.settings, run.history
            speed = sum(h.examples_per_sec) / len(h) if len(h) else None
            cells = [run.number, s["batch_size"], s["num_epochs"], s["resize"],
                     f"{s['lr']:.3g}", *(s[k] for k in self.knobs), len(h),
                     *(_number(h.last(name), ".3f") for name in SERIES),
                     _number(speed, ".0f"), _number(run.wall_time or None, ".1f")]
            tds = "".join(f"<td style='{CELL}'>{html.escape(str(c))}</td>" for c in cells)
            tip = html.escape(h.message)
            rows.append(f"{tds}<td title='{tip}'>{_span(h.status, h.status)}</td>")
        body = "".join(f"<tr>{row}</tr>" for row in rows)
        return f"<table style='font-size:12px;border-collapse:collapse'>{body}</table>"

    def snapshot_html(self) -> str:
        """The panel as static HTML: settings, info, status, the last curve, the runs."""
        s = self.settings()
        pairs = [("batch size", s.batch_size), ("epochs", s.num_epochs), ("resolution", s.resize),
                 ("learning rate", f"{s.lr:.3g}"), *((k, getattr(s, k)) for k in self.knobs)]
        controls = " · ".join(f"{html.escape(k)} <b>{html.escape(str(v))}</b>" for k, v in pairs)
        png = base64.b64encode(self.plot.value).decode()
        image = f"<img src='data:image/png;base64,{png}' alt='training curves'/>"
        note = "<i>A snapshot of the panel as last drawn; run the notebook to use it.</i>"
        parts = [f"<b>{html.escape(self.title)}</b>", note, controls, self.info.value,
                 self.status.value, self.error.value, self.plot.value and image, self.table.value]
        body = "".join(f"<div>{part}</div>" for part in parts if part)
        return f"<div class='d2lcnn-panel-snapshot' style='display:inline-block'>{body}</div>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """The widget where a kernel runs, the static snapshot where none does."""
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        return {"text/plain": repr(self), "text/html": self.snapshot_html(), WIDGET_VIEW: view}

    def _ipython_display_(self) -> None:
        from IPython.display import display

        handle = display(self._repr_mimebundle_(), raw=True, display_id=True)
        if handle is not None:  # updated when a run ends (see _end)
            self._handles.append(handle)

    def __repr__(self) -> str:
        s = self.settings()
        return (f"TrainingPanel(runs={len(self.runs)}, busy={self.busy}, batch_size="
                f"{s.batch_size}, num_epochs={s.num_epochs}, resize={s.resize}, lr={s.lr:.3g})")
