"""The live training plot: d2l's ``Animator``, and the renderers a run subscribes.

``Animator`` draws series kept in plain lists (its own, filled by ``add(x, y)`` as in
d2l, or a ``History``'s points when it ``follow``s one). A renderer chosen once shows
them: in a notebook one display handle updated in place (no ``clear_output``, so printed
lines stay), elsewhere a table row per epoch. ``attach_renderers`` is how ``train_ch6``
connects the plot and the progress bar to its History.
"""

from __future__ import annotations

import math
import sys
import time

from matplotlib.figure import Figure

from .history import SERIES, History
from .plotting import figure_png, in_notebook, set_axes

__all__ = ["Animator", "attach_renderers"]


class _NotebookRenderer:
    """One display handle, updated in place; redraws throttled, the last one flushed."""

    def __init__(self, min_interval: float):
        self.handle = None
        self.min_interval = min_interval
        self.last_draw = -math.inf
        self.pending = False
        self._registered = False

    def update(self, animator: Animator, force: bool = False) -> None:
        if not force and time.perf_counter() - self.last_draw < self.min_interval:
            self.pending = True
            self._flush_at_end_of_cell(animator)
            return
        from IPython.display import Image, display

        image = Image(data=figure_png(animator.draw()), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
        self.last_draw, self.pending = time.perf_counter(), False

    def _flush_at_end_of_cell(self, animator: Animator) -> None:
        # A throttled last point would never be drawn: redraw once when the cell ends.
        if self._registered:
            return
        from IPython import get_ipython

        shell = get_ipython()

        def flush(*_):
            shell.events.unregister("post_run_cell", flush)
            self._registered = False
            if self.pending:
                self.update(animator, force=True)

        shell.events.register("post_run_cell", flush)
        self._registered = True

    def finish(self, animator: Animator) -> None:
        self.update(animator, force=True)


class _ConsoleRenderer:
    """Print one table row per whole-numbered x (an epoch end); no ``<Figure>`` noise.

    Several ``add`` calls may share one x (train metrics, then test accuracy): a row is
    printed as soon as every series has a value at that x, else once x moves on or the
    run finishes — so book code that never calls ``finish`` still sees its last epoch.
    """

    def __init__(self):
        self.header_printed = False
        self.pending_x = None

    def update(self, animator: Animator, force: bool = False) -> None:
        x = animator.last_x
        if self.pending_x is not None and (x != self.pending_x or force):
            self._print_row(animator, self.pending_x)
        if x is not None and float(x) == int(x) and not force:
            values = [animator.value_at(i, x) for i in range(len(animator.series()))]
            if all(v is not None for v in values):
                self._print_row(animator, x)
            else:
                self.pending_x = x

    def _print_row(self, animator: Animator, x) -> None:
        self.pending_x = None
        names = [name for name, _, _ in animator.series()]
        if not self.header_printed:
            print(" ".join(f"{name:>12}" for name in [animator.xlabel or "x", *names]))
            self.header_printed = True
        cells = [f"{x:>12.4g}"]
        for i in range(len(names)):
            value = animator.value_at(i, x)
            cells.append(f"{value:>12.4f}" if value is not None else f"{'':>12}")
        print(" ".join(cells), flush=True)

    def finish(self, animator: Animator) -> None:
        if self.pending_x is not None:
            self._print_row(animator, self.pending_x)


class Animator:
    """Plot data incrementally (d2l's ``Animator``, same arguments and ``add(x, y)``).

    ``None`` entries in ``y`` are skipped, as in d2l. ``save(path)`` writes the figure.

    Example:
        >>> animator = Animator(xlabel="epoch", xlim=[1, 3], legend=["loss", "acc"],
        ...                     display=False)
        >>> animator.add(1, (0.9, None)); animator.add(2, (0.5, 0.8))
        >>> animator.X, animator.Y
        ([[1, 2], [2]], [[0.9, 0.5], [0.8]])
    """

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None,
                 xscale="linear", yscale="linear", fmts=("-", "m--", "g-.", "r:"),
                 nrows=1, ncols=1, figsize=(3.5, 2.5), *, title=None,
                 display: bool | None = None, min_interval: float = 0.25):
        self.xlabel, self.ylabel = xlabel, ylabel
        self.legend = list(legend) if legend else []
        self.xlim, self.ylim = xlim, ylim
        self.xscale, self.yscale = xscale, yscale
        self.fmts, self.nrows, self.ncols, self.figsize = fmts, nrows, ncols, figsize
        self.title = title
        self.X: list[list] | None = None
        self.Y: list[list] | None = None
        self._last_x = None
        self.history: History | None = None
        self.fig: Figure | None = None
        if display is False:
            self.renderer = None
        elif in_notebook():
            self.renderer = _NotebookRenderer(min_interval)
        else:
            self.renderer = _ConsoleRenderer()

    @property
    def axes(self):
        """The figure's axes as a flat list (d2l exposes ``animator.axes``)."""
        return self.draw().axes

    def add(self, x, y) -> None:
        """Append one point per series; entries that are ``None`` are skipped."""
        if not hasattr(y, "__len__"):
            y = [y]
        if not hasattr(x, "__len__"):
            x = [x] * len(y)
        if len(x) != len(y):
            raise ValueError(f"Animator.add got {len(x)} x values for {len(y)} y "
                             "values; pass one x, or one x per y")
        if self.X is None:
            self.X, self.Y = [[] for _ in y], [[] for _ in y]
        if len(y) != len(self.Y):
            raise ValueError(f"Animator.add got {len(y)} y values, but this Animator "
                             f"has {len(self.Y)} series (from its first add); pass "
                             f"{len(self.Y)} values, None where a series has no point")
        for xs, ys, a, b in zip(self.X, self.Y, x, y):
            if a is not None and b is not None:
                xs.append(a)
                ys.append(b)
        self._last_x = x[0]
        if self.renderer is not None:
            self.renderer.update(self)

    def follow(self, history: History) -> None:
        """Draw ``history``'s curves as they grow (``train_ch6`` uses this)."""
        self.history = history
        self.legend = self.legend or list(SERIES)
        history.subscribe(self._on_event)

    def _on_event(self, event: str, history: History) -> None:
        if event == "end":
            self.finish(None if history.status == "completed" else history.status)
        elif self.renderer is not None:
            self.renderer.update(self)

    @property
    def last_x(self):
        return self.history.last_x if self.history is not None else self._last_x

    def series(self) -> list[tuple[str, list, list]]:
        """``(name, xs, ys)`` of every series, from ``add`` or the followed History."""
        if self.history is not None:
            names = self.legend or list(self.history.points)
            return [(name, *self.history.points.get(name, ([], []))) for name in names]
        return [(self.legend[i] if i < len(self.legend) else f"y{i}", xs, ys)
                for i, (xs, ys) in enumerate(zip(self.X or [], self.Y or []))]

    def value_at(self, i: int, x):
        """The newest value of series ``i`` at ``x``, or None if it has none there."""
        _, xs, ys = self.series()[i]
        for a, b in zip(reversed(xs), reversed(ys)):
            if a == x:
                return b
        return None

    def draw(self) -> Figure:
        """Redraw all series on a matplotlib ``Figure`` (not pyplot: no duplicate output)."""
        if self.fig is None:
            self.fig = Figure(figsize=self.figsize)
            self.fig.subplots(self.nrows, self.ncols, squeeze=False)
        ax = self.fig.axes[0]
        ax.cla()
        for (_, x, y), fmt in zip(self.series(), self.fmts):
            # a lone point drawn as a line is invisible: give it a marker
            ax.plot(x, y, fmt, marker="o" if len(x) == 1 else None)
        set_axes(ax, self.xlabel, self.ylabel, self.xlim, self.ylim, self.xscale,
                 self.yscale, self.legend)
        if self.title:
            ax.set_title(self.title, fontsize="medium")
        return self.fig

    def finish(self, title: str | None = None) -> None:
        """Draw the final state (optionally with a title such as 'interrupted')."""
        if title is not None:
            self.title = title
        if self.renderer is not None:
            self.renderer.finish(self)

    def save(self, path) -> None:
        """Write the current figure to ``path`` (PNG, SVG or PDF by extension)."""
        self.draw().savefig(path, dpi=100, bbox_inches="tight")

    def __repr__(self) -> str:
        series = self.series()
        points = sum(len(xs) for _, xs, _ in series)
        return f"Animator(series={[name for name, _, _ in series]}, points={points})"


