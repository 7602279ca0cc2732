"""The shape table (``layer_summary``) and model costs (``count_params``, FLOPs).

One probe pass (``probe.run``) with PyTorch's ``FlopCounterMode`` gives every row;
the counter counts a multiply-add as 2 FLOPs (conv, linear, matmul) and elementwise
ops (ReLU, pooling, bias) as 0. Printed tables are deterministic, so nbval compares
them strictly.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .probe import Feed, run, shape_of
from .shapes import check_shape_arg, raise_for


@dataclass(frozen=True)
class LayerRow:
    """One module call: qualified name, class name, output shape, own costs, nesting.

    ``params`` counts the module's parameters (with its children's) at its first call
    and 0 when the same module runs again; ``flops`` is that call's FLOPs.
    """

    name: str
    type: str
    output_shape: tuple
    params: int
    flops: int
    depth: int


@dataclass(frozen=True)
class LayerSummary:
    """The table ``layer_summary`` returns; prints as text, shows as HTML in Jupyter."""

    rows: list[LayerRow]
    input_shape: tuple | dict  # a dict when the example input was one
    output_shape: tuple
    total_params: int
    total_flops: int
    trainable_params: int = field(default=0)

    def _table(self) -> tuple[list[str], list[list[str]]]:
        header = ["Layer (type)", "Output shape", "Params", "FLOPs"]
        body = [
            [
                "  " * max(row.depth - 1, 0)
                + (f"{row.name} ({row.type})" if row.name else row.type),
                shape_str(row.output_shape),
                _count_str(row.params),
                si_str(row.flops),
            ]
            for row in self.rows
        ]
        return header, body

    def __str__(self) -> str:
        header, body = self._table()
        total = [
            "Total",
            shape_str(self.output_shape),
            f"{self.total_params:,}",
            si_str(self.total_flops),
        ]
        widths = [max(len(r[i]) for r in [header, total, *body]) for i in range(4)]

        def line(cells: list[str]) -> str:
            left = cells[0].ljust(widths[0])
            mid = cells[1].ljust(widths[1])
            right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
            return "  ".join([left, mid, *right]).rstrip()

        rule = "-" * len(line(["x" * w for w in widths]))
        lines = [f"Input shape: {shape_str(self.input_shape)}", line(header), rule]
        lines += [line(cells) for cells in body]
        lines += [rule, line(total)]
        lines.append(
            f"Params: {self.total_params:,} ({self.trainable_params:,} trainable)  "
            f"FLOPs per forward: {self.total_flops:,} (multiply-add = 2)"
        )
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        header, body = self._table()
        th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        rows = []
        for row, cells in zip(self.rows, body, strict=True):
            pad = 1.2 * max(row.depth - 1, 0)
            tds = [
                f'<td style="text-align:left;padding-left:{pad:.1f}em">'
                f"{html.escape(cells[0].strip())}</td>",
                f'<td style="text-align:left">{html.escape(cells[1])}</td>',
                *(f'<td style="text-align:right">{c}</td>' for c in cells[2:]),
            ]
            rows.append("<tr>" + "".join(tds) + "</tr>")
        total = (
            f'<tr style="font-weight:bold"><td style="text-align:left">Total</td>'
            f'<td style="text-align:left">{shape_str(self.output_shape)}</td>'
            f'<td style="text-align:right">{self.total_params:,}</td>'
            f'<td style="text-align:right">{si_str(self.total_flops)}</td></tr>'
        )
        caption = (
            f"Input shape {shape_str(self.input_shape)}; FLOPs per forward: "
            f"{self.total_flops:,} (multiply-add = 2)"
        )
        return (
            f"<table><caption>{caption}</caption><thead><tr>{th}</tr></thead>"
            f"<tbody>{''.join(rows)}{total}</tbody></table>"
        )


def count_params(net: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``net`` (shared parameters counted once).

    Example:
        >>> count_params(nn.Linear(400, 120))
        48120
    """
    return sum(
        p.numel() for p in net.parameters() if p.requires_grad or not trainable_only
    )


def count_flops(
    net: nn.Module,
    input_shape: Sequence[int],
    *,
    device: str | torch.device | None = None,
    backward: bool = False,
) -> int:
    """FLOPs of one forward pass on a batch of ``input_shape`` (multiply-add = 2);
    ``backward=True`` adds the backward's: the gradients of the weights and of every
    activation but the input (grouped convs counted right, unlike PyTorch 2.14's).

    Example:
        >>> count_flops(nn.Linear(400, 120), (1, 400))  # 2 * 400 * 120
        96000
        >>> count_flops(nn.Linear(400, 120), (1, 400), backward=True)  # + weights' grad
        192000
    """
    feed = make_feed(input_shape, None)
    trace = run(net, feed, device=device, count=True, backward=backward)
    raise_for(net, feed, trace)
    return trace.flops


