"""d2l's ``Animator`` (the one live renderer) and plotting helpers.

In a notebook ``Animator`` updates one PNG in place (no ``clear_output``: printed lines stay;
PNG: nbval compares SVG as text); elsewhere it prints a row per epoch."""

from __future__ import annotations

import io
import math
import sys
import time

from matplotlib.figure import Figure

__all__ = ["Animator", "PngFigure", "figure_png", "in_notebook", "plot", "set_axes", "set_figsize",
           "show_images", "use_svg_display"]


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (its own Agg canvas: no pyplot, no GUI backend).

    Example:
        >>> figure_png(Figure(figsize=(1, 1)))[:4]
        b'\\x89PNG'
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


class PngFigure(Figure):
    """A Figure that shows itself as PNG in any notebook, inline backend or not.

    Example:
        >>> PngFigure(figsize=(1, 1))._repr_png_()[:4]
        b'\\x89PNG'
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self)

    def __repr__(self) -> str:  # a notebook's text fallback reads as any Figure's
        return super().__repr__().replace(type(self).__name__, "Figure", 1)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, Kaggle, VS Code).

    Example:
        >>> in_notebook()
        False
    """
    ipython = sys.modules.get("IPython")  # a kernel has imported it; importing costs 0.2 s
    return ipython is not None and getattr(ipython.get_ipython(), "kernel", None) is not None


class Animator:
    """Plot data incrementally (d2l's ``Animator``); ``follow(history)`` draws a run as it grows.

    Example:
        >>> animator = Animator(xlabel="epoch", legend=["loss", "acc"], display=False)
        >>> animator.add(1, (0.9, None))  # None: no point for that series, as in d2l
        >>> animator.add(2, (0.5, 0.8))
        >>> animator.X, animator.Y
        ([[1, 2], [2]], [[0.9, 0.5], [0.8]])
    """

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None,
                 xscale="linear", yscale="linear", fmts=("-", "m--", "g-.", "r:"),
                 nrows=1, ncols=1, figsize=(3.5, 2.5), *, title=None,
                 display: bool | None = None, min_interval: float = 0.25):
        self.xlabel, self.ylabel, self.legend = xlabel, ylabel, list(legend or [])
        self.xlim, self.ylim, self.xscale, self.yscale = xlim, ylim, xscale, yscale
        self.fmts, self.nrows, self.ncols, self.figsize = fmts, nrows, ncols, figsize
        self.title, self.min_interval = title, min_interval
        self.display = display is not False  # False only records
        self.notebook = in_notebook()
        self.X = self.Y = self.history = self.fig = None
        self._handle = self._row_x = self._header = self._printed_x = None
        self._last_draw, self._pending = -math.inf, False

    @property
    def axes(self):
        """The figure's axes as a list (d2l exposes ``animator.axes``)."""
        return self.draw().axes

    def add(self, x, y) -> None:
        """Append one point per series; entries that are ``None`` are skipped."""
        y = y if hasattr(y, "__len__") else [y]
        x = x if hasattr(x, "__len__") else [x] * len(y)
        if len(x) != len(y):
            raise ValueError(f"Animator.add got {len(x)} x values for {len(y)} y values; "
                             "pass one x, or one x per y")
        if self.X is None:
            self.X, self.Y = [[] for _ in y], [[] for _ in y]
        if len(y) != len(self.Y):
            raise ValueError(f"Animator.add got {len(y)} y values, but this Animator has "
                             f"{len(self.Y)} series (from its first add); pass "
                             f"{len(self.Y)} values, None where a series has no point")
        for xs, ys, a, b in zip(self.X, self.Y, x, y):
            if a is not None and b is not None:
                xs.append(a)
                ys.append(b)
        self._update(x[0])

    def follow(self, history) -> None:
        """Draw ``history``'s curves as they grow, until the run ends."""
        self.history = history
        self.legend = self.legend or list(history.points)
        history.subscribe(self._on_event)

    def _on_event(self, event: str, history) -> None:
        if event == "end":
            history.unsubscribe(self._on_event)
            self.finish(None if history.status == "completed" else history.status)
        else:
            self._update(history.last_x)

    def series(self) -> list[tuple[str, list, list]]:
        """``(name, xs, ys)`` of every series, from ``add`` or the followed History."""
        if self.history is not None:
            return [(name, *self.history.points.get(name, ([], []))) for name in self.legend]
        return [(self.legend[i] if i < len(self.legend) else f"y{i}", xs, ys)
                for i, (xs, ys) in enumerate(zip(self.X or [], self.Y or []))]

    def draw(self) -> Figure:
        """Redraw all series on a matplotlib ``Figure`` (not pyplot: no duplicate output)."""
        if self.fig is None:
            self.fig = Figure(figsize=self.figsize)
            self.fig.subplots(self.nrows, self.ncols, squeeze=False)
        ax = self.fig.axes[0]
        ax.cla()
        for (_, x, y), fmt in zip(self.series(), self.fmts):
            ax.plot(x, y, fmt, marker="o" if len(x) == 1 else None)  # a lone point shows
        set_axes(ax, self.xlabel, self.ylabel, self.xlim, self.ylim, self.xscale,
                 self.yscale, self.legend)
        if self.title:
            ax.set_title(self.title, fontsize="medium")
        return self.fig

    def finish(self, title: str | None = None) -> None:
        """Draw the final state (with a title such as 'interrupted' when given)."""
        self.title = title if title is not None else self.title
        if self.display and self.notebook:
            self._show()
        elif self.display and self._row_x is not None:
            self._print_row(self._row_x)

    def save(self, path) -> None:
        """Write the current figure to ``path`` (PNG, SVG or PDF by extension)."""
        self.draw().savefig(path, dpi=100, bbox_inches="tight")

    def __repr__(self) -> str:
        series = self.series()
        return (f"Animator(series={[name for name, _, _ in series]}, "
                f"points={sum(len(xs) for _, xs, _ in series)})")

    def _update(self, x) -> None:
        if not self.display or x is None:
            return
        if self.notebook:  # redraws throttled; a pending one is drawn when the cell ends
            if time.perf_counter() - self._last_draw >= self.min_interval:
                self._show()
            else:
                from IPython import get_ipython

                self._pending = True
                get_ipython().events.register("post_run_cell", self._flush)  # once: no repeat
            return
        # console: a row per whole-numbered x (an epoch) with each series' newest value in
        # (x - 1, x], once every series has one there or x moves on
        if self._row_x is not None and x != self._row_x:
            self._print_row(self._row_x)
        if float(x) == int(x) and x != self._printed_x:  # a row once (a late series: next row)
            self._row_x = x
            if all(self._value_at(ys, xs, x) is not None for _, xs, ys in self.series()):
                self._print_row(x)

    def _flush(self, *_) -> None:
        from IPython import get_ipython

        get_ipython().events.unregister("post_run_cell", self._flush)
        if self._pending:
            self._show()

    def _show(self) -> None:
        from IPython.display import Image, display

        image = Image(data=figure_png(self.draw()), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
        self._last_draw, self._pending = time.perf_counter(), False

    @staticmethod
    def _value_at(ys, xs, x):
        return next((b for a, b in zip(reversed(xs), reversed(ys)) if x - 1 < a <= x), None)

    def _print_row(self, x) -> None:
        self._row_x, self._printed_x = None, x
        series = self.series()
        names = [self.xlabel or "x", *(s[0] for s in series)]
        if self._header != names:  # first row, or a series appeared: say what columns are
            print(" ".join(f"{n:>12}" for n in names))
            self._header = names
        values = [self._value_at(ys, xs, x) for _, xs, ys in series]
        print(f"{x:>12.4g}", *(" " * 12 if v is None else f"{v:>12.4f}" for v in values),
              flush=True)


def use_svg_display() -> None:
    """Show pyplot figures as SVG in Jupyter (d2l compatibility; d2lcnn itself uses PNG).

    Example:
        >>> use_svg_display()
    """
    from matplotlib_inline import backend_inline  # IPython's, which ipywidgets needs

    backend_inline.set_matplotlib_formats("svg")


def set_figsize(figsize=(3.5, 2.5)) -> None:
    """Set pyplot's default figure size.

    Example:
        >>> set_figsize((4, 3))
    """
    import matplotlib.pyplot as plt

    plt.rcParams["figure.figsize"] = figsize


def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend) -> None:
    """Set labels, scales, limits and legend of matplotlib axes (d2l's signature).

    Example:
        >>> set_axes(Figure().add_subplot(), "epoch", None, [1, 9], None, "linear", "log", ["a"])
    """
    axes.set(xlabel=xlabel, ylabel=ylabel, xscale=xscale, yscale=yscale, xlim=xlim, ylim=ylim)
    if legend:
        axes.legend(legend)
    axes.grid()