def _feed(animator) -> callable:
    """A History listener that drives any object with d2l's ``add(x, ys)``."""

    def listener(event: str, history: History) -> None:
        if event == "point":
            x = history.last_x
            animator.add(x, (history.last("train loss"), history.last("train acc"),
                             None))
        elif event == "epoch":
            animator.add(len(history), (None, None, history.test_acc[-1]))
        elif event == "end" and hasattr(animator, "finish"):
            animator.finish(None if history.status == "completed" else history.status)

    return listener


def _progress_bar(history: History, first_epoch: int, num_epochs: int,
                  num_batches: int) -> callable:
    from tqdm.auto import tqdm

    bar = tqdm(total=num_epochs * num_batches, leave=False, unit="batch", desc="train")

    def listener(event: str, history: History) -> None:
        if event == "end":
            bar.close()
            return
        done = round(((history.last_x or first_epoch) - first_epoch) * num_batches)
        bar.update(max(0, done - bar.n))
        if history.last("train loss") is not None:
            bar.set_postfix(loss=f"{history.last('train loss'):.3f}",
                            acc=f"{history.last('train acc'):.3f}")

    return listener


def attach_renderers(history: History, animator=None, *, progress: bool | None = None,
                     verbose: bool = True, first_epoch: int = 0,
                     num_batches: int = 1) -> callable:
    """Subscribe ``train_ch6``'s plot and progress bar to ``history``; returns detach.

    ``animator``: None for d2l's plot (x from 0 to the last epoch), False for none, or
    an object with ``add(x, ys)``. ``progress``: a tqdm bar, by default only when
    stderr is a terminal (a log or pipe gets the plot's one row per epoch instead).

    Example:
        >>> h = History(); h.start(num_epochs=2)
        >>> detach = attach_renderers(h, False, progress=False)
        >>> detach()
    """
    listeners = []
    last_epoch = history.settings.get("num_epochs", first_epoch + 1)
    if animator is None:
        animator = Animator(xlabel="epoch", xlim=[0, last_epoch], legend=list(SERIES))
        animator.follow(history)
        listeners.append(animator._on_event)
    elif animator is not False:
        listeners.append(history.subscribe(_feed(animator)))
    if progress is None:
        progress = verbose and not in_notebook() and sys.stderr.isatty()
    if progress:
        listeners.append(history.subscribe(_progress_bar(
            history, first_epoch, last_epoch - first_epoch, num_batches)))

    def detach() -> None:
        for listener in listeners:
            history.unsubscribe(listener)

    return detach
