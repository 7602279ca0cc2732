"""Checkers for chapters 1-4: LeNet, AlexNet, VGG, NiN.

Every expected value is computed from the chapter's nets (d2lcnn.models), and so
are most wrong values: the count without biases, the shape before pooling, the
count at 224x224 when the exercise asks for 96x96.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import nn

from ..drawing import receptive_field
from ..models.alexnet import AlexNet, alexnet
from ..models.lenet import lenet
from ..models.nin import nin, nin_block
from ..models.vgg import VGG, VGG11, vgg11
from ..summary import count_params, layer_summary, min_input_size
from .core import exercise, match_number, match_shape, on_meta, output_problem, params_of

VGG16 = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))  # paper's Table 1, column D
VGG19 = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))  # column E


def count_wrongs(net: nn.Module) -> list[tuple[int, str]]:
    """The usual miscounts of a net's parameters, each with its hint.

    Example:
        >>> count_wrongs(nn.Linear(2, 3))[0]
        (6, 'you left out the biases (one per output channel or unit)')
    """
    weights = sum(p.numel() for n, p in net.named_parameters() if n.endswith("weight"))
    biases = sum(p.numel() for n, p in net.named_parameters() if n.endswith("bias"))
    convs = sum(count_params(m) for m in net.modules() if isinstance(m, nn.Conv2d))
    linears = sum(count_params(m) for m in net.modules() if isinstance(m, nn.Linear))
    return [
        (weights, "you left out the biases (one per output channel or unit)"),
        (weights + 2 * biases, "you counted the biases twice"),
        (convs, "you counted only the convolutions; add the Linear layers"),
        (linears, "you counted only the Linear layers; add the convolutions"),
    ]


def _rows(net: nn.Module, side: int) -> dict[str, tuple]:
    summary = layer_summary(net, (1, 1, side, side), depth=None)
    return {row.name: row.output_shape[1:] for row in summary.rows}


# ---- 1. LeNet ---------------------------------------------------------------------


@exercise("lenet.params", "How many parameters does lenet() have?")
def _lenet_params(answer):
    net = lenet()
    no_pad = count_params(net) - 120 * (400 - 256)  # 16x4x4 = 256 into the first Linear
    wrong = count_wrongs(net) + [
        (no_pad, "that is LeNet without padding in the first convolution (16x4x4 "
                 "into the first Linear); here padding=2 keeps 28x28"),
    ]  # fmt: skip
    return match_number(answer, count_params(net), wrong)


@exercise("lenet.flatten", "Shape (C, H, W) that the features hand to flatten at 28x28")
def _lenet_flatten(answer):
    rows = _rows(lenet(), 28)
    want = rows["features"]
    flat = 1
    for d in want:
        flat *= d
    return match_shape(answer, want, [
        (rows["features.3"], "this is the shape before pooling"),
        (rows["features.2"], "that is after the first pooling; one more convolution "
                             "and pooling follow"),
        ((want[0], want[1] - 1, want[2] - 1), "that is without padding=2 in the first "
                                              "convolution"),
        ((flat,), "that is the flattened length; give the shape (C, H, W) before "
                  "flattening"),
    ])  # fmt: skip


@exercise("lenet.min_input", "Smallest square input side lenet()'s convolutions accept")
def _lenet_min_input(answer):
    net = lenet()
    first = min_input_size(nn.Sequential(*net.features[:3]))
    return match_number(answer, min_input_size(net), [
        (28, "28 is the size the book feeds it; the convolutions accept smaller inputs "
             "(the first Linear would then need another size)"),
        (first, "that survives the first convolution and pooling, but the second 5x5 "
                "convolution and its pooling need a larger map"),
    ])  # fmt: skip


@exercise("lenet.field", "Receptive field side of one output of the second convolution")
def _lenet_field(answer):
    rows = receptive_field(lenet().features, (1, 1, 28, 28)).rows
    conv2 = [r for r in rows if r.type == "Conv2d"][1]
    stacked = 2 * conv2.kernel - 1  # the two 5x5 kernels as if no pooling sat between
    return match_number(answer, conv2.field, [
        (stacked, "you stacked the two 5x5 kernels directly, but the pooling between "
                  "them doubles the step between the second convolution's inputs"),
        (2 * conv2.kernel, "kernels do not add up side by side: each layer adds "
                           "(kernel - 1) x step"),
        (rows[-1].field, "that is after the second pooling layer"),
    ])  # fmt: skip


# ---- 2. AlexNet -------------------------------------------------------------------


@cache
def _alexnet_params(resolution: int, in_channels: int = 1, classes: int = 10) -> int:
    return count_params(on_meta(lambda: AlexNet(classes, in_channels, resolution)))


@exercise("alexnet.params224", "How many parameters does alexnet(resolution=224) have?")
def _alexnet_params224(answer):
    wrong = count_wrongs(on_meta(lambda: alexnet(resolution=224))) + [
        (_alexnet_params(224, 3, 1000), "that is the ImageNet version (3 input "
                                        "channels, 1000 classes); this one has 1 and 10"),
        (_alexnet_params(96), "that is the 96x96 count; this exercise is at 224x224"),
    ]  # fmt: skip
    return match_number(answer, _alexnet_params(224), wrong)


@exercise("alexnet.params96", "How many parameters does alexnet(resolution=96) have?")
def _alexnet_params96(answer):
    wrong = count_wrongs(on_meta(lambda: alexnet(resolution=96))) + [
        (_alexnet_params(224), "that is the 224x224 count; this exercise is at 96x96"),
    ]
    return match_number(answer, _alexnet_params(96), wrong)


@exercise("alexnet.conv1", "Output shape (C, H, W) of the first convolution at 224x224")
def _alexnet_conv1(answer):
    rows = _rows(on_meta(lambda: alexnet(resolution=224)), 224)
    want = rows["features.0"]
    return match_shape(answer, want, [
        ((want[0], 55, 55), "55 is the paper's number, exact for a 227x227 input (or "
                            "padding 2); here the input is 224 with padding 1"),
        (rows["features.2"], "that is after the max pooling"),
        ((want[0], 56, 56), "224 / 4 forgets that the 11x11 window must fit: use "
                            "floor((n + 2p - k) / s) + 1"),
    ])  # fmt: skip


def _largest(net: nn.Module, side: int, column: str) -> tuple[str, str]:
    rows = [r for r in layer_summary(net, (1, 1, side, side), depth=None).rows
            if r.type in ("Conv2d", "Linear")]  # fmt: skip
    top = max(rows, key=lambda r: getattr(r, column))
    swap = "flops" if column == "params" else "params"
    other = max(rows, key=lambda r: getattr(r, swap))
    return top.name, other.name


def _match_layer(answer, want: str, other: str, column: str) -> str | None:
    if not isinstance(answer, str):
        return f"the answer is a layer name such as 'features.0', got {answer!r}"
    name = answer.split()[0] if answer.strip() else ""
    if name == want:
        return None
    if name == other:
        has, asked = ("FLOPs", "parameters") if column == "params" else ("parameters", "FLOPs")
        return f"that layer has the most {has}, not the most {asked}"
    label = "Params" if column == "params" else "FLOPs"
    return (f"not that one: sort the {label} column of "
            "layer_summary(net, (1, 1, 224, 224), depth=None)")  # fmt: skip


@exercise("alexnet.most_params", "Name of the layer with the most parameters at 224")
def _alexnet_most_params(answer):
    want, other = _largest(on_meta(lambda: alexnet(resolution=224)), 224, "params")
    return _match_layer(answer, want, other, "params")


@exercise("alexnet.most_flops", "Name of the layer with the most FLOPs at 224")
def _alexnet_most_flops(answer):
    want, other = _largest(on_meta(lambda: alexnet(resolution=224)), 224, "flops")
    return _match_layer(answer, want, other, "flops")


# ---- 3. VGG -----------------------------------------------------------------------


@exercise("vgg.params", "How many parameters does vgg11() (224x224, full width) have?")
def _vgg_params(answer):
    net = on_meta(vgg11)
    wrong = count_wrongs(net) + [
        (count_params(on_meta(lambda: vgg11(ratio=4))), "that is the narrow variant "
                                                        "(ratio=4); this is full width"),
    ]  # fmt: skip
    return match_number(answer, count_params(net), wrong)


@exercise("vgg.field3", "Receptive field side of three stacked 3x3 convolutions")
def _vgg_field3(answer):
    stack = nn.Sequential(*(nn.Conv2d(1, 1, 3, padding=1) for _ in range(3)))
    field = receptive_field(stack, (1, 1, 32, 32)).rows[-1].field
    return match_number(answer, field, [
        (9, "fields do not add whole kernels: each extra 3x3 layer adds 2 pixels"),
        (27, "fields grow by addition, not multiplication"),
        (field + 2, "each 3x3 layer adds 2 pixels, but the first one starts from 1"),
    ])  # fmt: skip


@exercise("vgg.vgg16", "Build VGG-16 (paper's column D) with resolution=96, ratio=4")
def _vgg_vgg16(answer):
    got = params_of(answer)
    if isinstance(got, str):
        return got

    def n(arch, resolution=96, ratio=4):
        return count_params(on_meta(lambda: VGG(arch, resolution=resolution, ratio=ratio)))

    hint = match_number(got, n(VGG16), [
        (n(VGG19), "that has 16 convolutions: VGG-19; VGG-16 has 13 convolutions and "
                   "3 Linear layers"),
        (n(VGG11), "that is still VGG-11's table: blocks 1-5 need more convolutions"),
        (n(VGG16, ratio=1), "the exercise asks for ratio=4"),
        (n(VGG16, resolution=224), "that is sized for 224x224; pass resolution=96"),
    ])  # fmt: skip
    return hint or output_problem(answer, (1, 1, 96, 96))


@exercise("vgg.features96", "Shape (C, H, W) of vgg11(resolution=96, ratio=4).features")
def _vgg_features96(answer):
    rows = _rows(on_meta(lambda: vgg11(resolution=96, ratio=4)), 96)
    want = rows["features"]
    full = _rows(on_meta(lambda: vgg11(resolution=96)), 96)["features"]
    return match_shape(answer, want, [
        ((want[0], 7, 7), "7x7 is the size at 224x224; this exercise is at 96x96"),
        (full, "ratio=4 divides every block's channels by 4"),
        ((want[0] * want[1] * want[2],), "that is the flattened length; give (C, H, W)"),
        ((want[0], 2 * want[1], 2 * want[2]), "this is the shape before the last pooling"),
    ])  # fmt: skip


# ---- 4. NiN -----------------------------------------------------------------------


@exercise("nin.params", "How many parameters does nin() have?")
def _nin_params(answer):
    net = nin()
    return match_number(answer, count_params(net), count_wrongs(net)[:2])


@exercise("nin.block_params", "Parameters of nin_block(1, 96, 11, 4, 0)")
def _nin_block_params(answer):
    block = nin_block(1, 96, kernel_size=11, strides=4, padding=0)
    return match_number(answer, count_params(block), count_wrongs(block)[:2] + [
        (count_params(block[0]), "you counted only the 11x11 convolution; the block "
                                 "has two 1x1 convolutions too"),
        (count_params(block[0]) + 2 * 96 * 2, "a 1x1 convolution from 96 to 96 channels "
                                               "has a weight per (input, output) pair"),
    ])  # fmt: skip


@exercise("nin.gap_shape", "Shape of AdaptiveAvgPool2d((1, 1)) applied to (2, 10, 5, 5)")
def _nin_gap_shape(answer):
    out = nn.AdaptiveAvgPool2d((1, 1))(torch.zeros(2, 10, 5, 5)).shape
    return match_shape(answer, tuple(out), [
        ((2, 10), "that is after flattening; the pooling itself keeps 4 dimensions"),
        ((2, 10, 5, 5), "global average pooling averages over height and width"),
        ((10, 1, 1), "keep the batch dimension here: the input has 2 examples"),
        ((2, 1, 1, 1), "the average is per channel, not over the channels"),
    ])  # fmt: skip


@exercise("nin.features96", "Shape (C, H, W) of nin().features' output at 96x96")
def _nin_features96(answer):
    net = nin()
    want, at224 = _rows(net, 96)["features"], _rows(net, 224)["features"]
    return match_shape(answer, want, [
        (at224, "that is the shape at 224x224; this exercise is at 96x96"),
        ((10, *want[1:]), "that is after the classifier's NiN block; the features end "
                          "with 384 channels"),
    ])  # fmt: skip
