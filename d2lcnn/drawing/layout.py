"""The layout of a network drawing: boxes in execution order, placed in ranks and lanes.

Built on the shape inspector's probe (``d2lcnn.summary.probe``): one hooked pass on the
meta device records every module call and, through every torch op, which calls fed
it. A box is a module call at the chosen ``depth`` (or a shallower leaf); a *merge* box
stands for the op where paths meet inside a block (Inception's ``torch.cat``, a
residual ``Y += X``), so branches are drawn side by side and joined where the code
joins them. The layout is pure data, so its text is compared strictly under nbval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from ..summary.probe import INPUT, Call, Trace, run
from ..summary.shapes import raise_for
from ..summary.table import make_feed

_MERGES = {"cat": "concat", "concatenate": "concat", "stack": "stack"}


@dataclass(frozen=True)
class Box:
    """One box: a layer, a block, the input, or a merge where paths meet."""

    index: int  # position in the drawing's order (execution order)
    name: str  # the module's qualified name, "" for the input and the net itself
    type: str  # class name, "input", or "concat" / "add" for a merge
    detail: str  # kernel/stride, features, e.g. "5x5" or "3x3/2" or "400->120"
    output_shape: tuple
    preds: tuple[int, ...]  # boxes whose outputs this one takes
    rank: int  # row: 1 + the largest rank among its preds
    lane: int  # column: parallel paths get their own lane
    params: int

    @property
    def label(self) -> str:
        return f"{self.type} {self.detail}".strip()

    @property
    def size(self) -> int:
        """Elements per example of the output (C*H*W), 1 if it is not one tensor."""
        dims = self.output_shape[1:]
        return math.prod(dims) if dims and all(isinstance(d, int) for d in dims) else 1


@dataclass(frozen=True)
class NetLayout:
    """The boxes of ``draw_net``; prints as a deterministic table."""

    title: str
    input_shape: tuple
    boxes: tuple[Box, ...]

    @property
    def lanes(self) -> int:
        return 1 + max(box.lane for box in self.boxes)

    @property
    def ranks(self) -> int:
        return 1 + max(box.rank for box in self.boxes)

    def __str__(self) -> str:
        head = (
            f"{self.title}: {len(self.boxes)} boxes in {self.ranks} ranks, "
            f"{self.lanes} {'lane' if self.lanes == 1 else 'lanes'}"
        )
        rows = [("#", "rank", "lane", "box", "output", "from")]
        for box in self.boxes:
            what = f"{box.name} {box.label}".strip()
            preds = ",".join(map(str, box.preds)) or "-"
            rows.append((str(box.index), str(box.rank), str(box.lane), what,
                         shape_text(box.output_shape), preds))  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(6)]
        lines = [head]
        for row in rows:
            cells = [row[0].rjust(widths[0]), row[1].rjust(widths[1]),
                     row[2].rjust(widths[2]), row[3].ljust(widths[3]),
                     row[4].ljust(widths[4]), row[5]]  # fmt: skip
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    __repr__ = __str__


def net_layout(
    net: nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    depth: int | None = 2,
    example_input: object = None,
) -> NetLayout:
    """The boxes ``draw_net`` draws, as data: order, ranks, lanes, shapes, edges.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2))
        >>> print(net_layout(net, (1, 1, 28, 28)))
        Sequential: 4 boxes in 4 ranks, 1 lane
        #  rank  lane  box                output   from
        0     0     0  input              1x28x28  -
        1     1     0  0 Conv2d 5x5       6x24x24  0
        2     2     0  1 ReLU             6x24x24  1
        3     3     0  2 MaxPool2d 2x2/2  6x12x12  2
    """
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be >= 1 or None, got {depth}")
    feed = make_feed(input_shape, example_input)
    trace = run(net, feed, device=None, count=False, track=True)
    raise_for(net, feed, trace)
    shape = feed.shape if feed.shape is not None else trace.calls[0].input_shape or ()
    nodes = _Nodes(trace, depth if depth is not None else math.inf)
    boxes = _place(nodes.build(), shape)
    return NetLayout(f"{type(net).__name__}", tuple(shape), tuple(boxes))


class _Nodes:
    """Boxes and merges of one trace, with their sources resolved to boxes."""

    def __init__(self, trace: Trace, depth: float) -> None:
        self.calls, self.children, self.depth = trace.calls, trace.children, depth
        self.merges: dict[int, tuple[float, frozenset]] = {}  # call -> (key, preds)
        self.resolved: dict[int, frozenset] = {}
        self.boxes = [c.index for c in self.calls if self.is_box(c)] or [0]

    def is_box(self, call: Call) -> bool:
        leaf = call.depth == self.depth or call.index not in self.children
        return 1 <= call.depth <= self.depth and leaf

    def build(self) -> list[tuple[float, Call | None, frozenset]]:
        """(order key, call or None for a merge, preds as keys), in drawing order."""
        box_set = set(self.boxes)
        for call in self.calls:  # every block above the cut, the net included
            if call.index not in box_set and call.index in self.children:
                self.resolve_call(call.index)
        nodes = [
            (float(i), self.calls[i], self.resolve(self.calls[i].sources) - {float(i)})
            for i in self.boxes
        ]
        for index, (key, inner) in self.merges.items():
            nodes.append((key, self.calls[index], inner))
        return sorted(nodes, key=lambda node: node[0])

    def resolve(self, sources: frozenset) -> frozenset:
        found: frozenset = frozenset()
        for index in sources:
            found |= frozenset({-1.0}) if index == INPUT else self.resolve_call(index)
        return found

    def resolve_call(self, index: int) -> frozenset:
        """The boxes (keys) that stand for call ``index``'s output."""
        if index in self.resolved:
            return self.resolved[index]
        call = self.calls[index]
        if index in self.boxes:
            result = frozenset({float(index)})
        elif index in self.children and (call.depth < self.depth):
            inner = self.resolve(call.output_sources)
            if len(inner) > 1:  # paths meet inside this block: draw where they join
                key = self._last_descendant(index) + 0.5
                self.merges[index] = (key, inner)
                inner = frozenset({key})
            result = inner
        else:  # inside a box: the box stands for it
            parent = call.parent
            while parent is not None and parent not in self.boxes:
                parent = self.calls[parent].parent
            result = frozenset({float(parent if parent is not None else 0)})
        self.resolved[index] = result
        return result

    def _last_descendant(self, index: int) -> int:
        while index in self.children:
            index = self.children[index][-1]
        return index


