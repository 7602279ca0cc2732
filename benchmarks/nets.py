"""The reference side's nets, as the d2l book's chapters write them.

d2lcnn's side trains the same architectures from its registry (``build_model``);
tests/test_benchmarks.py checks that the two match layer for layer. Only torch is
imported: the reference side loads this file without d2lcnn.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def lenet() -> nn.Sequential:
    """LeNet-5 as in d2l (sigmoid, average pooling), for 28x28 inputs.

    Example:
        >>> lenet()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),  # (B, 16, 5, 5) -> (B, 400)
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))


def alexnet(resize: int = 224) -> nn.Sequential:
    """AlexNet as in d2l, with the first Linear sized for ``resize`` (6400 at 224).

    At 96 px the features end at (B, 256, 1, 1), so the first Linear is 256 -> 4096
    instead of the book's 6400 -> 4096; everything else is the book's.

    Example:
        >>> alexnet(96)(torch.zeros(2, 1, 96, 96)).shape
        torch.Size([2, 10])
    """
    features = nn.Sequential(
        nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Flatten())
    with torch.no_grad():
        flat = features(torch.zeros(1, 1, resize, resize)).shape[1]
    return nn.Sequential(
        *features,
        nn.Linear(flat, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 10))


class Residual(nn.Module):
    """d2l's residual block: two 3x3 convs with batch norm, optional 1x1 shortcut."""

    def __init__(self, input_channels: int, num_channels: int,
                 use_1x1conv: bool = False, strides: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3,
                               padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.Conv2d(input_channels, num_channels, kernel_size=1,
                                stride=strides) if use_1x1conv else None)
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def _resnet_block(input_channels: int, num_channels: int, num_residuals: int,
                  first_block: bool = False) -> list[nn.Module]:
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(Residual(input_channels, num_channels, use_1x1conv=True,
                                   strides=2))
        else:
            blocks.append(Residual(num_channels, num_channels))
    return blocks


def resnet18() -> nn.Sequential:
    """ResNet-18 as in d2l's ResNet chapter (7x7 stem, four stages of two blocks).

    Example:
        >>> resnet18()(torch.zeros(2, 1, 96, 96)).shape
        torch.Size([2, 10])
    """
    b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
                       nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    stages = [(64, 64, 2, True), (64, 128, 2, False), (128, 256, 2, False),
              (256, 512, 2, False)]  # (in, out, residuals, first_block)
    return nn.Sequential(
        b1, *(nn.Sequential(*_resnet_block(*row)) for row in stages),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))


NETS = {"lenet": lenet, "alexnet": alexnet, "resnet18": resnet18}


def build(name: str, resize: int | None = None) -> nn.Module:
    """Build a benchmark net by name; AlexNet's head is sized for ``resize``.

    Example:
        >>> type(build("lenet")).__name__
        'Sequential'
    """
    if name not in NETS:
        raise ValueError(
            f"unknown benchmark net {name!r}; choose one of {sorted(NETS)}")
    return alexnet(resize or 224) if name == "alexnet" else NETS[name]()
