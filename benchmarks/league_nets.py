"""The league's nets: one name per configuration, the same build everywhere.

Three tiers, each trained on its own shared budget (``benchmarks/league.py``):

* ``book``: the chapters' nets as the chapters build them, all at 72 px (the smallest
  common size: AlexNet needs 65, NiN 67), and ``<net>_bn``, the same net with batch norm
  after every convolution (``with_batchnorm``) for the nets that lack it.
* ``matched``: the modern designs at about the same size (0.2-0.3 M parameters) on the
  images' own 28 px, each with its paper's small-image (CIFAR) design.
* ``lenet``: LeNet-5 and LeNet with batch norm, on 28 px, their own size.

Example:
    >>> net = build("vgg11_r4_bn")
    >>> net(torch.zeros(2, 1, 72, 72)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch  # noqa: F401 (the examples use it)
from torch import nn

from d2lcnn.models.densenet import DenseBlock, bottleneck_block, transition_block
from d2lcnn.models.mobilenet import MobileNetV1
from d2lcnn.settings import get_model

__all__ = ["DEFAULT", "LADDER", "NETS", "TIERS", "LeagueNet", "build", "densenet_bc",
           "mobilenet_v1_cifar", "with_batchnorm"]

TIERS = {  # tier -> side of the images, in pixels
    "book": 72,
    "matched": 28,
    "lenet": 28,
}


def with_batchnorm(net: nn.Module) -> nn.Module:
    """``net`` with ``nn.BatchNorm2d`` after every ``nn.Conv2d``, before its activation
    (Ioffe & Szegedy 2015, section 3.2), in place; the net's output layer stays plain.

    The rest of the net is unchanged, so the ``_bn`` variant differs in one factor: the
    conv biases stay (redundant before BN, as in torchvision's ``vgg11_bn``) and so does
    dropout (torchvision's ``vgg11_bn`` keeps it; BN-Inception removed it, section 4.2.1,
    which would be a second change). A conv that outputs the class scores (NiN's last)
    gets none: normalising the logits would undo the small last layer of He init.

    Example:
        >>> net = with_batchnorm(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(),
        ...                                    nn.Conv2d(4, 10, 1)))
        >>> [type(m).__name__ for m in net[0]], type(net[2]).__name__
        (['Conv2d', 'BatchNorm2d'], 'Conv2d')
    """
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        raise ValueError(f"{type(net).__name__} already has batch norm; with_batchnorm "
                         "adds it to nets without")
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    convs = [(name, m) for name, m in net.named_modules()
             if isinstance(m, nn.Conv2d) and m is not layers[-1]]
    for name, conv in convs:
        parent, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent), attr,
                nn.Sequential(conv, nn.BatchNorm2d(conv.out_channels)))
    return net


def densenet_bc(depth: int = 40, growth_rate: int = 12, num_classes: int = 10,
                in_channels: int = 1) -> nn.Module:
    """DenseNet-BC for small images (Huang et al. 2017, section 3, "Implementation
    Details"): a 3x3 conv to 2k channels, three dense blocks of (depth - 4) / 6
    bottleneck layers (BN-ReLU-1x1 to 4k, BN-ReLU-3x3 to k), transitions halving the
    channels (theta = 0.5) and the side, BN-ReLU, global average pooling, a linear layer.

    Example:
        >>> sum(p.numel() for p in densenet_bc(40, 12).parameters())
        176902
    """
    if (depth - 4) % 6:
        raise ValueError(f"DenseNet-BC's depth is 6n + 4 (e.g. 40, 100), got {depth}")
    layers_per_block = (depth - 4) // 6
    channels = 2 * growth_rate
    layers = [nn.Conv2d(in_channels, channels, kernel_size=3, padding=1)]
    for i in range(3):
        layers.append(DenseBlock(layers_per_block, channels, growth_rate,
                                 bottleneck_block))
        channels += layers_per_block * growth_rate
        if i < 2:  # 28 -> 14 -> 7
            layers.append(transition_block(channels, channels // 2))
            channels //= 2
    layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)),
               nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


def mobilenet_v1_cifar(width_mult: float = 0.25, num_classes: int = 10,
                       in_channels: int = 1) -> nn.Module:
    """MobileNet v1 (Howard et al. 2017) for small images: the chapter's net with its
    first conv at stride 1, so 28 px end in 2x2 maps, not 1x1 (the paper has only the
    ImageNet design; stride 1 first is the usual CIFAR change).

    Example:
        >>> net = mobilenet_v1_cifar(0.25)
        >>> net.features(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 256, 2, 2])
    """
    net = MobileNetV1(num_classes, in_channels, width_mult=width_mult)
    stem = net.features[0][0]
    net.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, kernel_size=3,
                                   stride=1, padding=1, bias=False)
    return net


# The sweep's learning rates: a 1-2-5 ladder (steps of 2-2.5x).
LADDER = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class LeagueNet:
    """One league net: its tier, how it is built, the lrs its sweep starts with.

    ``lrs``: three neighbouring rungs of ``LADDER`` around the chapter's lr (at batch 64;
    the BN variants a rung higher than their base); the league adds a rung while the
    best is at an edge. ``seconds``: 55,000 training images at batch 128 on the 2-core
    Intel Xeon with AMX (bf16 where faster), for the time estimate only: the chapters'
    timings on that CPU, scaled by the pixels to the tier's size, +25 % for batch norm.
    """

    name: str
    tier: str
    title: str
    make: Callable[[int], nn.Module]  # resolution -> net
    lrs: tuple[float, ...]
    seconds: float
    bn: bool = False  # has batch normalisation


def _bn(base: LeagueNet, lrs: tuple[float, ...]) -> LeagueNet:
    return LeagueNet(f"{base.name}_bn", base.tier, f"{base.title} + BN",
                     lambda size: with_batchnorm(base.make(size)), lrs,
                     base.seconds * 1.25, bn=True)


def _at_72(seconds: float, measured_at: int) -> float:  # time scales with the pixels
    return seconds * (TIERS["book"] / measured_at) ** 2


_ALEXNET = LeagueNet("alexnet", "book", "AlexNet",
                     lambda size: get_model("alexnet", resolution=size),
                     (0.01, 0.02, 0.05), 83)
_VGG = LeagueNet("vgg11_r4", "book", "VGG-11, channels / 4",
                 lambda size: get_model("vgg11", resolution=size, ratio=4),
                 (0.02, 0.05, 0.1), _at_72(63, 64))
_NIN = LeagueNet("nin", "book", "NiN", lambda size: get_model("nin"),
                 (0.01, 0.02, 0.05), _at_72(71, 112))
_GOOGLENET = LeagueNet("googlenet", "book", "GoogLeNet", lambda size: get_model("googlenet"),
                       (0.01, 0.02, 0.05), _at_72(124, 64))

NETS = {net.name: net for net in (  # each BN variant after its net
    _ALEXNET, _bn(_ALEXNET, (0.02, 0.05, 0.1)),
    _VGG, _bn(_VGG, (0.05, 0.1, 0.2)),
    _NIN, _bn(_NIN, (0.05, 0.1, 0.2)),
    _GOOGLENET, _bn(_GOOGLENET, (0.05, 0.1, 0.2)),
    LeagueNet("resnet18", "book", "ResNet-18", lambda size: get_model("resnet18"),
              (0.02, 0.05, 0.1), _at_72(124, 64) * 1.05, bn=True),  # ~ GoogLeNet's FLOPs
    LeagueNet("densenet", "book", "DenseNet (d2l's)", lambda size: get_model("densenet"),
              (0.02, 0.05, 0.1), _at_72(78, 64), bn=True),
    LeagueNet("mobilenet_v1", "book", "MobileNet v1", lambda size: get_model("mobilenet_v1"),
              (0.02, 0.05, 0.1), _at_72(165, 64), bn=True),
    # matched: about ResNet-20's 0.27 M parameters, each on the paper's small-image design
    LeagueNet("resnet20", "matched", "ResNet-20 (CIFAR design)",
              lambda size: get_model("resnet20"), (0.02, 0.05, 0.1), 36, bn=True),
    LeagueNet("densenet_bc52", "matched", "DenseNet-BC, L = 52, k = 12 (CIFAR design)",
              lambda size: densenet_bc(52, 12), (0.02, 0.05, 0.1),
              175, bn=True),  # from 3 steps' CPU time, 1 thread (6.4 ms an image)
    LeagueNet("mobilenet_v1_025", "matched", "MobileNet v1, alpha 0.25, stride-1 stem",
              lambda size: mobilenet_v1_cifar(0.25), (0.02, 0.05, 0.1),
              30, bn=True),  # the same (1.1 ms an image in fp32)
    LeagueNet("lenet", "lenet", "LeNet-5 (sigmoid, average pooling)",
              lambda size: get_model("lenet"), (0.2, 0.5, 1.0), 2.5),
    LeagueNet("lenet_bn", "lenet", "LeNet-5 + BN (chapter 06)",
              lambda size: get_model("lenet_bn"), (0.1, 0.2, 0.5), 3, bn=True),
)}


# A league run without --nets trains these: all but AlexNet's BN variant, which costs as
# much as VGG's (about 9 of the ~2 hours); `--nets alexnet_bn` adds it to the same files.
DEFAULT = tuple(name for name in NETS if name != "alexnet_bn")


def build(name: str, size: int | None = None) -> nn.Module:
    """League net ``name`` for ``size``-pixel images (default: its tier's size).

    Example:
        >>> build("lenet_bn")(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    if name not in NETS:
        raise ValueError(f"unknown league net {name!r}; choose one of {', '.join(NETS)}")
    net = NETS[name]
    return net.make(size or TIERS[net.tier])
