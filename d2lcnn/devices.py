"""Devices: d2l's ``try_gpu``/``try_all_gpus``, extended to Apple MPS."""

from __future__ import annotations

import os

import torch

__all__ = [
    "num_gpus",
    "try_gpu",
    "try_all_gpus",
    "get_dataloader_workers",
    "best_device",
]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def num_gpus() -> int:
    """Number of CUDA GPUs.

    Example:
        >>> num_gpus() >= 0
        True
    """
    return torch.cuda.device_count()


def try_gpu(i: int = 0) -> torch.device:
    """Return ``cuda:i`` if it exists, else Apple ``mps`` (for i == 0), else ``cpu``.

    Example:
        >>> try_gpu().type in {"cuda", "mps", "cpu"}
        True
    """
    if num_gpus() >= i + 1:
        return torch.device(f"cuda:{i}")
    if i == 0 and _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def try_all_gpus() -> list[torch.device]:
    """Return all CUDA GPUs, or ``[cpu]`` when there is none (as d2l does).

    Example:
        >>> try_all_gpus()[0].type in {"cuda", "cpu"}
        True
    """
    devices = [torch.device(f"cuda:{i}") for i in range(num_gpus())]
    return devices if devices else [torch.device("cpu")]


def best_device() -> torch.device:
    """The device a chapter trains on by default: CUDA, then MPS, then CPU.

    Example:
        >>> best_device() == try_gpu()
        True
    """
    return try_gpu(0)


def get_dataloader_workers() -> int:
    """Worker processes for a torch DataLoader: at most 4, never more than cores - 1.

    d2l always answers 4, which oversubscribes a 2-core laptop. d2lcnn's own loader
    needs no workers at all (batches are built by indexing in memory).

    Example:
        >>> 0 <= get_dataloader_workers() <= 4
        True
    """
    return max(0, min(4, (os.cpu_count() or 1) - 1))
