"""Numeric format and memory layout of a run: fp32 or bf16 autocast, NCHW or NHWC.

``"auto"`` picks what the device computes fastest: bf16 where it is native (CUDA from
Ampere on, CPUs with AVX512-BF16 or AMX), channels_last under bf16, where NHWC was
faster for every net measured.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "autocast", "resolve_channels_last", "resolve_precision"]

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


def resolve_channels_last(channels_last: bool | str, precision: str) -> bool:
    """``"auto"`` becomes True under bf16 autocast, where NHWC was faster for every net
    measured, else False (d2l's NCHW).

    Measured per training step on a 2-core Xeon with AVX512-BF16 (images/s, bf16 ->
    bf16 + channels_last): LeNet 27k -> 32k, AlexNet@96 638 -> 779, ResNet-18@96
    195 -> 255, NiN@72 1007 -> 1404, GoogLeNet@32 484 -> 644, DenseNet@64 491 -> 714,
    MobileNet v1@48 290 -> 339. In fp32 it was mixed (ResNet-18@64 slower).

    Example:
        >>> resolve_channels_last("auto", "bf16"), resolve_channels_last("auto", "fp32")
        (True, False)
    """
    if channels_last not in (True, False, "auto"):
        raise ValueError(
            f"channels_last must be True, False or 'auto', got {channels_last!r}")
    if channels_last == "auto":
        return precision == "bf16"
    return bool(channels_last)


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