def layer_summary(
    net: nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    depth: int | None = 2,
    device: str | torch.device | None = None,
    example_input: object = None,
) -> LayerSummary:
    """Run ``net`` once on zeros of ``input_shape`` and tabulate every layer call.

    Rows come in execution order (also for custom ``forward`` with branches), nested
    modules down to ``depth`` levels (None: all). The pass runs in eval mode without
    gradients and restores the modules' training flags afterwards. ``device=None``
    probes on the meta device (instant) and falls back to the net's own device.
    Bad shapes raise ``ShapeError`` naming the layer and the smallest input that works.
    A forward that takes several inputs or a dict gets ``example_input`` instead of
    ``input_shape``: a tuple is passed as positional arguments, anything else (a
    tensor, a dict) as the one argument.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Flatten())
        >>> print(layer_summary(net, (1, 1, 28, 28)))
        Input shape: (1, 1, 28, 28)
        Layer (type)  Output shape    Params  FLOPs
        -------------------------------------------
        0 (Conv2d)    (1, 6, 28, 28)     156   235K
        1 (Flatten)   (1, 4704)           --     --
        -------------------------------------------
        Total         (1, 4704)          156   235K
        Params: 156 (156 trainable)  FLOPs per forward: 235,200 (multiply-add = 2)
    """
    feed = make_feed(input_shape, example_input)
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be >= 1 or None, got {depth}")
    trace = run(net, feed, device=device, count=True)
    raise_for(net, feed, trace)
    calls = [c for c in trace.calls if c.depth >= 1]
    if not calls:  # a single layer: show the net itself as the only row
        calls = trace.calls[:1]
    rows = [
        LayerRow(c.name, type(c.module).__name__, c.output_shape, c.params, c.flops,
                 c.depth)  # fmt: skip
        for c in calls
        if depth is None or c.depth <= depth
    ]
    return LayerSummary(
        rows=rows,
        input_shape=feed.shape if feed.shape is not None else _example_shape(feed.args),
        output_shape=trace.calls[0].output_shape,
        total_params=count_params(net),
        total_flops=trace.calls[0].flops,
        trainable_params=count_params(net, trainable_only=True),
    )


def make_feed(input_shape: Sequence[int] | None, example_input: object) -> Feed:
    """The probe's input: zeros of ``input_shape`` or ``example_input`` (not both).

    Example:
        >>> make_feed((1, 3, 8, 8), None)
        Feed(shape=(1, 3, 8, 8), args=())
    """
    if example_input is None:
        if input_shape is None:
            raise ValueError(
                "pass input_shape, e.g. (1, 1, 28, 28), or example_input=<the tensor, "
                "tuple of arguments or dict the net's forward takes>"
            )
        return Feed(shape=check_shape_arg(input_shape))
    if input_shape is not None:
        raise ValueError(
            f"pass input_shape or example_input, not both (got input_shape="
            f"{input_shape!r}); the example's shapes are used"
        )
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    return Feed(args=args)


def _example_shape(args: tuple) -> tuple:
    shapes = tuple(_arg_shape(arg) for arg in args)
    return shapes[0] if len(shapes) == 1 else shapes


def _arg_shape(arg: object) -> tuple | dict:
    if isinstance(arg, dict):
        return {key: _arg_shape(value) for key, value in arg.items()}
    return shape_of(arg)


def shape_str(shape: tuple | dict) -> str:
    """A shape as printed in the table; nested shapes (several outputs) in brackets.

    Example:
        >>> shape_str((1, 6, 28, 28)), shape_str(((2, 3), (4,)))
        ('(1, 6, 28, 28)', '[(2, 3), (4,)]')
    """
    if isinstance(shape, dict):  # an example input given as a dict
        return "{" + ", ".join(f"{k!r}: {shape_str(v)}" for k, v in shape.items()) + "}"
    if shape and all(isinstance(s, tuple) for s in shape):
        return "[" + ", ".join(shape_str(s) for s in shape) + "]"
    return str(tuple(shape))


def _count_str(n: int) -> str:
    return f"{n:,}" if n else "--"


def si_str(n: int) -> str:
    """3 significant digits with K/M/G/T, e.g. 235200 -> '235K'.

    Example:
        >>> si_str(235200), si_str(1680), si_str(0)
        ('235K', '1.68K', '--')
    """
    if n == 0:
        return "--"
    if n < 1000:
        return str(n)
    for exponent, unit in ((12, "T"), (9, "G"), (6, "M"), (3, "K")):
        if n >= 10**exponent:
            value = n / 10**exponent
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f}{unit}"
    return str(n)
