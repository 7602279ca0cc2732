"""The names the book's convolution chapters save with ``#@save``.

``corr2d`` (conv-layer), ``init_cnn`` (LeNet, d2l 1.0), ``Residual`` (ResNet, both
editions: 0.17's ``Residual(input_channels, num_channels, ...)`` and 1.0's lazy
``Residual(num_channels, ...)``) and ``ResNeXtBlock`` (ResNet, d2l 1.0). The chapters'
own ``evaluate_accuracy_gpu`` and ``train_ch6`` are d2lcnn's top-level functions.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..recipe import xavier_init

__all__ = ["ResNeXtBlock", "Residual", "corr2d", "init_cnn"]


def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """2-D cross-correlation of matrix ``X`` with kernel ``K`` (d2l's ``corr2d``).

    As in d2l the result has the default float dtype and shape ``(H - h + 1,
    W - w + 1)``, and gradients flow to ``X`` and ``K``; it is computed on all
    windows at once instead of in a Python loop over output pixels.

    Example:
        >>> X = torch.arange(9.0).reshape(3, 3)
        >>> corr2d(X, torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
        tensor([[19., 25.],
                [37., 43.]])
    """
    if X.dim() != 2 or K.dim() != 2:
        raise ValueError(f"corr2d takes a matrix and a 2-D kernel, got shapes "
                         f"{tuple(X.shape)} and {tuple(K.shape)}; for channels use "
                         "the chapter's corr2d_multi_in or nn.Conv2d")
    h, w = K.shape
    if h > X.shape[0] or w > X.shape[1]:
        raise ValueError(f"kernel {tuple(K.shape)} is larger than the input "
                         f"{tuple(X.shape)}; pad the input or use a smaller kernel")
    windows = X.unfold(0, h, 1).unfold(1, w, 1)  # (H-h+1, W-w+1, h, w), a view
    return (windows * K).sum(dim=(-2, -1)).to(torch.get_default_dtype())


def init_cnn(module: nn.Module) -> None:
    """Xavier-uniform weights for every ``nn.Linear`` and ``nn.Conv2d`` (d2l 1.0).

    The same rule as ``train_ch6``'s re-initialisation: exact types only, so lazy
    layers not yet run and other layers keep PyTorch's default init; use it with
    ``net.apply(init_cnn)`` or ``model.apply_init(inputs, init_cnn)``.

    Example:
        >>> layer = nn.Linear(3, 2); torch.nn.init.zeros_(layer.weight)
        ... # doctest: +ELLIPSIS
        Parameter containing:...
        >>> _ = layer.apply(init_cnn); bool(layer.weight.abs().sum() > 0)
        True
    """
    xavier_init(module)  # the one rule, shared with train_ch6


class Residual(nn.Module):
    """ResNet's residual block, in either edition's signature.

    ``Residual(input_channels, num_channels, use_1x1conv=False, strides=1)`` is
    d2l 0.17's; ``Residual(num_channels, use_1x1conv=False, strides=1)`` is d2l 1.0's
    (lazy layers). Two 3x3 convolutions with batch norm, plus the input (through a
    1x1 convolution when ``use_1x1conv``), then ReLU.

    Example:
        >>> Residual(3, 6, use_1x1conv=True, strides=2)(torch.rand(4, 3, 6, 6)).shape
        torch.Size([4, 6, 3, 3])
        >>> Residual(6, use_1x1conv=True, strides=2)(torch.rand(4, 3, 6, 6)).shape
        torch.Size([4, 6, 3, 3])
    """

    def __init__(self, *args, **kwargs):
        super().__init__()
        input_channels, num_channels, use_1x1conv, strides = _residual_args(args, kwargs)
        shortcut = None
        if input_channels is None:  # d2l 1.0: lazy layers infer their input channels
            self.conv1 = nn.LazyConv2d(num_channels, 3, padding=1, stride=strides)
            self.conv2 = nn.LazyConv2d(num_channels, 3, padding=1)
            if use_1x1conv:
                shortcut = nn.LazyConv2d(num_channels, 1, stride=strides)
            self.conv3 = shortcut
            self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()
        else:
            self.conv1 = nn.Conv2d(input_channels, num_channels, 3, padding=1,
                                   stride=strides)
            self.conv2 = nn.Conv2d(num_channels, num_channels, 3, padding=1)
            if use_1x1conv:
                shortcut = nn.Conv2d(input_channels, num_channels, 1, stride=strides)
            self.conv3 = shortcut
            self.bn1, self.bn2 = nn.BatchNorm2d(num_channels), nn.BatchNorm2d(num_channels)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.relu(Y + X)


def _residual_args(args: tuple, kwargs: dict) -> tuple:
    """(input_channels or None, num_channels, use_1x1conv, strides) of either style."""
    names = ["num_channels", "use_1x1conv", "strides"]
    # 0.17 passes two channel counts first; 1.0 passes one, then the bool or keywords
    if "input_channels" in kwargs or (
            len(args) >= 2 and not isinstance(args[1], bool)):
        names.insert(0, "input_channels")
    if len(args) > len(names):
        raise TypeError(f"Residual takes at most {len(names)} positional arguments "
                        f"({', '.join(names)}), got {len(args)}")
    values = dict(input_channels=None, use_1x1conv=False, strides=1)
    values.update(zip(names, args))
    unknown = set(kwargs) - {"input_channels", *names}
    if unknown:
        raise TypeError(f"Residual got unexpected argument(s) {sorted(unknown)}; it "
                        f"takes {', '.join(names)}")
    values.update(kwargs)
    if "num_channels" not in values:
        raise TypeError("Residual needs num_channels, e.g. Residual(64) (d2l 1.0) or "
                        "Residual(64, 64) (d2l 0.17)")
    return (values["input_channels"], values["num_channels"], values["use_1x1conv"],
            values["strides"])


class ResNeXtBlock(nn.Module):
    """The ResNeXt block of d2l 1.0: 1x1, grouped 3x3, 1x1 convolutions plus the input.

    ``bot_mul`` scales the bottleneck width; the 3x3 convolution has
    ``bottleneck // groups`` groups (as the book's code computes it).

    Example:
        >>> ResNeXtBlock(32, 16, 1)(torch.rand(2, 32, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(self, num_channels: int, groups: int, bot_mul: float,
                 use_1x1conv: bool = False, strides: int = 1):
        super().__init__()
        bottleneck = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bottleneck, kernel_size=1)
        self.conv2 = nn.LazyConv2d(bottleneck, kernel_size=3, stride=strides,
                                   padding=1, groups=bottleneck // groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1)
        self.bn1, self.bn2, self.bn3 = (nn.LazyBatchNorm2d() for _ in range(3))
        self.conv4 = self.bn4 = None
        if use_1x1conv:
            self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
            self.bn4 = nn.LazyBatchNorm2d()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4 is not None:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)
