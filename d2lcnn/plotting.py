"""Plots: d2l's ``Animator`` and figure helpers, rendered as PNG.

``Animator`` keeps its points in plain lists (testable without a display); a renderer
chosen once draws them: in a notebook one display handle updated in place (no
``clear_output``, so printed lines stay), in a terminal or script a table row per epoch.
"""

from __future__ import annotations

import io
import math
import sys
import time

# pyplot is imported lazily: Animator draws on a bare Figure, which no backend shows twice
from matplotlib.figure import Figure

__all__ = [
    "Animator",
    "in_notebook",
    "plot",
    "set_axes",
    "set_figsize",
    "show_images",
    "use_svg_display",
]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, Kaggle, VS Code).

    Example:
        >>> in_notebook()
        False
    """
    ipython = sys.modules.get("IPython")  # a kernel has imported it; importing costs 0.2 s
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def use_svg_display() -> None:
    """Show pyplot figures as SVG in Jupyter (d2l compatibility; d2lcnn itself uses PNG).

    Example:
        >>> use_svg_display()
    """
    try:
        from matplotlib_inline import backend_inline
    except ImportError:
        return
    backend_inline.set_matplotlib_formats("svg")


def set_figsize(figsize=(3.5, 2.5)) -> None:
    """Set pyplot's default figure size.

    Example:
        >>> set_figsize((4, 3))
    """
    import matplotlib.pyplot as plt

    plt.rcParams["figure.figsize"] = figsize


def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend) -> None:
    """Set labels, limits, scales and legend of matplotlib axes (d2l's signature).

    Example:
        >>> ax = Figure().add_subplot()
        >>> set_axes(ax, "epoch", None, [1, 10], None, "linear", "linear", ["loss"])
    """
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xscale(xscale)
    axes.set_yscale(yscale)
    axes.set_xlim(xlim)
    axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid()


def _has_one_axis(X) -> bool:
    return (
        hasattr(X, "ndim")
        and X.ndim == 1
        or isinstance(X, list)
        and not hasattr(X[0], "__len__")
    )


def plot(
    X,
    Y=None,
    xlabel=None,
    ylabel=None,
    legend=None,
    xlim=None,
    ylim=None,
    xscale="linear",
    yscale="linear",
    fmts=("-", "m--", "g-.", "r:"),
    figsize=(3.5, 2.5),
    axes=None,
):
    """Plot one or several curves (d2l's ``plot``); returns the axes.

    Example:
        >>> ax = plot([0, 1, 2], [[0, 1, 4]], legend=["x^2"], axes=Figure().add_subplot())
    """
    if legend is None:
        legend = []
    if axes is None:
        import matplotlib.pyplot as plt

        set_figsize(figsize)
        axes = plt.gca()
    if _has_one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [[]] * len(X), X
    elif _has_one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)
    axes.cla()
    for x, y, fmt in zip(X, Y, fmts):
        if len(x):
            axes.plot(x, y, fmt)
        else:
            axes.plot(y, fmt)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)
    return axes


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """Plot a grid of images with optional titles (d2l's ``show_images``); returns axes.

    Example:
        >>> import torch
        >>> axes = show_images(torch.zeros(2, 28, 28), 1, 2, titles=["a", "b"])
    """
    import matplotlib.pyplot as plt

    figsize = (num_cols * scale, num_rows * scale)
    _, axes = plt.subplots(num_rows, num_cols, figsize=figsize, squeeze=False)
    axes = axes.flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        if hasattr(img, "detach"):
            img = img.detach().cpu().numpy()
        ax.imshow(img, cmap="gray" if getattr(img, "ndim", 3) == 2 else None)
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(titles[i])
    return axes


def _figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


class _NotebookRenderer:
    """One display handle, updated in place; redraws throttled, the last one flushed."""

    def __init__(self, min_interval: float):
        self.handle = None
        self.min_interval = min_interval
        self.last_draw = -math.inf
        self.pending = False
        self._registered = False

    def update(self, animator: Animator, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last_draw < self.min_interval:
            self.pending = True
            self._flush_at_end_of_cell(animator)
            return
        from IPython.display import Image, display

        image = Image(data=_figure_png(animator.draw()), format="png")
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

    Several ``add`` calls may share one x (train metrics, then test accuracy), so a row
    is printed once x moves on, or when the run finishes.
    """

    def __init__(self):
        self.header_printed = False
        self.pending_x = None

    def update(self, animator: Animator, force: bool = False) -> None:
        x = animator.last_x
        if self.pending_x is not None and (x != self.pending_x or force):
            self._print_row(animator, self.pending_x)
            self.pending_x = None
        if x is not None and float(x) == int(x) and not force:
            self.pending_x = x

    def _print_row(self, animator: Animator, x) -> None:
        names = animator.series_names()
        if not self.header_printed:
            print(" ".join(f"{name:>12}" for name in [animator.xlabel or "x", *names]))
            self.header_printed = True
        cells = [f"{x:>12.4g}"]
        for i in range(len(names)):
            value = animator.value_at(i, x)
            cells.append(f"{value:>12.4f}" if value is not None else f"{'':>12}")
        print(" ".join(cells))

    def finish(self, animator: Animator) -> None:
        if self.pending_x is not None:
            self._print_row(animator, self.pending_x)
            self.pending_x = None


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

    def __init__(
        self,
        xlabel=None,
        ylabel=None,
        legend=None,
        xlim=None,
        ylim=None,
        xscale="linear",
        yscale="linear",
        fmts=("-", "m--", "g-.", "r:"),
        nrows=1,
        ncols=1,
        figsize=(3.5, 2.5),
        *,
        title=None,
        display: bool | None = None,
        min_interval: float = 0.25,
    ):
        self.xlabel, self.ylabel = xlabel, ylabel
        self.legend = list(legend) if legend else []
        self.xlim, self.ylim = xlim, ylim
        self.xscale, self.yscale = xscale, yscale
        self.fmts, self.nrows, self.ncols, self.figsize = fmts, nrows, ncols, figsize
        self.title = title
        self.X: list[list] | None = None
        self.Y: list[list] | None = None
        self.last_x = None
        self.fig: Figure | None = None
        if display is None:
            display = True
        if not display:
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
        n = len(y)
        if not hasattr(x, "__len__"):
            x = [x] * n
        if self.X is None:
            self.X = [[] for _ in range(n)]
            self.Y = [[] for _ in range(n)]
        for i, (a, b) in enumerate(zip(x, y)):
            if a is not None and b is not None:
                self.X[i].append(a)
                self.Y[i].append(b)
        self.last_x = x[0]
        if self.renderer is not None:
            self.renderer.update(self)

    def series_names(self) -> list[str]:
        count = len(self.Y or [])
        return [
            self.legend[i] if i < len(self.legend) else f"y{i}" for i in range(count)
        ]

    def value_at(self, i: int, x):
        """The newest value of series ``i`` at ``x``, or None if it has none there."""
        for a, b in zip(reversed(self.X[i]), reversed(self.Y[i])):
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
        for x, y, fmt in zip(self.X or [], self.Y or [], self.fmts):
            ax.plot(x, y, fmt)
        set_axes(
            ax,
            self.xlabel,
            self.ylabel,
            self.xlim,
            self.ylim,
            self.xscale,
            self.yscale,
            self.legend,
        )
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
        points = sum(len(x) for x in self.X or [])
        return f"Animator(series={self.series_names()}, points={points})"
