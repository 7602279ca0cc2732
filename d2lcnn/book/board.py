"""d2l 1.0's ``HyperParameters`` and ``ProgressBoard``, drawn live in place.

``ProgressBoard.draw(x, y, label, every_n)`` keeps d2l's rule: every ``every_n`` raw
points of a label become one plotted point, their mean. The raw ``y`` may be a tensor
on any device: it is summed there and read (one synchronisation) only when a plotted
point is made. In a notebook the figure is one display updated in place (no
``clear_output``); in a terminal a row per epoch is printed.
"""

from __future__ import annotations

import collections
import inspect
import math

from matplotlib.figure import Figure

from ..plotting import figure_png, in_notebook

__all__ = ["HyperParameters", "Point", "ProgressBoard"]

Point = collections.namedtuple("Point", ["x", "y"])


class HyperParameters:
    """The base class of d2l 1.0's objects: ``save_hyperparameters`` stores arguments.

    Example:
        >>> class Net(HyperParameters):
        ...     def __init__(self, lr=0.1, width=8, _cache=None):
        ...         self.save_hyperparameters(ignore=["width"])
        >>> net = Net(lr=0.5); net.lr, net.hparams
        (0.5, {'lr': 0.5})
    """

    def save_hyperparameters(self, ignore: list[str] | tuple = ()) -> None:
        """Store the calling ``__init__``'s arguments as attributes and in ``hparams``.

        Names in ``ignore``, ``self`` and names starting with ``_`` are left out, as in
        d2l (which reads every local variable of the caller at the time of the call).
        """
        frame = inspect.currentframe().f_back
        try:
            local_vars = dict(frame.f_locals)
        finally:
            del frame  # a frame kept alive keeps every local of the caller alive
        skip = {*ignore, "self"}
        self.hparams = {k: v for k, v in local_vars.items()
                        if k not in skip and not k.startswith("_")}
        for k, v in self.hparams.items():
            setattr(self, k, v)


class _InPlace:
    """In a notebook: one display of the figure as PNG, replaced at every point.

    PNG rather than d2l's SVG (nbval compares SVG as text); no ``clear_output``, so
    lines printed during training stay visible.
    """

    def __init__(self):
        self.handle = None

    def show(self, fig: Figure) -> None:
        from IPython.display import Image, display

        image = Image(data=figure_png(fig), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)


class ProgressBoard(HyperParameters):
    """The board that plots data points in animation (d2l 1.0's ``ProgressBoard``).

    Same arguments as d2l. ``data`` holds the plotted points per label (``Point(x, y)``
    named tuples), ``raw_points`` the ones waiting for their group of ``every_n``.

    Example:
        >>> board = ProgressBoard(display=False)
        >>> for x in range(4):
        ...     board.draw(x, float(x), "sin", every_n=2)
        >>> board.data["sin"]
        [Point(x=0.5, y=0.5), Point(x=2.5, y=2.5)]
    """

    def __init__(self, xlabel=None, ylabel=None, xlim=None, ylim=None,
                 xscale="linear", yscale="linear", ls=("-", "--", "-.", ":"),
                 colors=("C0", "C1", "C2", "C3"), fig=None, axes=None,
                 figsize=(3.5, 2.5), display=True):
        self.save_hyperparameters()
        self.raw_points: collections.OrderedDict = collections.OrderedDict()
        self.data: collections.OrderedDict = collections.OrderedDict()
        self.on_point = None  # the Trainer's hook: on_point(label, x, y) per point
        self._renderer = None

    def draw(self, x, y, label: str, every_n: int = 1) -> None:
        """Add a raw point; every ``every_n`` of them make one plotted point (mean)."""
        if every_n < 1:  # d2l computes int(batches / 2): 0 with one batch, then hangs
            every_n = 1
        points = self.raw_points.setdefault(label, [])
        line = self.data.setdefault(label, [])
        points.append(Point(x, y))
        if len(points) < every_n:
            return
        mean_x = sum(p.x for p in points) / len(points)
        mean_y = float(sum(p.y for p in points) / len(points))  # the one sync
        points.clear()
        line.append(Point(mean_x, mean_y))
        if self.on_point is not None:
            self.on_point(label, mean_x, mean_y)
        if self.display:
            self._show(mean_x)

    def figure(self) -> Figure:
        """Draw every label's plotted points on the board's figure and return it."""
        if self.axes is None:
            if self.fig is None:
                self.fig = Figure(figsize=self.figsize)
            axes = self.fig.axes[0] if self.fig.axes else self.fig.add_subplot()
        else:
            axes = self.axes
        axes.cla()
        lines = []
        for (label, points), ls, color in zip(self.data.items(), self.ls, self.colors):
            lines.append(axes.plot([p.x for p in points], [p.y for p in points],
                                   linestyle=ls, color=color, label=label)[0])
        if self.xlim:
            axes.set_xlim(self.xlim)
        if self.ylim:
            axes.set_ylim(self.ylim)
        axes.set_xlabel(self.xlabel if self.xlabel else "x")
        axes.set_ylabel(self.ylabel)
        axes.set_xscale(self.xscale)
        axes.set_yscale(self.yscale)
        axes.legend(handles=lines)
        return axes.figure

    def _show(self, x: float) -> None:
        if self._renderer is None:  # chosen at the first point, as the Animator does
            self._renderer = _InPlace() if in_notebook() else _ConsoleRows()
        if isinstance(self._renderer, _InPlace):
            self._renderer.show(self.figure())
        else:
            self._renderer.update(self, x)

    def flush(self) -> None:
        """Print the row still pending outside a notebook (the last epoch's).

        Example:
            >>> ProgressBoard(display=False).flush()
        """
        if isinstance(self._renderer, _ConsoleRows):
            self._renderer.flush(self)

    def save(self, path) -> None:
        """Write the board's figure to ``path`` (PNG, SVG or PDF by extension)."""
        self.figure().savefig(path, dpi=100, bbox_inches="tight")


class _ConsoleRows:
    """Outside a notebook: one row per epoch (x in (k-1, k] is epoch k) with the
    newest value of every label, printed once a later epoch starts or at the end."""

    def __init__(self):
        self.pending: int | None = None
        self.header: list[str] | None = None

    def update(self, board: ProgressBoard, x: float) -> None:
        epoch = max(1, math.ceil(x))
        if self.pending is not None and epoch > self.pending:
            self.flush(board)
        self.pending = epoch

    def flush(self, board: ProgressBoard) -> None:
        if self.pending is None:
            return
        labels = list(board.data)
        if labels != self.header:  # a label appeared: say what the columns are
            print(" ".join(f"{name:>12}" for name in [board.xlabel or "x", *labels]))
            self.header = labels
        cells = [f"{self.pending:>12}"]
        for label in labels:
            line = board.data[label]
            cells.append(f"{line[-1].y:>12.4f}" if line else f"{'':>12}")
        print(" ".join(cells))
        self.pending = None
