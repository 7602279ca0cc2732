"""Checkers for chapters 5-9: GoogLeNet, batch norm, ResNet, DenseNet, MobileNet.

Expected values come from the chapters' nets and blocks (d2lcnn.models), run or
counted when the checker runs.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.batchnorm import LeNetBN, batch_norm
from ..models.densenet import DenseBlock, densenet, transition_block
from ..models.googlenet import Inception, googlenet
from ..models.mobilenet import mobilenet_v1
from ..models.resnet import RESNET18, Residual, ResNet, resnet18
from ..summary import count_flops, count_params, layer_summary, min_input_size
from .classic import count_wrongs
from .core import (
    exercise,
    match_function,
    match_number,
    match_shape,
    on_meta,
    output_problem,
    params_of,
)

RESNET34 = ((64, 3), (128, 4), (256, 6), (512, 3))  # paper's Table 1, 34-layer column


def _out(module: nn.Module, input_shape: tuple) -> tuple:
    with torch.no_grad():
        return tuple(module.eval()(torch.zeros(input_shape)).shape)


# ---- 5. GoogLeNet -----------------------------------------------------------------


@exercise("googlenet.min_input", "Smallest square input side googlenet() accepts")
def _googlenet_min_input(answer):
    return match_number(answer, min_input_size(googlenet()), [
        (96, "96 is the size the chapter trains at; every layer is padded, so much "
             "smaller inputs run"),
        (32, "32 is where the last stage still sees one real pixel; padding lets "
             "even smaller inputs run"),
    ])  # fmt: skip


def _inception_channels(c1, c2, c3, c4) -> int:
    return _out(Inception(8, c1, c2, c3, c4), (1, 8, 4, 4))[1]


@exercise("googlenet.channels", "Output channels of Inception(192, 64, (96, 128), "
                                "(16, 32), 32)")  # fmt: skip
def _googlenet_channels(answer):
    c1, c2, c3, c4 = 64, (96, 128), (16, 32), 32
    return match_number(answer, _inception_channels(c1, c2, c3, c4), [
        (c1 + sum(c2) + sum(c3) + c4, "you added the 1x1 reduction channels too; only "
                                      "each path's last layer reaches the output"),
        (c1 + c2[0] + c3[0] + c4, "you took the 3x3 and 5x5 paths' reduced channels, "
                                  "not their outputs"),
        (192 + c1 + c2[1] + c3[1] + c4, "the input is not concatenated to the output"),
    ])  # fmt: skip


@exercise("googlenet.channels_fn", "A function (c1, c2, c3, c4) -> output channels")
def _googlenet_channels_fn(answer):
    cases = [(64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64),
             (1, (2, 3), (4, 5), 6)]  # fmt: skip
    return match_function(answer, _inception_channels, cases, [
        (lambda c1, c2, c3, c4: c1 + sum(c2) + sum(c3) + c4,
         "you added the 1x1 reduction channels too"),
        (lambda c1, c2, c3, c4: c1 + c2[0] + c3[0] + c4,
         "you took the reduced channels (c2[0], c3[0]), not the paths' outputs"),
    ])  # fmt: skip


@exercise("googlenet.before_gap", "Shape (C, H, W) entering global average pooling at 96")
def _googlenet_before_gap(answer):
    net = googlenet()
    want = _out(net.features, (1, 1, 96, 96))[1:]
    at224 = layer_summary(net, (1, 1, 224, 224), depth=1).rows[0].output_shape[1:]
    return match_shape(answer, want, [
        (at224, "that is the shape at 224x224; this exercise is at 96x96"),
        ((want[0], 2 * want[1], 2 * want[2]), "one halving too few: count the stride-2 "
                                              "layers (five of them)"),
        ((want[0], 1, 1), "that is after the global average pooling"),
    ])  # fmt: skip


# ---- 6. Batch normalization -------------------------------------------------------


@exercise("batchnorm.added", "How many parameters does BN add to the sigmoid LeNet?")
def _batchnorm_added(answer):
    with_bn, plain = count_params(LeNetBN(bn="torch")), count_params(LeNetBN(bn=None))
    added = with_bn - plain
    return match_number(answer, added, [
        (added // 2, "BN learns two numbers per channel or feature: a scale γ and a "
                     "shift β"),
        (2 * added, "the moving mean and variance are buffers, updated but not "
                    "learned: they are not parameters"),
        (with_bn, "that is the whole net's count; the question asks what BN adds"),
    ])  # fmt: skip


@exercise("batchnorm.removable", "How many biases of lenet_bn() does BN make useless?")
def _batchnorm_removable(answer):
    net = LeNetBN(bn="torch")
    norms = (nn.BatchNorm1d, nn.BatchNorm2d)
    useless = every = 0
    for seq in (net.features, net.classifier):
        layers = list(seq)
        for layer, after in zip(layers, layers[1:] + [None]):
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                every += layer.bias.numel()
                useless += layer.bias.numel() if isinstance(after, norms) else 0
    return match_number(answer, useless, [
        (every, "the last Linear layer has no BN after it: its bias still matters"),
        (0, "subtracting the batch mean removes any constant added to a channel"),
    ])  # fmt: skip


def _bn_reference(X: torch.Tensor) -> torch.Tensor:
    Y, _, _ = batch_norm(X, 1.0, 0.0, torch.zeros(X.shape[1]), torch.ones(X.shape[1]),
                         eps=1e-5, momentum=0.9, training=True)  # fmt: skip
    return Y


@exercise("batchnorm.fn", "A function X -> batch-normalized X (2-D, training, γ=1, β=0)")
def _batchnorm_fn(answer):
    cases = [(torch.arange(24.0).reshape(6, 4) ** 1.5,),
             (torch.tensor([[1.0, 2.0], [3.0, 5.0], [0.0, -1.0]]),)]  # fmt: skip

    def unbiased(X):
        return (X - X.mean(0)) / torch.sqrt(X.var(0, unbiased=True) + 1e-5)

    def per_example(X):
        return (X - X.mean(1, keepdim=True)) / torch.sqrt(
            X.var(1, unbiased=False, keepdim=True) + 1e-5
        )

    def std_only(X):
        return X / torch.sqrt(X.var(0, unbiased=False) + 1e-5)

    return match_function(answer, _bn_reference, cases, [
        (unbiased, "you divided by the unbiased variance (n - 1); BN normalizes with "
                   "the biased one (divide by n)"),
        (per_example, "you normalized each example over its features; BN normalizes "
                      "each feature over the batch"),
        (std_only, "you divided by the standard deviation but forgot to subtract the "
                   "mean"),
    ], atol=1e-4)  # fmt: skip


@exercise("batchnorm.stats_shape", "Shape of the mean batch_norm keeps for (8, 6, 24, 24)")
def _batchnorm_stats_shape(answer):
    X = torch.zeros(8, 6, 24, 24)
    _, mean, _ = batch_norm(X, 1.0, 0.0, torch.zeros(1, 6, 1, 1), torch.ones(1, 6, 1, 1),
                            eps=1e-5, momentum=0.9, training=True)  # fmt: skip
    return match_shape(answer, tuple(mean.shape), [
        ((1, 6, 24, 24), "that keeps a mean per position; after a convolution BN "
                         "averages over the batch and all positions"),
        ((6,), "right count, but batch_norm keeps 4 dimensions so that it broadcasts"),
        ((8, 1, 1, 1), "that is a mean per example; BN keeps one per channel"),
    ])  # fmt: skip


# ---- 7. ResNet --------------------------------------------------------------------


@exercise("resnet.params", "How many parameters does resnet18() have?")
def _resnet_params(answer):
    net = resnet18()
    return match_number(answer, count_params(net), count_wrongs(net)[:2])


@exercise("resnet.block_shape", "Output (C, H, W) of Residual(64, 128, True, 2) on 24x24")
def _resnet_block_shape(answer):
    want = _out(Residual(64, 128, use_1x1conv=True, strides=2), (1, 64, 24, 24))[1:]
    return match_shape(answer, want, [
        ((want[0], 24, 24), "strides=2 halves height and width"),
        ((64, *want[1:]), "the block changes the channels to num_channels"),
        ((want[0], 6, 6), "only the first convolution (and the shortcut) has stride 2"),
    ])  # fmt: skip


@exercise("resnet.resnet34", "Build ResNet-34 with the ResNet class (stage table)")
def _resnet_resnet34(answer):
    got = params_of(answer)
    if isinstance(got, str):
        return got
    hint = match_number(got, count_params(on_meta(lambda: ResNet(RESNET34))), [
        (count_params(on_meta(lambda: ResNet(RESNET18))), "that is still ResNet-18: "
                                                          "change the num_residuals"),
        (count_params(on_meta(lambda: ResNet(((64, 3), (128, 4), (256, 6))))),
         "a stage is missing: the table has four rows"),
    ])  # fmt: skip
    return hint or output_problem(answer, (1, 1, 96, 96))


@exercise("resnet.last_share", "Fraction of resnet18()'s parameters in its last stage")
def _resnet_last_share(answer):
    net = resnet18()
    share = count_params(net.features[-1]) / count_params(net)
    if isinstance(answer, (int, float)) and 1 < answer <= 100:
        answer = answer / 100  # a percentage
    return match_number(answer, share, [
        (0.5, "half is a guess: divide count_params(net.features[-1]) by the total"),
        (count_params(net.features[-2]) / count_params(net),
         "that is the third stage (features[-2]); the last one is features[-1]"),
    ], rel=0.02)  # fmt: skip


# ---- 8. DenseNet ------------------------------------------------------------------


@exercise("densenet.params", "How many parameters does densenet() have?")
def _densenet_params(answer):
    net = densenet()
    return match_number(answer, count_params(net), count_wrongs(net)[:2] + [
        (count_params(resnet18()), "that is ResNet-18's count"),
    ])  # fmt: skip


@exercise("densenet.block_channels", "Output channels of DenseBlock(4, 64, 32)")
def _densenet_block_channels(answer):
    want = _out(DenseBlock(4, 64, 32), (1, 64, 4, 4))[1]
    return match_number(answer, want, [
        (32, "that is one conv block's output; the block concatenates its input and "
             "every output"),
        (64 + 32, "that is the input plus one conv block; there are 4"),
        (4 * 32, "you forgot the input's own 64 channels: they are concatenated too"),
    ])  # fmt: skip


@exercise("densenet.final_channels", "Channels entering densenet()'s linear layer")
def _densenet_final_channels(answer):
    net = densenet()
    no_halving = 64 + sum(4 * 32 for _ in range(4))
    return match_number(answer, net.classifier.in_features, [
        (no_halving, "the transition layers halve the channels between blocks"),
        (net.classifier.in_features * 2, "the last dense block has no transition after "
                                         "it: nothing halves its output"),
    ])  # fmt: skip


@exercise("densenet.transition", "Output (C, H, W) of transition_block(192, 96) on 24x24")
def _densenet_transition(answer):
    want = _out(transition_block(192, 96), (1, 192, 24, 24))[1:]
    return match_shape(answer, want, [
        ((want[0], 24, 24), "the average pooling halves height and width"),
        ((192, *want[1:]), "the 1x1 convolution reduces the channels"),
    ])  # fmt: skip


# ---- 9. MobileNet -----------------------------------------------------------------


@exercise("mobilenet.params", "How many parameters does mobilenet_v1() have?")
def _mobilenet_params(answer):
    net = mobilenet_v1()
    return match_number(answer, count_params(net), count_wrongs(net)[:1])


@exercise("mobilenet.dw_params", "Parameters of a 3x3 depthwise conv, 32 channels, no bias")
def _mobilenet_dw_params(answer):
    dw = nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)
    return match_number(answer, count_params(dw), [
        (32 * 32 * 9, "that is a standard convolution; in a depthwise one each filter "
                      "sees one channel"),
        (count_params(dw) + 32, "bias=False: there are no biases"),
        (9, "one 3x3 filter per channel, and there are 32 channels"),
    ])  # fmt: skip


@exercise("mobilenet.ratio", "FLOPs of depthwise separable / standard 3x3 conv, 64->128")
def _mobilenet_ratio(answer):
    shape = (1, 64, 16, 16)
    standard = count_flops(nn.Conv2d(64, 128, 3, padding=1, bias=False), shape)
    separable = count_flops(nn.Sequential(
        nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False),
        nn.Conv2d(64, 128, 1, bias=False)), shape)  # fmt: skip
    return match_number(answer, separable / standard, [
        (1 / 9, "that is only the pointwise part's share; add the depthwise part (1/N)"),
        (1 / 128, "that is only the depthwise part's share; add the pointwise part"),
        (1 / 64 + 1 / 9, "N is the number of output channels"),
        (standard / separable, "that is standard / separable: flip it"),
    ], rel=0.01)  # fmt: skip


@exercise("mobilenet.half", "Parameters of mobilenet_v1(width_mult=0.5)")
def _mobilenet_half(answer):
    full, half = count_params(mobilenet_v1()), count_params(mobilenet_v1(width_mult=0.5))
    return match_number(answer, half, [
        (full // 2, "α scales both the input and the output channels of each layer"),
        (full, "that is α = 1"),
        (full // 4, "close to α² of the full count, but the classifier and the first "
                    "layer do not scale that way: count it"),
    ])  # fmt: skip
