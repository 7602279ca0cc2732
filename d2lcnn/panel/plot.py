"""The panel's curve figure, drawn from the runs' Histories (nothing is copied)."""

from __future__ import annotations

from matplotlib.figure import Figure

from ..plotting import figure_png

__all__ = ["SERIES_STYLE", "draw_runs", "png"]

SERIES_STYLE = {"train loss": ("C0", "-"), "train acc": ("m", "--"),
                "test acc": ("g", "-.")}
MAX_OVERLAID = 6  # more faded curves than this turn the plot into noise


def _draw_run(ax_loss, ax_acc, run, newest: bool) -> None:
    for name, (color, style) in SERIES_STYLE.items():
        xs, ys = run.history.points.get(name, ([], []))
        n = min(len(xs), len(ys))  # the worker may be between appending x and y
        xs, ys = xs[:n], ys[:n]
        ax = ax_loss if name == "train loss" else ax_acc
        alpha, width = (1.0, 1.8) if newest else (0.25, 1.0)
        # a one-point series (a one-epoch run's test acc) is invisible as a line
        marker = "o" if len(xs) == 1 else None
        ax.plot(xs, ys, style, color=color, alpha=alpha, lw=width, marker=marker,
                clip_on=marker is None,  # a marker on the last epoch sits on the edge
                label=name if newest else None)
        if not newest and name == "test acc" and xs:
            ax.annotate(f"#{run.number}", (xs[-1], ys[-1]), fontsize=7, alpha=0.6)


def draw_runs(runs: list, *, overlay: bool = True) -> Figure:
    """Loss and accuracy of the newest run, earlier runs faded behind it.

    Each run is a ``PanelRun``; its curves are ``run.history.points``.

    Example:
        >>> from d2lcnn.panel import PanelRun
        >>> run = PanelRun(1, {"num_epochs": 1})
        >>> run.history.add_epoch(0.6, 0.8, 0.7, 1e3, 1e3, 1.0)
        >>> acc = draw_runs([run]).axes[1]
        >>> [(line.get_label(), line.get_marker()) for line in acc.lines]
        [('train acc', 'None'), ('test acc', 'o')]
    """
    fig = Figure(figsize=(9, 2.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    shown = runs[-MAX_OVERLAID:] if overlay else runs[-1:]
    for run in shown:
        _draw_run(ax_loss, ax_acc, run, newest=run is runs[-1])
    epochs = max([1] + [run.settings.get("num_epochs", 1) for run in shown])
    for ax, ylabel in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlim(0, epochs)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if any(not line.get_label().startswith("_") for line in ax.lines):
            ax.legend(loc="best", fontsize=8)
    ax_acc.set_ylim(0, 1)
    if runs:
        ax_acc.set_title(f"run #{runs[-1].number}: {runs[-1].status}", fontsize=9)
        if overlay and len(shown) > 1:
            ax_loss.set_title("earlier runs faded", fontsize=9)
    fig.tight_layout()
    return fig


def png(fig: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (an Agg canvas: no pyplot, no GUI backend).

    Example:
        >>> png(Figure(figsize=(1, 1)))[:4]
        b'\\x89PNG'
    """
    return figure_png(fig, dpi=dpi, tight=False)
