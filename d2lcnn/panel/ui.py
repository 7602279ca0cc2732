"""The training panel's widgets: core ipywidgets (7.6+ and 8) wired to a controller.

All state and actions live in ``PanelController``; all text, HTML and the figure come
from ``view`` and ``plot``. This layer only builds the controls, forwards clicks, and
puts the controller's state on screen. Displayed, the panel also carries a static
HTML snapshot of itself, refreshed when a run ends, so a saved notebook shows the
panel and its last curves where no kernel runs (GitHub, nbviewer, a rendered book).
"""

from __future__ import annotations

import html
import math
import threading
import time

import ipywidgets as widgets

from . import view
from .controller import PanelController, PanelRun
from .plot import draw_runs, png
from .settings import BATCH_SIZES, lr_slider_bounds, make_settings

__all__ = ["TrainingPanel"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STYLE = {"description_width": "90px"}


def _widget_view(widget) -> dict:
    """The widget's own view reference (ipywidgets 8's bundle, or 7's equivalent)."""
    bundle = getattr(widget, "_repr_mimebundle_", None)
    data = bundle() if bundle is not None else None
    if data and WIDGET_VIEW in data:
        return {WIDGET_VIEW: data[WIDGET_VIEW]}
    return {WIDGET_VIEW: {"version_major": 2, "version_minor": 0,
                          "model_id": widget.model_id}}


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
        history: a finished run to show from the start (the History the notebook's
            own ``train_ch6`` call returned): its curves and its row in the table,
            also in the saved notebook's static copy of the panel.
        background: train in a worker thread (keeps Stop responsive); ``False`` trains
            inside the click, for scripts.

    Example:
        >>> from torch import nn
        >>> panel = TrainingPanel(
        ...     lambda s: nn.Sequential(nn.Flatten(), nn.LazyLinear(10)),
        ...     defaults=dict(lr=0.1, num_epochs=2, batch_size=64))
        >>> panel.num_epochs.value, panel.runs, panel.settings().lr
        (2, [], 0.1)
        >>> "data:image/png;base64," in panel.snapshot_html()  # the static copy
        True
    """

    def __init__(self, make_net, *, defaults, knobs: dict | None = None,
                 batch_sizes=BATCH_SIZES, max_epochs: int | None = None,
                 max_resize: int = 224, lr_range: tuple[float, float] = (1e-4, 10.0),
                 channels: int = 1, device=None, load_data=None,
                 background: bool = True, min_interval: float = 0.5,
                 title: str = "Training panel", history=None):
        self.controller = PanelController(
            make_net, defaults, knobs=knobs, channels=int(channels), device=device,
            load_data=load_data, background=background)
        self.title, self.min_interval = title, min_interval
        self._draw_lock = threading.Lock()
        self._last_draw = -math.inf
        self._handles: list = []  # display handles whose snapshot a run's end updates
        self._build_controls(batch_sizes, max_epochs, max_resize, lr_range)
        self._build_outputs()
        self._wire()
        self._update_min_size()
        self._update_info()
        if history is not None:
            self.controller.add_history(history, self.settings())
        self._on_event("runs")
        self._redraw(force=True)

    # ------------------------------------------------------------ the controller's
    # state, under the names notebooks and tests use

    make_net = property(lambda self: self.controller.make_net)
    defaults = property(lambda self: self.controller.defaults)
    runs = property(lambda self: self.controller.runs)
    net = property(lambda self: self.controller.net)
    last_error = property(lambda self: self.controller.last_error)
    busy = property(lambda self: self.controller.busy)
    device = property(lambda self: self.controller.device)

    # ------------------------------------------------------------ building

    def _build_controls(self, batch_sizes, max_epochs, max_resize, lr_range):
        d = self.defaults
        sizes = sorted({int(b) for b in batch_sizes} | {d["batch_size"]})
        self.batch_size = widgets.Dropdown(options=sizes, value=d["batch_size"],
                                           description="batch size", style=STYLE)
        self.num_epochs = widgets.IntSlider(
            value=d["num_epochs"], min=1,
            max=int(max_epochs or max(20, 2 * d["num_epochs"])),  # np ints too
            description="epochs", style=STYLE)
        self.resize = widgets.IntSlider(value=d["resize"], min=1,
                                        max=max(int(max_resize), d["resize"]),
                                        description="resolution", style=STYLE)
        low, high = lr_slider_bounds(d["lr"], lr_range)
        self.lr = widgets.FloatLogSlider(
            value=d["lr"], base=10, min=low, max=high, step=0.1, readout_format=".3g",
            description="learning rate", style=STYLE)
        self.knobs = {
            name: widgets.Dropdown(options=choices, value=d.get(name, choices[0]),
                                   description=name, style=STYLE)
            for name, choices in self.controller.knob_choices.items()
        }

    def _build_outputs(self) -> None:
        self.train_button = widgets.Button(description="Train", button_style="success",
                                           icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger",
                                          icon="stop", disabled=True)
        self.measure_button = widgets.Button(description="Time an epoch",
                                             tooltip="a few measured steps")
        self.overlay = widgets.Checkbox(value=True, description="overlay earlier runs",
                                        indent=False)
        self.info, self.status, self.error = (widgets.HTML() for _ in range(3))
        self.plot = widgets.Image(format="png",
                                  layout=widgets.Layout(max_width="760px"))
        self.table = widgets.HTML()
        buttons = [self.train_button, self.stop_button, self.measure_button,
                   self.overlay]
        self.widget = widgets.VBox([
            widgets.HTML(f"<b>{html.escape(self.title)}</b>"),
            widgets.HBox([widgets.VBox(self._controls()), widgets.VBox(buttons)]),
            self.info, self.status, self.error, self.plot, self.table,
        ])

    def _wire(self) -> None:
        self.train_button.on_click(self._guard(lambda _: self.train()))
        self.stop_button.on_click(self._guard(lambda _: self.stop()))
        self.measure_button.on_click(self._guard(lambda _: self.measure()))
        self.overlay.observe(self._guard(lambda _: self._redraw(force=True)),
                             names="value")
        for control in self._controls():
            control.observe(self._guard(lambda _: self._update_info()), names="value")
        for knob in self.knobs.values():
            knob.observe(self._guard(lambda _: self._update_min_size()), names="value")
        self.controller.subscribe(self._on_event)
        self._on_event("status")

    def _guard(self, callback):
        """A callback whose exception is shown in the panel, not in a hidden log."""
        def guarded(change):
            try:
                callback(change)
            except Exception as error:
                self.controller.show_error("handling the click", error)
        return guarded

    def _controls(self) -> list:
        return [self.batch_size, self.num_epochs, self.resize, self.lr,
                *self.knobs.values()]

    # ------------------------------------------------------------ actions

    def settings(self):
        """The chosen settings, as ``make_net`` receives them."""
        return make_settings(
            self.defaults, batch_size=self.batch_size.value,
            num_epochs=self.num_epochs.value, lr=self.lr.value,
            resize=self.resize.value,
            **{name: knob.value for name, knob in self.knobs.items()})

    def check(self, settings=None) -> str:
        """Why the net cannot take these settings ('' when it can); cheap, cached.

        Example:
            >>> from torch import nn
            >>> panel = TrainingPanel(lambda s: nn.Sequential(nn.Conv2d(1, 2, 5)),
            ...                       defaults=dict(lr=0.1, num_epochs=1, batch_size=8))
            >>> panel.check()
            ''
        """
        return self.controller.check(settings or self.settings())

    def train(self) -> PanelRun | None:
        """Start a run with the chosen settings (what the Train button does)."""
        return self.controller.train(self.settings())

    def stop(self) -> None:
        """Ask the current run to end at the next batch boundary (the Stop button)."""
        self.controller.stop()

    def measure(self) -> bool:
        """Time a few training steps to estimate the epoch time (Time an epoch)."""
        return self.controller.measure(self.settings())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is done (for tests and scripts); True if it is.

        Do not call it in a notebook cell while you want Stop to work: the kernel
        handles the click only once the cell has finished.
        """
        return self.controller.wait(timeout)

    # ------------------------------------------------------------ showing state

    def _on_event(self, event: str) -> None:
        """Put what the controller says changed on screen (see ``EVENTS``)."""
        c = self.controller
        if event in ("status", "point", "end"):
            self.status.value = view.status_html(*c.status)
        if event == "error":
            self.error.value = view.error_html(*c.failure) if c.failure else ""
        elif event == "busy":
            self.train_button.disabled = self.measure_button.disabled = c.busy
            self.stop_button.disabled = not c.busy
        elif event == "runs":
            self.table.value = view.runs_table_html(c.runs, list(self.knobs))
        elif event == "point":
            self._redraw()  # throttled
        elif event in ("end", "info"):  # a run or a timing has ended
            if event == "end":
                self.table.value = view.runs_table_html(c.runs, list(self.knobs))
                self._redraw(force=True)
            self._update_info()
            self._update_snapshot()  # the saved notebook holds the newest state

    def _update_info(self) -> None:
        settings = self.settings()
        problem, details = self.controller.describe(settings)
        self.info.value = view.info_html(settings.resize, self.controller.channels,
                                         problem, details)

    def _update_min_size(self) -> None:
        smallest = self.controller.probe.min_size(self.settings())
        raised = self.resize.value < smallest
        self.resize.max = max(self.resize.max, smallest)
        self.resize.min = smallest  # clamps the value up: the bound is visible
        if raised:
            self.controller.set_status(
                f"Resolution raised to {smallest}, the smallest input this net takes.")

    def _redraw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < self.min_interval:
            return  # throttled: a PNG per point would slow training down
        with self._draw_lock:  # the worker and the main thread may both draw
            self._last_draw = now
            self.plot.value = png(draw_runs(self.runs, overlay=self.overlay.value))

    # ------------------------------------------------------------ display

    def snapshot_html(self) -> str:
        """The panel as static HTML: settings, info, status, last curves, runs."""
        return view.snapshot_html(
            self.title, controls=view.controls_html(self.settings(), list(self.knobs)),
            info=self.info.value, status=self.status.value, error=self.error.value,
            figure_png=self.plot.value, table=self.table.value)

    def _mimebundle(self) -> dict:
        return {"text/plain": repr(self), "text/html": self.snapshot_html(),
                **_widget_view(self.widget)}

    def _update_snapshot(self) -> None:
        if self._handles:
            bundle = self._mimebundle()
            for handle in self._handles:
                handle.update(bundle, raw=True)

    def _ipython_display_(self) -> None:
        # the widget where a kernel runs; the HTML snapshot where none does
        from IPython.display import display

        handle = display(self._mimebundle(), raw=True, display_id=True)
        if handle is not None:
            self._handles.append(handle)

    def __repr__(self) -> str:
        s = self.settings()
        return (f"TrainingPanel(runs={len(self.runs)}, busy={self.busy}, "
                f"batch_size={s.batch_size}, num_epochs={s.num_epochs}, "
                f"resize={s.resize}, lr={s.lr:.3g})")
