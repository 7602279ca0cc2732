"""Figure helpers from d2l (``plot``, ``show_images``, ``set_axes``, ...), drawn as PNG.

The live training plot, d2l's ``Animator``, is in ``d2lcnn.animator``.
"""

from __future__ import annotations

import io
import sys

# pyplot is imported lazily, by the helpers that draw on pyplot's current figure
from matplotlib.figure import Figure

__all__ = [
    "PngFigure",
    "figure_png",
    "in_notebook",
    "plot",
    "set_axes",
    "set_figsize",
    "show_images",
    "use_svg_display",
]


def figure_png(fig: Figure, dpi: int = 100, tight: bool = True) -> bytes:
    """The figure as PNG bytes (its own Agg canvas: no pyplot, no GUI backend).

    Example:
        >>> figure_png(Figure(figsize=(1, 1)))[:4]
        b'\\x89PNG'
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
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
