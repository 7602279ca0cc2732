"""Everything a run can check before its first batch, each failure said with its fix.

``train_ch6`` calls these before training, so a bad argument, a missing GPU, a net whose
output does not fit the labels or a test set of another resolution fails in a second,
naming the problem, instead of after an epoch (or with PyTorch's bare message).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

__all__ = ["ArgumentError", "check_device", "check_first_batches", "check_positive_int",
           "check_positive_number", "first_batch"]


class ArgumentError(ValueError, TypeError):
    """A bad argument, of the wrong type or value: caught as either, as callers expect.

    Example:
        >>> issubclass(ArgumentError, ValueError) and issubclass(ArgumentError, TypeError)
        True
    """


def check_positive_int(name: str, value) -> int:
    """``value`` as an int >= 1; numpy integers are accepted, floats and bools are not.

    Example:
        >>> import numpy as np
        >>> check_positive_int("num_epochs", np.int64(2))
        2
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = (f"; pass {name}={round(value)}"
                if isinstance(value, numbers.Real) and math.isfinite(value) else "")
        raise ArgumentError(f"{name} must be a positive integer, got {value!r} "
                        f"({type(value).__name__}){hint}")
    if value < 1:
        raise ArgumentError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_positive_number(name: str, value, example: str = "0.1") -> float:
    """``value`` as a finite float > 0; numpy scalars are accepted.

    Example:
        >>> import numpy as np
        >>> check_positive_number("lr", np.float32(0.5))
        0.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name} must be a number such as {example}, got {value!r} "
                        f"({type(value).__name__})")
    if not math.isfinite(value) or value <= 0:
        raise ArgumentError(f"{name} must be a finite number > 0 (e.g. {example}), "
                         f"got {value!r}")
    return float(value)


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device`` that exists and works, else a clear error.

    Example:
        >>> check_device("cpu")
        device(type='cpu')
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device ({err}); pass "
                         "d2l.try_gpu(), 'cpu' or 'cuda:0'") from err
    fallback = "pass d2l.try_gpu(), which falls back to the CPU"
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device} asked for, but torch sees no CUDA GPU "
                             f"(torch.cuda.is_available() is False); {fallback}")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {device} asked for, but there are only {count} "
                             f"CUDA GPU(s) (cuda:0..cuda:{count - 1}); {fallback}")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {device} asked for, but Apple MPS is not "
                             f"available here; {fallback}")
    try:
        torch.zeros(1, device=device) + 1  # a device that exists but cannot compute
    except (RuntimeError, AssertionError) as err:
        raise ValueError(f"device {device} does not work here ({err}); "
                         f"{fallback}") from err
    return device


def first_batch(data_iter, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``(X, y)`` of ``data_iter`` without drawing a shuffle (d2lcnn loaders).

    Example:
        >>> X, y = first_batch([(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]))], "test")
        >>> tuple(X.shape)
        (2, 1, 4, 4)
    """
    peek = getattr(data_iter, "peek", None)
    try:
        batch = peek() if peek is not None else next(iter(data_iter))
    except StopIteration:
        raise ValueError(f"{name}_iter is empty: it yields no batch; check its data "
                         "and batch size") from None
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise TypeError(f"{name}_iter must yield (X, y) pairs, got "
                        f"{type(batch).__name__}")
    return batch[0], batch[1]


def _forward(net: nn.Module, X: torch.Tensor, device, channels_last: bool):
    X = X[:2].to(device)  # two examples: enough to check shapes, cheap for any net
    if channels_last and X.dim() == 4:
        X = X.contiguous(memory_format=torch.channels_last)
    was_training = net.training
    net.eval()  # no batch-norm statistics are updated by this check
    try:
        with torch.no_grad():
            return net(X)
    finally:
        net.train(was_training)


def _check_output(y_hat, X: torch.Tensor, y: torch.Tensor) -> None:
    shape = tuple(X.shape)
    if not isinstance(y_hat, torch.Tensor):
        raise TypeError(f"the net returned {type(y_hat).__name__} for a batch of shape "
                        f"{shape}; train_ch6 needs a tensor of logits (B, classes)")
    if y_hat.dim() != 2:
        raise ValueError(f"the net's output for a batch of shape {shape} has shape "
                         f"{tuple(y_hat.shape)}; it must be (B, classes): end the net "
                         "with nn.Flatten() and an nn.Linear(..., 10)")
    highest = int(y.max()) if y.numel() else 0
    if y_hat.shape[1] <= highest:
        raise ValueError(f"the net outputs {y_hat.shape[1]} class score(s) per example, "
                         f"but the labels go up to {highest}; its last layer needs "
                         f"{highest + 1} outputs (Fashion-MNIST: nn.Linear(..., 10))")


def _diagnose(net: nn.Module, shape: tuple, error: RuntimeError) -> None:
    # PyTorch says "Output size is too small" or "mat1 and mat2 shapes cannot be
    # multiplied"; the shape inspector names the layer, the shape and the size that works
    from .summary import check_input_shape

    try:
        check_input_shape(net, shape)
    except ValueError as diagnosed:  # ShapeError
        raise diagnosed from error
    except Exception:  # the inspector could not tell: the caller raises PyTorch's error
        return


def check_first_batches(net: nn.Module, train_iter, test_iter, device,
                        channels_last: bool = False) -> tuple:
    """Run the first training and test batch through ``net`` and check what comes out.

    Also materialises lazy layers (``nn.LazyLinear``), so they can be initialised.
    Returns the first training batch ``(X, y)``.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 10))
        >>> batch = [(torch.zeros(3, 1, 2, 2), torch.tensor([0, 9, 1]))]
        >>> check_first_batches(net, batch, batch, "cpu")[1]
        tensor([0, 9, 1])
    """
    X, y = first_batch(train_iter, "train")
    try:
        y_hat = _forward(net, X, device, channels_last)
    except RuntimeError as err:
        _diagnose(net, tuple(X.shape), err)
        raise RuntimeError(f"the net failed on the first training batch, of shape "
                           f"{tuple(X.shape)}: {err}") from err
    _check_output(y_hat, X, y)
    X_test, _ = first_batch(test_iter, "test")
    try:
        _forward(net, X_test, device, channels_last)
    except RuntimeError as err:
        raise ValueError(
            f"the net takes training batches of shape {tuple(X.shape)} but failed on "
            f"the first test batch, of shape {tuple(X_test.shape)} ({err}); load both "
            "iterators with the same resize") from err
    return X, y
