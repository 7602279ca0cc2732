"""Matplotlib views of a net: ``draw_net`` (its boxes) and ``draw_costs`` (where the
parameters and FLOPs sit). Both build a ``matplotlib.figure.Figure`` directly, not
through pyplot, so nothing global changes and the same call gives the same figure."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import nn

from ..plot import PngFigure
from ..summary.probe import run
from ..summary.shapes import raise_for
from ..summary.table import make_feed, si_str
from .layout import Box, NetLayout, describe, net_layout, shape_text

LANE, RANK = 3.0, 1.0  # data units between lanes (x) and ranks (y)
HEIGHT = 0.7  # box height; widths grow with log(C*H*W)
COLORS = {
    "conv": "#9cc3e6", "pool": "#f6c685", "linear": "#a8d8a0", "norm": "#dddddd",
    "activation": "#f3e9b0", "merge": "#eba5a5", "input": "#ffffff",
    "shape": "#eeeeee", "block": "#cbb8e3",
}  # fmt: skip
_ACTIVATIONS = {"ReLU", "ReLU6", "Sigmoid", "Tanh", "GELU", "LeakyReLU", "SiLU",
                "Softmax"}  # fmt: skip


def draw_net(
    net: nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    depth: int | None = 2,
    ax: Axes | None = None,
    example_input: object = None,
    full_width: int | None = None,
) -> Figure:
    """Draw ``net`` as it runs: one box per layer or block at ``depth``, top to bottom.

    Each box is as wide as log(C*H*W) of its output and says its type, kernel/stride
    and output shape; parallel paths get lanes side by side and meet in a merge box
    (``concat``, ``add``) where the code joins them. ``net_layout`` gives the same
    boxes as text. Draws into ``ax`` if given, else into a new figure sized to fit.
    ``full_width`` is the C*H*W drawn widest (default: this net's largest output); give
    several nets the same value to draw them at one scale.

    Example:
        >>> fig = draw_net(nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU()), (1, 1, 28, 28))
        >>> len(fig.axes[0].patches)  # input, conv, relu; and two arrows
        5
    """
    layout = net_layout(net, input_shape, depth=depth, example_input=example_input)
    if ax is None:
        width = max(4.0, 2.2 * layout.lanes + 1.0)
        fig = PngFigure(figsize=(width, max(2.0, 0.72 * layout.ranks + 0.6)), dpi=100)
        ax = fig.add_subplot()
    render(layout, ax, full_width=full_width)
    return ax.figure


def render(layout: NetLayout, ax: Axes, *, full_width: int | None = None) -> None:
    """Draw a layout's boxes and edges into ``ax`` (deterministic: no autoscaling)."""
    largest = math.log10(max(10, full_width or max(box.size for box in layout.boxes)))
    widths = {
        b.index: 0.9 + 1.8 * math.log10(max(b.size, 1)) / largest for b in layout.boxes
    }
    detours = 0
    for box in layout.boxes:
        for pred in box.preds:
            detours += _edge(ax, layout, layout.boxes[pred], box, widths, detours)
    for box in layout.boxes:
        x, y, w = box.lane * LANE, -box.rank * RANK, widths[box.index]
        ax.add_patch(FancyBboxPatch(
            (x - w / 2, y - HEIGHT / 2), w, HEIGHT,
            boxstyle="round,pad=0.02,rounding_size=0.1", edgecolor="#555555",
            facecolor=COLORS[family(box.type)], linewidth=0.8, zorder=2,
        ))  # fmt: skip
        lines = [box.label, shape_text(box.output_shape)]
        if box.name:
            lines.insert(0, box.name)
        ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=6.5,
                linespacing=1.15, zorder=3)  # fmt: skip
    right = (layout.lanes - 1) * LANE + 1.6 + 0.25 * detours
    ax.set_xlim(-1.6, max(right, 1.6))
    ax.set_ylim(-(layout.ranks - 1) * RANK - 0.6, 0.6)
    ax.set_axis_off()
    ax.set_title(f"{layout.title}, input {layout.input_shape}", fontsize=8)


