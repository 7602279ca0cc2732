"""The panel's state and actions, without a single widget: runs, probes, the worker.

A run goes through the same ``load_data_fashion_mnist`` and ``train_ch6`` as notebook
cells, in a background thread: widget callbacks (the Stop click) arrive on the
kernel's main thread, which stays free while the worker trains, and ``train_ch6``
checks the Stop event at every batch boundary. Each run's ``History`` is its only
record; the controller subscribes to it and tells its own listeners what changed.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field

import torch

from ..history import History
from .probe import NetProbe, time_training_steps
from .settings import DATA_KEYS, NATIVE_SIZE, TRAIN_KEYS, check_defaults, check_knobs
from .view import estimate_text, progress_text, summary_text

__all__ = ["EVENTS", "PanelController", "PanelRun"]

# what a controller tells its listeners: status line, failure box, Train/Stop state,
# runs table, a new curve point, a run's end, the info line
EVENTS = ("status", "error", "busy", "runs", "point", "end", "info")


@dataclass
class PanelRun:
    """One click on Train: the settings, the run's History, and any failure.

    ``status`` and the curves are the History's (``history.points``); a run that
    raised has status ``failed`` and keeps the full traceback in ``error``.

    Example:
        >>> run = PanelRun(1, {"lr": 0.1})
        >>> run.history.add_point(0.5, {"train loss": 1.2})
        >>> run.status, run.final("train loss")
        ('running', 1.2)
    """

    number: int
    settings: dict
    history: History = field(default_factory=History)
    wall_time: float = 0.0
    error: str = ""  # the full traceback when something raised
    failure: str = ""  # "<stage> failed: <error>", one line

    @property
    def status(self) -> str:
        return self.history.status

    @property
    def message(self) -> str:
        return self.failure or self.history.message

    def final(self, series: str) -> float | None:
        """The newest value of a curve (``train loss``, ``train acc``, ``test acc``)."""
        return self.history.last(series)

    @property
    def examples_per_sec(self) -> float | None:
        speeds = self.history.examples_per_sec
        return sum(speeds) / len(speeds) if speeds else None

    def fail(self, stage: str, error: BaseException) -> None:
        """Record an exception: traceback kept, History ended unless train_ch6 did."""
        self.error = "".join(traceback.format_exception(error))
        self.failure = f"{stage} failed: {type(error).__name__}: {error}"
        if self.history.status == "running":
            status = "failed" if isinstance(error, Exception) else "interrupted"
            self.history.end(status, self.failure)


class PanelController:
    """Runs, settings checks, probes and timings of a training panel.

    Listeners (``subscribe``) are called as ``listener(event)``, ``event`` in
    ``EVENTS``; they read the new state from the controller.

    Example:
        >>> from torch import nn
        >>> from d2lcnn.panel.settings import make_settings
        >>> make_net = lambda s: nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        >>> batches = [(torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,)))] * 2
        >>> c = PanelController(make_net, dict(lr=0.1, num_epochs=1, batch_size=8),
        ...                     load_data=lambda *a, **kw: (batches, batches),
        ...                     device="cpu", background=False)
        >>> settings = make_settings(c.defaults)
        >>> c.check(settings), c.status[0]
        ('', 'Ready: change the settings, then press Train.')
        >>> run = c.train(settings)  # background=False: returns when it has ended
        >>> run.status, len(run.history), c.status[0].startswith("Run #1 completed")
        ('completed', 1, True)
    """

    def __init__(self, make_net, defaults, *, knobs=None, channels: int = 1,
                 device=None, load_data=None, background: bool = True):
        if not callable(make_net):
            raise TypeError(
                f"make_net must be a function of the settings, got {make_net!r}; "
                "e.g. make_net=lambda s: alexnet(resolution=s.resize)"
            )
        self.make_net = make_net
        self.defaults = check_defaults(defaults)
        self.knob_choices = check_knobs(knobs, self.defaults)
        self.channels, self.background = channels, background
        self.probe = NetProbe(make_net, channels, self.knob_choices)
        self.runs: list[PanelRun] = []
        self.net = None  # the net of the newest run, to inspect after training
        self.status = ("Ready: change the settings, then press Train.", "info")
        self.failure: tuple[str, str] | None = None  # (stage, traceback) on show
        self.last_error = ""  # full traceback of the newest failure, never cleared
        self.estimates: dict = {}  # speed key -> (seconds per example, timed batch)
        self.num_train = self.defaults.get("subset")
        self._device, self._load_data = device, load_data
        self._stop_event = threading.Event()
        self._ending = False  # a run's end is being drawn (see stop)
        self._thread: threading.Thread | None = None
        self._busy = False
        self._listeners: list = []
        self._shown: BaseException | None = None  # the failure on show

    # ------------------------------------------------------------ events

    def subscribe(self, listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as error:  # a display problem must not end a run unseen
                if event == "error":  # showing the failure failed: keep the text
                    self.last_error = "".join(traceback.format_exception(error))
                else:
                    self.show_error("updating the panel", error)

    def set_status(self, text: str, tone: str = "info") -> None:
        self.status = (text, tone)
        self._emit("status")

    def show_error(self, stage: str, error: BaseException) -> None:
        """Keep a failure on show (and its full traceback in ``last_error``)."""
        self.last_error = "".join(traceback.format_exception(error))
        self.failure = (stage, self.last_error)
        self._shown = error
        self._emit("error")

    # ------------------------------------------------------------ derived info

    @property
    def device(self) -> torch.device:
        from ..devices import best_device

        return torch.device(self._device) if self._device is not None else best_device()

    @property
    def busy(self) -> bool:
        """True while a run or a timing is in progress."""
        return self._busy

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def check(self, settings) -> str:
        """Why the net cannot take these settings ('' when it can); cached."""
        return self.probe.problem(settings)

    def describe(self, settings) -> tuple[str, list[str]]:
        """(problem, details) for the info line: a failure or shape problem wins."""
        problem = self.probe.build(settings)[1] or self.check(settings)
        if problem:
            return problem, []
        estimate = self.estimates.get(self.speed_key(settings))
        return "", [self.probe.costs(settings),
                    estimate_text(estimate, self.num_train, self.device)]

    def speed_key(self, settings) -> tuple:
        return (settings.batch_size, *self.probe.key(settings), str(self.device),
                getattr(settings, "precision", "fp32"))

    # ------------------------------------------------------------ actions

    def train(self, settings) -> PanelRun | None:
        """Start a run with these settings; None (and why, in the status) if not."""
        if self._busy:
            self.set_status("A run is in progress: press Stop first.", "refused")
            return None
        problem = self.check(settings)
        if problem:
            self.set_status(f"Not started: {problem}", "refused")
            return None
        run = PanelRun(len(self.runs) + 1, dict(vars(settings)),
                       History(device=str(self.device)))
        self.runs.append(run)
        self.failure = None  # the older failure stays in its run and in last_error
        self._emit("error")
        self._stop_event.clear()
        self._emit("runs")
        self._start(lambda: self._train_job(run, settings),
                    f"Run #{run.number}: starting...")
        return run

    def add_history(self, history: History, settings) -> PanelRun:
        """Show a run made outside the panel (a notebook's ``train_ch6``) as a run.

        Its recorded settings win over ``settings`` (the panel's controls), so the
        table says what that run really used; it is then the curve to beat.
        """
        if not isinstance(history, History):
            raise TypeError(
                f"history must be the History that train_ch6 returned, got "
                f"{type(history).__name__}; e.g. history = d2l.train_ch6(...)"
            )
        recorded = {key: history.settings.get(key) for key in
                    ("batch_size", "num_epochs", "lr", "resize")}
        values = dict(vars(settings))
        values.update({k: v for k, v in recorded.items() if v is not None})
        run = PanelRun(len(self.runs) + 1, values, history,
                       wall_time=sum(history.wall_time))
        self.runs.append(run)
        self._emit("runs")
        return run

    def measure(self, settings) -> bool:
        """Time a few training steps (through train_ch6) to estimate an epoch."""
        problem = self.check(settings)
        if problem:
            self.set_status(problem, "refused")
            return False
        before = self.status  # a run's result stays on show after the timing
        self._stop_event.clear()  # a Stop of an earlier run must not end the timing
        return self._start(lambda: self._measure_job(settings, before),
                           "Timing a few steps...")

    def stop(self) -> None:
        """Ask the current run to end at the next batch boundary (the Stop button)."""
        if self._busy and not self._ending:  # a run that is ending has nothing to stop
            self._stop_event.set()
            self.set_status("Stopping at the next batch...", "stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is done (for tests and scripts); True if it is."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self._busy

    # ------------------------------------------------------------ the worker

    def _start(self, job, message: str) -> bool:
        if self._busy:
            return False
        self._busy = True
        self._emit("busy")
        self.set_status(message, "running")

        def guarded():
            try:
                job()
            except BaseException as error:  # nothing raised in the worker is lost
                if error is not self._shown:  # a run's own failure is on show already
                    self.show_error("the panel", error)
                if not self.background and not isinstance(error, Exception):
                    raise  # a second Ctrl-C in a script still stops the script
            finally:
                self._busy = False
                self._emit("busy")

        if self.background:
            self._thread = threading.Thread(target=guarded, name="d2lcnn-panel",
                                            daemon=True)
            self._thread.start()
        else:
            guarded()
        return True

    def _on_history(self, run: PanelRun, event: str) -> None:
        if event in ("point", "epoch"):
            if not self.stopping:  # "Stopping..." stays until the run has ended
                self.status = (progress_text(run), "running")
            self._emit("point")

    def _train_job(self, run: PanelRun, settings) -> None:
        from ..train import train_ch6

        start, stage = time.perf_counter(), "building the net (make_net)"
        listener = run.history.subscribe(lambda event, h: self._on_history(run, event))
        try:
            self.net = net = self.make_net(settings)
            stage = "loading the data"
            train_iter, test_iter = self._data(settings)
            stage = "training"
            extra = {k: self.defaults[k] for k in TRAIN_KEYS if k in self.defaults}
            train_ch6(net, train_iter, test_iter, settings.num_epochs, settings.lr,
                      self.device, animator=False, stop=self._stop_event,
                      verbose=False, progress=False, history=run.history, **extra)
        except BaseException as error:
            run.fail(stage, error)
            self.show_error(stage, error)
            if not isinstance(error, Exception):
                raise
        finally:
            run.history.unsubscribe(listener)
            run.wall_time = time.perf_counter() - start
            self._ending = True  # Stop clicks while the end is drawn change nothing
            try:
                self.status = (summary_text(run), run.status)
                self._emit("end")
            finally:
                self._ending = False

    def _measure_job(self, settings, status: tuple[str, str]) -> None:
        try:
            self.estimates[self.speed_key(settings)] = time_training_steps(
                self.make_net, settings, channels=self.channels, device=self.device,
                stop=self._stop_event)
        except Exception as error:
            self.show_error("timing a step", error)
        finally:
            self.set_status(*status)  # "Timing a few steps..." never stays behind
        self._emit("info")

    def _data(self, settings):
        resize = None if settings.resize == NATIVE_SIZE else settings.resize
        data = {key: self.defaults[key] for key in DATA_KEYS if key in self.defaults}
        if self._load_data is not None:
            return self._load_data(settings.batch_size, resize, **data)
        from ..data import load_data_fashion_mnist

        iters = load_data_fashion_mnist(settings.batch_size, resize, verbose=False,
                                        **data)
        self.num_train = getattr(iters[0], "num_examples", self.num_train)
        return iters
