"""d2l's other names for the book's code: tensor shortcuts and the chapters' ``#@save`` code
here; d2l 1.0's object API in ``book_v1`` (``Trainer`` runs on ``train_ch6``)."""

from __future__ import annotations

import importlib
import inspect

import torch
from torch import nn
from torch.nn import functional as F

from .models import resnet
from .recipe import xavier_init

__all__ = ["NAMES", "lookup"]

# d2l's common names for every framework's tensor functions (0.17's, 1.0.3's): torch's own ...
_ALIASES = {name: getattr(torch, name) for name in (
    "ones_like ones zeros_like zeros tensor arange meshgrid sin sinh cos cosh tanh linspace "
    "exp log normal rand randn matmul int32 int64 float32 stack abs eye sigmoid").split()}
_ALIASES.update(nn_Module=nn.Module, concat=torch.cat, batch_matmul=torch.bmm)
# ... and the method-style ones, tensor first: d2l's name -> the tensor method
_METHODS = dict(size="numel", reduce_sum="sum", astype="type", transpose="t", reduce_mean="mean",
                expand_dims="unsqueeze")
_METHODS.update((name, name) for name in "reshape to argmax swapaxes repeat".split())


def _method(name: str, method: str):
    """d2l's ``name(x, *args, **kwargs)``: ``x.<method>(*args, **kwargs)``."""
    def shortcut(x: torch.Tensor, *args, **kwargs):
        return getattr(x, method)(*args, **kwargs)

    shortcut.__name__, shortcut.__doc__ = name, f"``x.{method}(...)`` (d2l's ``{name}``)."
    return shortcut


_ALIASES.update({name: _method(name, method) for name, method in _METHODS.items()})
_ALIASES["numpy"] = lambda x, *args, **kwargs: x.detach().numpy(*args, **kwargs)
# d2l's module also re-exports what it imports: book code uses d2l.plt and friends
_MODULES = {"plt": "matplotlib.pyplot", "np": "numpy", "torch": "torch", "nn": "torch.nn",
            "F": "torch.nn.functional"}
_DEFINED = "corr2d init_cnn Residual ResNeXtBlock".split()
_V1 = ("HyperParameters ProgressBoard Module Classifier DataModule FashionMNIST LeNet "
       "add_to_class cpu gpu Trainer").split()  # in book_v1, imported on first use
NAMES = tuple(sorted({*_ALIASES, *_MODULES, *_DEFINED, *_V1}))


def lookup(name: str):
    """The d2l name ``name``, or AttributeError saying d2lcnn does not provide it.

    Example:
        >>> lookup("load_data_cifar")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        AttributeError: ... 'load_data_cifar': it is not a d2l name d2lcnn provides ...
    """
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name in _V1:
        return getattr(importlib.import_module(".book_v1", __package__), name)
    if name in NAMES:
        return _ALIASES[name] if name in _ALIASES else globals()[name]
    raise AttributeError(f"module 'd2lcnn' has no attribute {name!r}: it is not a d2l name "
                         "d2lcnn provides (d2lcnn covers the convolution chapters; see "
                         "d2lcnn.book.NAMES)")


def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """2-D cross-correlation of matrix ``X`` with kernel ``K``, all windows at once (d2l's).

    Example:
        >>> corr2d(torch.arange(9.0).reshape(3, 3), torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
        tensor([[19., 25.],
                [37., 43.]])
    """
    if X.dim() != 2 or K.dim() != 2:
        raise ValueError(f"corr2d takes a matrix and a 2-D kernel, got shapes {tuple(X.shape)} "
                         f"and {tuple(K.shape)}; for channels use the chapter's "
                         "corr2d_multi_in or nn.Conv2d")
    h, w = K.shape
    if h > X.shape[0] or w > X.shape[1]:
        raise ValueError(f"kernel {tuple(K.shape)} is larger than the input {tuple(X.shape)}; "
                         "pad the input or use a smaller kernel")
    windows = X.unfold(0, h, 1).unfold(1, w, 1)  # (H-h+1, W-w+1, h, w), a view
    return (windows * K).sum(dim=(-2, -1)).to(torch.get_default_dtype())  # as d2l's dtype


init_cnn = xavier_init  # d2l 1.0's init_cnn is train_ch6's rule: Xavier for Linear and Conv2d

_RESIDUAL = {True: inspect.signature(  # d2l 0.17's arguments, and d2l 1.0's
    lambda input_channels, num_channels, use_1x1conv=False, strides=1: None),
    False: inspect.signature(lambda num_channels, use_1x1conv=False, strides=1: None)}


class Residual(resnet.Residual):
    """ResNet's block: ``Residual(input_channels, num_channels, use_1x1conv=False, strides=1)``
    (d2l 0.17: the chapter's own class) or ``Residual(num_channels, use_1x1conv=False,
    strides=1)`` (d2l 1.0: the same block, lazy in its input channels).

    Example:
        >>> [Residual(*c, True, 2)(torch.rand(4, 3, 6, 6)).shape[1:] for c in [(3, 6), (6,)]]
        [torch.Size([6, 3, 3]), torch.Size([6, 3, 3])]
    """

    def __init__(self, *args, **kwargs):
        # 0.17 passes two channel counts first; 1.0 one, then the bool or keywords
        old = "input_channels" in kwargs or len(args) >= 2 and not isinstance(args[1], bool)
        bound = _RESIDUAL[old].bind(*args, **kwargs)  # TypeError naming what is missing or extra
        bound.apply_defaults()
        a = bound.arguments
        c_out, strides = a["num_channels"], a["strides"]
        super().__init__(a.get("input_channels", c_out), c_out, a["use_1x1conv"], strides)
        if not old:  # d2l 1.0's layers take their input channels from the first batch
            self.conv1 = nn.LazyConv2d(c_out, 3, padding=1, stride=strides)
            self.conv3 = nn.LazyConv2d(c_out, 1, stride=strides) if a["use_1x1conv"] else None
            self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()


class ResNeXtBlock(nn.Module):
    """d2l 1.0's ResNeXt block: 1x1, 3x3 (``bottleneck // groups`` groups, as the book has it),
    1x1 convolutions, plus the input."""

    def __init__(self, num_channels: int, groups: int, bot_mul: float,
                 use_1x1conv: bool = False, strides: int = 1):
        super().__init__()
        bottleneck = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bottleneck, kernel_size=1)
        self.conv2 = nn.LazyConv2d(bottleneck, kernel_size=3, stride=strides, padding=1,
                                   groups=bottleneck // groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1)
        self.bn1, self.bn2, self.bn3 = (nn.LazyBatchNorm2d() for _ in range(3))
        self.conv4 = nn.LazyConv2d(num_channels, 1, stride=strides) if use_1x1conv else None
        self.bn4 = nn.LazyBatchNorm2d() if use_1x1conv else None

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(Y)))))
        return F.relu(Y + (X if self.conv4 is None else self.bn4(self.conv4(X))))