def _edge(
    ax: Axes, layout: NetLayout, src: Box, dst: Box, widths: dict, detours: int
) -> int:
    """An arrow from ``src`` to ``dst``, around any boxes between them (then: 1)."""
    x0, y0 = src.lane * LANE, -src.rank * RANK - HEIGHT / 2
    x1, y1 = dst.lane * LANE, -dst.rank * RANK + HEIGHT / 2
    low, high = sorted((src.lane, dst.lane))
    blocked = [b for b in layout.boxes
               if src.rank < b.rank < dst.rank and low <= b.lane <= high]  # fmt: skip
    style = {"arrowstyle": "-|>", "mutation_scale": 7, "color": "#555555", "lw": 0.7,
             "zorder": 1}  # fmt: skip
    if not blocked:
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), **style))
        return 0
    # a skip connection: out to the right of everything it passes, then back in
    lanes = [b.lane for b in layout.boxes if src.rank <= b.rank <= dst.rank]
    route = max(lanes) * LANE + 1.5 + 0.25 * detours
    ys = (-src.rank * RANK, -dst.rank * RANK)
    ax.plot([x0 + widths[src.index] / 2, route, route], [ys[0], ys[0], ys[1]],
            color="#555555", lw=0.7, zorder=1)  # fmt: skip
    end = (x1 + widths[dst.index] / 2, ys[1])
    ax.add_patch(FancyArrowPatch((route, ys[1]), end, **style))
    return 1


def family(kind: str) -> str:
    """The colour group of a box type.

    Example:
        >>> family("Conv2d"), family("MaxPool2d"), family("concat")
        ('conv', 'pool', 'merge')
    """
    if kind in ("add", "concat", "stack") or kind.startswith("merge"):
        return "merge"
    for word, name in (("Conv", "conv"), ("Pool", "pool"), ("Linear", "linear"),
                       ("Norm", "norm")):  # fmt: skip
        if word in kind:
            return name
    if kind in _ACTIVATIONS:
        return "activation"
    if kind in ("input", "Flatten", "Dropout"):
        return "input" if kind == "input" else "shape"
    return "block"


def draw_costs(
    net: nn.Module,
    input_shape: Sequence[int],
    *,
    depth: int | None = 1,
    ax: Sequence[Axes] | None = None,
) -> Figure:
    """Bars of where the parameters and the FLOPs sit, per stage (modules at ``depth``).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 6, 5), nn.Flatten(), nn.Linear(3456, 10))
        >>> fig = draw_costs(net, (1, 1, 28, 28))
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ['0 Conv2d 5x5', '2 Linear 3456->10']
    """
    stages = cost_stages(net, input_shape, depth=depth)
    if ax is None:
        size = (8.0, 0.9 + 0.28 * len(stages))
        fig = PngFigure(figsize=size, dpi=100, layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
    else:
        axes, fig = list(ax), ax[0].figure
    labels = [name for name, _, _ in stages]
    for axis, column, title in ((axes[0], 1, "parameters"), (axes[1], 2, "FLOPs")):
        values = [stage[column] for stage in stages]
        total = sum(values) or 1
        color = "#7fa7d6" if column == 1 else "#e3a05c"
        axis.barh(range(len(stages)), values, color=color)
        for i, value in enumerate(values):
            axis.text(value, i, f" {si_str(value)} ({value / total:.0%})", va="center",
                      fontsize=7)  # fmt: skip
        axis.set_title(f"{title}: {si_str(sum(values))}", fontsize=9)
        axis.set_xlim(0, max(values + [1]) * 1.45)
        axis.tick_params(labelsize=7)
        axis.set_xticks([])  # each bar is labelled with its value
    axes[0].set_yticks(range(len(stages)), labels)
    axes[0].invert_yaxis()
    return fig


def cost_stages(
    net: nn.Module, input_shape: Sequence[int], *, depth: int | None = 1
) -> list[tuple[str, int, int]]:
    """(stage label, parameters, FLOPs) for every module at ``depth`` that costs any.

    Example:
        >>> cost_stages(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (2, 4))
        [('0 Linear 4->3', 15, 48)]
    """
    feed = make_feed(input_shape, None)
    trace = run(net, feed, device=None, count=True)
    raise_for(net, feed, trace)
    limit = depth if depth is not None else math.inf
    stages = []
    for call in trace.calls:
        leaf = call.depth == limit or call.index not in trace.children
        if 1 <= call.depth <= limit and leaf and (call.params or call.flops):
            label = f"{call.name} {type(call.module).__name__} {describe(call.module)}"
            stages.append((label.strip(), call.params, call.flops))
    if not stages:  # a single layer: the net is its only stage
        root = trace.calls[0]
        stages.append((type(net).__name__, root.params, root.flops))
    return stages