def _place(nodes: list, input_shape: tuple) -> list[Box]:
    """Number the nodes and give each a rank (longest path) and a lane."""
    order = {-1.0: 0}
    boxes = [Box(0, "", "input", "", tuple(input_shape), (), 0, 0, 0)]
    taken: dict[int, set[int]] = {0: {0}}
    for key, call, preds in nodes:
        order[key] = len(boxes)
        pred_ids = tuple(sorted(order[p] for p in preds if p in order)) or (0,)
        rank = 1 + max(boxes[p].rank for p in pred_ids)
        preferred = min(boxes[p].lane for p in pred_ids)
        lane = _free_lane(preferred, taken.setdefault(rank, set()))
        taken[rank].add(lane)
        merge = key != float(call.index)  # a merge sits after its block's last call
        kind = _merge_type(call.output_merge) if merge else type(call.module).__name__
        boxes.append(Box(
            index=len(boxes),
            name=call.name,
            type=kind,
            detail="" if merge else describe(call.module),
            output_shape=call.output_shape,
            preds=pred_ids,
            rank=rank,
            lane=lane,
            params=0 if merge else call.params,
        ))  # fmt: skip
    return boxes


def _free_lane(preferred: int, taken: set[int]) -> int:
    """The free lane nearest ``preferred`` (ties: the lower one)."""
    for step in range(len(taken) + 1):
        for lane in (preferred - step, preferred + step):
            if lane >= 0 and lane not in taken:
                return lane
    return max(taken) + 1


def _merge_type(op: str | None) -> str:
    op = (op or "merge").strip("_")
    if op.startswith(("add", "iadd")):
        return "add"
    return _MERGES.get(op, op)


def describe(module: nn.Module) -> str:
    """Kernel/stride of a convolution or pooling, features of a Linear, else "".

    Example:
        >>> describe(nn.Conv2d(3, 8, 3, stride=2)), describe(nn.Linear(400, 120))
        ('3x3/2', '400->120')
    """
    if isinstance(module, nn.Linear):
        return f"{module.in_features}->{module.out_features}"
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return "->" + "x".join(map(str, _pair(module.output_size)))
    kernel = getattr(module, "kernel_size", None)
    if kernel is None:
        return ""
    text = "x".join(map(str, _pair(kernel)))
    stride = _pair(getattr(module, "stride", 1) or kernel)
    if any(s != 1 for s in stride):
        text += "/" + "x".join(map(str, sorted(set(stride))))
    groups = getattr(module, "groups", 1)
    if groups > 1:
        text += " dw" if groups == getattr(module, "in_channels", 0) else f" g{groups}"
    return text


def _pair(value: object) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def shape_text(shape: tuple) -> str:
    """An output shape without the batch: ``(1, 6, 28, 28)`` -> ``6x28x28``.

    Example:
        >>> shape_text((1, 6, 28, 28)), shape_text((1, 10))
        ('6x28x28', '10')
    """
    dims = shape[1:]
    if dims and all(isinstance(d, int) for d in dims):
        return "x".join(map(str, dims))
    return str(shape)
