"""The one record of a training run: epochs, curve points, and how it ended.

``train_ch6`` writes into a ``History``; whatever shows a run (the plot, the panel)
subscribes with ``history.subscribe(listener)`` and is called as ``listener(event,
history)``, ``event`` being ``"point"`` (a curve point), ``"epoch"`` or ``"end"``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from .utils import atomic_write

__all__ = ["SERIES", "STATUSES", "History"]

SERIES = ("train loss", "train acc", "test acc")  # d2l's legend, in d2l's order
STATUSES = ("running", "completed", "stopped", "interrupted", "diverged", "out_of_memory",
            "failed")


@dataclass
class History:
    """What a run produced, epoch by epoch, and how it ended.

    ``status`` is ``running``, ``completed``, ``stopped`` (``stop=``), ``interrupted``
    (Ctrl-C), ``diverged`` (NaN/inf loss), ``out_of_memory`` or ``failed`` (an exception
    escaped, carrying this history as ``.history``). ``points`` maps each series to
    ``(xs, ys)``, x counted in epochs.

    Example:
        >>> h = History(device="cpu")
        >>> h.add_point(0.5, {"train loss": 0.9, "train acc": 0.6})
        >>> h.add_epoch(0.52, 0.81, 0.79, 5000.0, 4000.0, 12.5)
        >>> len(h), h.test_acc[-1], h.points["test acc"]
        (1, 0.79, ([1.0], [0.79]))
    """

    device: str = "cpu"
    settings: dict = field(default_factory=dict)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    examples_per_sec: list[float] = field(default_factory=list)  # timed training steps
    examples_per_sec_e2e: list[float] = field(default_factory=list)  # with evaluation
    wall_time: list[float] = field(default_factory=list)  # seconds per epoch
    status: str = "running"
    message: str = ""
    points: dict = field(default_factory=lambda: {name: ([], []) for name in SERIES})
    _listeners: list = field(default_factory=list, repr=False, compare=False)

    def subscribe(self, listener):
        """Call ``listener(event, self)`` on every new point, epoch and the end.

        Example:
            >>> seen, h = [], History()
            >>> _ = h.subscribe(lambda event, history: seen.append(event))
            >>> h.add_point(0.2, {"train loss": 1.0}); h.end("completed"); seen
            ['point', 'end']
        """
        self._listeners.append(listener)
        return listener

    def unsubscribe(self, listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: str) -> None:
        for listener in list(self._listeners):
            listener(event, self)

    def add_point(self, x: float, values: dict[str, float | None]) -> None:
        """Record one curve point per named series (``None`` values are skipped)."""
        for name, value in values.items():
            if value is not None:
                xs, ys = self.points.setdefault(name, ([], []))
                xs.append(float(x))
                ys.append(float(value))
        self._emit("point")

    def add_epoch(self, train_loss, train_acc, test_acc, examples_per_sec,
                  examples_per_sec_e2e, wall_time) -> None:
        """Record a finished epoch; its test accuracy is also a curve point."""
        values = (train_loss, train_acc, test_acc, examples_per_sec, examples_per_sec_e2e,
                  wall_time)
        for series, value in zip((self.train_loss, self.train_acc, self.test_acc,
                                  self.examples_per_sec, self.examples_per_sec_e2e,
                                  self.wall_time), values):
            series.append(float(value))
        xs, ys = self.points.setdefault("test acc", ([], []))
        xs.append(float(len(self)))
        ys.append(float(test_acc))
        self._emit("epoch")

    def start(self, **settings) -> None:
        """Mark the run as running (again) and record its settings."""
        self.status, self.message = "running", ""
        self.settings.update(settings)

    def end(self, status: str, message: str = "") -> None:
        """Record how the run ended and tell the listeners."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        self.status, self.message = status, message
        self._emit("end")

    def __len__(self) -> int:
        return len(self.test_acc)

    @property
    def epochs(self) -> list[int]:
        """The finished epochs' numbers, 1 to ``len(self)`` (an x axis for the lists)."""
        return list(range(1, len(self) + 1))

    def last(self, name: str) -> float | None:
        """The newest value of series ``name``, or None before its first point."""
        ys = self.points.get(name, ([], []))[1]
        return ys[-1] if ys else None

    @property
    def last_x(self) -> float | None:
        """How far the run got, in epochs (the newest point's x)."""
        xs = [xs[-1] for xs, _ in self.points.values() if xs]
        return max(xs) if xs else None

    def summary(self) -> str:
        """d2l's closing line: ``loss …, train acc …, test acc …``."""
        return (f"loss {self.train_loss[-1]:.3f}, train acc {self.train_acc[-1]:.3f}, "
                f"test acc {self.test_acc[-1]:.3f}")

    def to_dict(self) -> dict:
        # not asdict(self): it would deep-copy the listeners (an Animator and its figure)
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
                if f.name != "_listeners"}
        data["points"] = {name: [list(xs), list(ys)] for name, (xs, ys) in self.points.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """A History from ``to_dict``'s output; unknown fields are refused by name."""
        data = dict(data)
        points = data.pop("points", None)
        known = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown History field(s) {unknown}; expected some of "
                             f"{sorted(known)}: was it written by another d2lcnn version?")
        history = cls(**data)
        if points:
            history.points = {name: (list(xs), list(ys)) for name, (xs, ys) in points.items()}
        return history

    def save(self, path) -> Path:
        """Write the history as JSON (atomically) and return the path."""
        return atomic_write(path, json.dumps(self.to_dict(), indent=1).encode())

    @classmethod
    def load(cls, path) -> History:
        """Read a history that ``save`` wrote; a damaged file is named with what to do."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path} is not a readable History ({error}); save the run "
                             "again, or delete the file") from error

    def __repr__(self) -> str:  # a cell ending in train_ch6(...) shows just this line
        end = f": test acc {self.test_acc[-1]:.3f}" if len(self) else ""
        return (f"<History {self.status}, {len(self)} epoch{'' if len(self) == 1 else 's'} "
                f"on {self.device}{end}>")
