"""How much of the input each layer sees: the receptive field, layer by layer.

For a chain of convolutions and poolings (LeNet, AlexNet, VGG, NiN) the field of view
grows as ``r += (k - 1) * j`` and the step between neighbouring outputs as ``j *= s``
(kernel ``k``, dilation folded in, stride ``s``): two 3x3 convolutions see 5x5, three
see 7x7, with fewer parameters than one 5x5 or 7x7 (VGG's argument).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from ..plot import PngFigure
from .layout import net_layout

_WINDOWED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
             nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)  # fmt: skip
_GLOBAL = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass(frozen=True)
class FieldRow:
    """One windowed layer: its kernel and stride, the step and field after it."""

    name: str
    type: str
    kernel: int
    stride: int
    jump: int  # input pixels between neighbouring outputs
    field: int  # input pixels one output sees (per side)


@dataclass(frozen=True)
class ReceptiveField:
    """The rows of ``receptive_field``; prints as a table, ``.plot()`` draws them."""

    title: str
    input_side: int
    rows: tuple[FieldRow, ...]

    def __str__(self) -> str:
        table = [("layer", "kernel", "stride", "jump", "receptive field")]
        table += [
            (f"{r.name} {r.type}".strip(), f"{r.kernel}x{r.kernel}", str(r.stride),
             str(r.jump), f"{r.field}x{r.field}" + self._whole(r))
            for r in self.rows
        ]  # fmt: skip
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        lines = [f"{self.title}, input {self.input_side}x{self.input_side}"]
        for row in table:
            right = [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
            lines.append("  ".join([row[0].ljust(widths[0]), *right]))
        return "\n".join(line.rstrip() for line in lines)

    __repr__ = __str__

    def _whole(self, row: FieldRow) -> str:
        return " (all)" if row.field >= self.input_side else ""

    def plot(self, ax: Axes | None = None) -> Figure:
        """The receptive field (side, pixels) after each windowed layer, and the input.

        Example:
            >>> pair = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3))
            >>> rf = receptive_field(pair, (1, 1, 8, 8))
            >>> rf.plot().axes[0].lines[0].get_ydata().tolist()
            [3, 5]
        """
        if ax is None:
            fig = PngFigure(figsize=(max(4.0, 0.45 * len(self.rows) + 1.5), 3.4), dpi=100,
                         layout="constrained")  # fmt: skip
            ax = fig.add_subplot()
        steps = range(1, len(self.rows) + 1)
        ax.plot(steps, [r.field for r in self.rows], marker="o", color="#3b75af")
        ax.axhline(self.input_side, color="gray", lw=0.8, ls=":")
        ax.text(1, self.input_side, " input", va="bottom", fontsize=7, color="gray")
        labels = [f"{r.name} {r.type}".strip() for r in self.rows]
        ax.set_xticks(list(steps), labels, fontsize=6, rotation=60, ha="right")
        ax.set_ylabel("receptive field (pixels per side)", fontsize=8)
        ax.set_title(self.title, fontsize=9)
        return ax.figure


def receptive_field(net: nn.Module, input_shape: Sequence[int]) -> ReceptiveField:
    """The receptive field after each convolution and pooling of a chain of layers.

    Only for nets whose layers run one after another (LeNet, AlexNet, VGG, NiN); a net
    with branches gets a ValueError naming the first one. Square kernels are assumed
    (the first side is used). The chain stops at the first Flatten or Linear.

    Example:
        >>> stack = nn.Sequential(*(nn.Conv2d(1, 1, 3, padding=1) for _ in range(3)))
        >>> [row.field for row in receptive_field(stack, (1, 1, 32, 32)).rows]
        [3, 5, 7]
    """
    layout = net_layout(net, input_shape, depth=None)
    for box in layout.boxes[1:]:
        if box.preds != (box.index - 1,):
            raise ValueError(
                f"receptive_field follows one chain of layers, but "
                f"{box.name or 'the net'} ({box.label}) is on a branch or joins "
                f"branches (it takes box {box.preds} of net_layout, not the layer just "
                f"before it); pass a part without branches, e.g. "
                f"receptive_field(net.features[:2], input_shape)"
            )
    modules = dict(net.named_modules())
    rows: list[FieldRow] = []
    jump, field, side = 1, 1, layout.input_shape[-1]
    for box in layout.boxes[1:]:
        module = modules[box.name] if box.name in modules else net
        if isinstance(module, (nn.Flatten, nn.Linear)):
            break
        if isinstance(module, _GLOBAL):  # one window over what is left
            kernel = stride = _side(layout.boxes[box.preds[0]].output_shape)
        elif isinstance(module, _WINDOWED):
            kernel, stride = _window(module)
        else:
            continue
        field += (kernel - 1) * jump
        jump *= stride
        kind = type(module).__name__
        rows.append(FieldRow(box.name, kind, kernel, stride, jump, field))
    return ReceptiveField(layout.title, side, tuple(rows))


def _window(module: nn.Module) -> tuple[int, int]:
    kernel = _first(module.kernel_size)
    dilation = _first(getattr(module, "dilation", 1))
    stride = _first(module.stride if module.stride is not None else module.kernel_size)
    return dilation * (kernel - 1) + 1, stride


def _first(value: object) -> int:
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


def _side(shape: tuple) -> int:
    return int(shape[-1]) if shape and isinstance(shape[-1], int) else 1