def plot(X, Y=None, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None,
         xscale="linear", yscale="linear", fmts=("-", "m--", "g-.", "r:"),
         figsize=(3.5, 2.5), axes=None):
    """Plot one or several curves (d2l's ``plot``); returns the axes.

    Example:
        >>> ax = plot([0, 1, 2], [[0, 1, 4]], legend=["x^2"], axes=Figure().add_subplot())
    """
    def has_one_axis(X):  # a flat list or 1-D array
        return (hasattr(X, "ndim") and X.ndim == 1
                or isinstance(X, list) and not hasattr(X[0], "__len__"))

    if axes is None:
        import matplotlib.pyplot as plt

        set_figsize(figsize)
        axes = plt.gca()
    if has_one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [[]] * len(X), X
    elif has_one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)
    axes.cla()
    for x, y, fmt in zip(X, Y, fmts):
        axes.plot(x, y, fmt) if len(x) else axes.plot(y, fmt)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend or [])
    return axes


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """Plot a grid of images with optional titles (d2l's ``show_images``); returns axes.

    Example:
        >>> axes = show_images([[[0, 1]], [[1, 0]]], 1, 2, titles=["a", "b"])
    """
    import matplotlib.pyplot as plt

    _, axes = plt.subplots(num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale),
                           squeeze=False)
    axes = axes.flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        if hasattr(img, "detach"):
            img = img.detach().cpu().numpy()
        ax.imshow(img, cmap="gray" if getattr(img, "ndim", 3) == 2 else None)
        ax.xaxis.set_visible(False)
        ax.yaxis.set_visible(False)
        if titles:
            ax.set_title(titles[i])
    return axes
