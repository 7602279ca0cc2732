"""d2l's tensor shortcuts: ``d2l.tensor``, ``d2l.reshape``, ``d2l.size``, ...

The book writes one code listing for several frameworks, so ``d2l`` gives each
framework's tensor functions common names. These are the PyTorch ones, the union of
d2l 0.17 (the Chinese edition 2.0) and d2l 1.0.3: 0.17's list plus ``ones_like``,
``zeros_like``, ``int64``, ``sigmoid``, ``batch_matmul``, ``expand_dims``, ``swapaxes``
and ``repeat``, which 1.0 added. Most are torch's own functions under d2l's name; the
method-style ones (``size``, ``reshape``, ``reduce_sum``, ...) take the tensor first and
pass everything else to the tensor method, as d2l's do.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Functions and dtypes under d2l's names: the very torch objects, so signatures,
# defaults and results are torch's (d2l binds them the same way).
nn_Module = nn.Module
ones_like = torch.ones_like
ones = torch.ones
zeros_like = torch.zeros_like
zeros = torch.zeros
tensor = torch.tensor
arange = torch.arange
meshgrid = torch.meshgrid
sin = torch.sin
sinh = torch.sinh
cos = torch.cos
cosh = torch.cosh
tanh = torch.tanh
linspace = torch.linspace
exp = torch.exp
log = torch.log
normal = torch.normal
rand = torch.rand
randn = torch.randn
matmul = torch.matmul
int32 = torch.int32
int64 = torch.int64
float32 = torch.float32
concat = torch.cat
stack = torch.stack
abs = torch.abs  # noqa: A001 - d2l's name shadows the builtin inside this module only
eye = torch.eye
sigmoid = torch.sigmoid
batch_matmul = torch.bmm


def numpy(x: torch.Tensor, *args, **kwargs) -> np.ndarray:
    """``x`` as a NumPy array, detached from autograd (d2l's ``numpy``).

    Example:
        >>> numpy(torch.ones(2, requires_grad=True))
        array([1., 1.], dtype=float32)
    """
    return x.detach().numpy(*args, **kwargs)


def size(x: torch.Tensor, *args, **kwargs) -> int:
    """Number of elements of ``x`` (d2l's ``size`` is ``numel``, not ``shape``).

    Example:
        >>> size(torch.zeros(3, 4))
        12
    """
    return x.numel(*args, **kwargs)


def reshape(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x.reshape(...)`` (d2l's ``reshape``; the shape as a tuple or as arguments).

    Example:
        >>> reshape(torch.arange(6), (2, 3)).shape
        torch.Size([2, 3])
    """
    return x.reshape(*args, **kwargs)


def to(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x.to(...)``: another device or dtype (d2l's ``to``).

    Example:
        >>> to(torch.ones(1), torch.float64).dtype
        torch.float64
    """
    return x.to(*args, **kwargs)


def reduce_sum(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x.sum(...)``: all elements, or along ``axis``/``dim`` (d2l's ``reduce_sum``).

    Example:
        >>> reduce_sum(torch.tensor([[1, 2], [3, 4]])), reduce_sum(torch.ones(2, 3), 1)
        (tensor(10), tensor([3., 3.]))
    """
    return x.sum(*args, **kwargs)


def argmax(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x.argmax(...)`` (d2l's ``argmax``; ``axis=`` works, as torch accepts it).

    Example:
        >>> argmax(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), axis=1)
        tensor([1, 0])
    """
    return x.argmax(*args, **kwargs)


def astype(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x.type(dtype)``: ``x`` converted to ``dtype`` (d2l's ``astype``).

    Example:
        >>> astype(torch.tensor([1.7]), torch.int64)
        tensor([1])
    """
    return x.type(*args, **kwargs)


def transpose(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x.t()``: the transpose of a matrix (d2l's ``transpose``, at most 2-D).

    Example:
        >>> transpose(torch.tensor([[1, 2, 3]])).shape
        torch.Size([3, 1])
    """
    return x.t(*args, **kwargs)


def reduce_mean(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x.mean(...)`` (d2l's ``reduce_mean``; ``x`` must be floating point).

    Example:
        >>> reduce_mean(torch.tensor([1.0, 2.0, 6.0]))
        tensor(3.)
    """
    return x.mean(*args, **kwargs)


def expand_dims(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x.unsqueeze(dim)``: a new axis of length 1 (d2l 1.0's ``expand_dims``).

    Example:
        >>> expand_dims(torch.zeros(2, 3), 0).shape
        torch.Size([1, 2, 3])
    """
    return x.unsqueeze(*args, **kwargs)


def swapaxes(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x.swapaxes(a, b)`` (d2l 1.0's ``swapaxes``).

    Example:
        >>> swapaxes(torch.zeros(2, 3, 4), 0, 2).shape
        torch.Size([4, 3, 2])
    """
    return x.swapaxes(*args, **kwargs)


def repeat(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """``x.repeat(...)``: tile ``x`` along each axis (d2l 1.0's ``repeat``).

    Example:
        >>> repeat(torch.tensor([1, 2]), 2)
        tensor([1, 2, 1, 2])
    """
    return x.repeat(*args, **kwargs)


NAMES = (
    "nn_Module", "ones_like", "ones", "zeros_like", "zeros", "tensor", "arange",
    "meshgrid", "sin", "sinh", "cos", "cosh", "tanh", "linspace", "exp", "log",
    "normal", "rand", "randn", "matmul", "int32", "int64", "float32", "concat", "stack",
    "abs", "eye", "sigmoid", "batch_matmul", "numpy", "size", "reshape", "to",
    "reduce_sum", "argmax", "astype", "transpose", "reduce_mean", "expand_dims",
    "swapaxes", "repeat",
)
__all__ = list(NAMES)
