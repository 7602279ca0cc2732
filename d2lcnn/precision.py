"""Numeric format and memory layout of a run: fp32 or bf16 autocast, NCHW or NHWC.

``"auto"`` means: whatever is fastest for this net, batch and device, found by timing
the candidates on the first batch, as cuDNN's benchmark mode does. bf16 is a candidate
only where the device computes it natively (CUDA from Ampere on, CPUs with AVX512-BF16
or AMX). The fastest layout differs between CPU kinds (NHWC helped every net under bf16
on an Intel Xeon with AMX, LeNet in fp32 on an AMD EPYC, and not ResNet-18 in fp32 on the
Xeon), so no fixed rule is right everywhere.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import time

import torch
from torch import nn

__all__ = ["PRECISIONS", "autocast", "check_channels_last", "choose_format",
           "resolve_precision"]

PRECISIONS = ("fp32", "bf16", "auto")


def resolve_precision(precision: str, device) -> str:
    """``"auto"`` becomes ``"bf16"`` where the device computes bf16 natively, else fp32.

    Native bf16: CUDA GPUs from Ampere on, CPUs with AVX512-BF16/AMX.

    Example:
        >>> resolve_precision("fp32", "cpu"), resolve_precision("bf16", "cpu")
        ('fp32', 'bf16')
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        mkldnn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return "bf16" if mkldnn is not None and mkldnn() else "fp32"
    return "fp32"


def check_channels_last(channels_last) -> bool | str:
    """``channels_last`` if it is True, False or ``"auto"``; else a clear error.

    Example:
        >>> check_channels_last("auto"), check_channels_last(False)
        ('auto', False)
    """
    if channels_last not in (True, False, "auto"):
        raise ValueError(
            f"channels_last must be True, False or 'auto', got {channels_last!r}")
    return channels_last if channels_last == "auto" else bool(channels_last)


def autocast(device: torch.device, precision: str):
    """A bf16 autocast context for ``precision="bf16"``, else one that does nothing.

    Example:
        >>> with autocast(torch.device("cpu"), "bf16"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.bfloat16
    """
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


_CHOSEN: dict[tuple, tuple[str, bool, str]] = {}  # one timing per net, shape and device


def _seconds_per_step(net: nn.Module, X, y, loss, device, precision: str,
                      channels_last: bool, steps: int) -> float:
    trial = copy.deepcopy(net)  # the real net's weights and statistics stay untouched
    if channels_last:
        trial.to(memory_format=torch.channels_last)
        X = X.contiguous(memory_format=torch.channels_last)
    trial.train()
    times = []
    for _ in range(steps + 1):  # the first step warms up (allocations, kernels)
        start = time.perf_counter()
        with autocast(device, precision):
            batch_loss = loss(trial(X), y)
        batch_loss.backward()
        trial.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times[1:])


def _fastest(net, X, y, loss, device, candidates, steps) -> tuple[str, bool, str]:
    """The fastest candidate and a line saying why; the first one where unsure."""
    # the whole batch: a quarter of it ranked MobileNet's depthwise convolutions wrongly
    # (bf16 first at 32 images, 3.2x slower than fp32 NHWC at the run's 128)
    X, y = X.to(device), y.to(device)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            times = {c: _seconds_per_step(net, X, y, loss, device, *c, steps)
                     for c in candidates}
    except Exception as error:  # noqa: BLE001 - e.g. a net that cannot be copied
        return (*candidates[0], f"not timed: {type(error).__name__}: {error}")
    best = min(times, key=times.get)
    if times[candidates[0]] <= 1.05 * times[best]:
        best = candidates[0]  # within timing noise: keep d2l's fp32 NCHW
    report = ", ".join(f"{p} {'NHWC' if cl else 'NCHW'} {t * 1e3:.3g} ms"
                       for (p, cl), t in times.items())
    return (*best, f"the fastest here; a training step on the first batch: {report}")


def choose_format(net: nn.Module, X, y, device, precision: str = "auto",
                  channels_last: bool | str = "auto", *, loss=None, steps: int = 2,
                  verbose: bool = False) -> tuple[str, bool]:
    """``precision`` and ``channels_last`` with each ``"auto"`` made the fastest choice.

    Times ``steps`` forward+backward passes of a copy of ``net`` on the batch
    ``(X, y)`` for every candidate, with the random-number state restored after
    (dropout in the copies draws no number the run would have drawn); the result is
    kept for the process, per architecture, batch shape and device. With ``verbose``
    the choice and the times are printed.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(144, 10))
        >>> X, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
        >>> choose_format(net, X, y, torch.device("cpu"), "fp32", "auto")[0]
        'fp32'
    """
    device = torch.device(device)
    precisions = [resolve_precision(precision, device)] if precision != "auto" else \
        ["fp32"] + (["bf16"] if resolve_precision("auto", device) == "bf16" else [])
    channels_last = check_channels_last(channels_last)
    layouts = [channels_last] if channels_last != "auto" else [False, True]
    if X.dim() != 4:
        layouts = [False]  # channels_last is a 4-D layout
    candidates = list(itertools.product(precisions, layouts))
    if len(candidates) == 1:
        return candidates[0]
    # the architecture, not the class: every nn.Sequential is one class
    shapes = tuple((k, tuple(v.shape)) for k, v in net.state_dict().items())
    key = (type(net).__qualname__, shapes, tuple(X.shape), str(device),
           tuple(candidates))
    if key not in _CHOSEN:
        _CHOSEN[key] = _fastest(net, X, y, loss or nn.CrossEntropyLoss(), device,
                                candidates, steps)
    precision, channels_last, report = _CHOSEN[key]
    if verbose:
        print(f"format: {precision} {'NHWC' if channels_last else 'NCHW'} ({report})")
    return precision, channels_last
