"""Devices: d2l's ``try_gpu``/``try_all_gpus``, extended to Apple MPS."""

from __future__ import annotations

import ctypes
import os
import sys

import torch

__all__ = [
    "num_gpus",
    "try_gpu",
    "try_all_gpus",
    "get_dataloader_workers",
    "best_device",
    "cpu_model",
    "device_name",
    "keep_freed_memory",
]

KEEP_FREED_MEMORY_ENV = "D2LCNN_KEEP_FREED_MEMORY"  # "0" leaves malloc as it is
_KEPT_BYTES = 1 << 30  # mallopt takes an int: 1 GiB fits, and covers any batch here
_malloc_tuned: bool | None = None


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def num_gpus() -> int:
    """Number of CUDA GPUs (d2l's ``num_gpus``).

    Example:
        >>> num_gpus() == len([d for d in try_all_gpus() if d.type == "cuda"])
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


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo, as ``lscpu`` shows it), e.g. "AMD
    EPYC", with its core count and bf16 support, which ``precision="auto"`` depends on.

    Example:
        >>> "cores" in cpu_model()
        True
    """
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from .precision import resolve_precision

    bf16 = "native bf16" if resolve_precision("auto", "cpu") == "bf16" else "no bf16"
    return f"{name}, {os.cpu_count()} cores, {bf16}"


def device_name(device) -> str:
    """A GPU's name, or the CPU's model: what a result says it ran on.

    Example:
        >>> device_name("cpu") == cpu_model()
        True
    """
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return cpu_model()


def get_dataloader_workers() -> int:
    """Worker processes for a torch DataLoader: at most 4, never more than cores - 1.

    d2l always answers 4, which oversubscribes a 2-core laptop. d2lcnn's own loader
    needs no workers at all (batches are built by indexing in memory).

    Example:
        >>> 0 <= get_dataloader_workers() <= 4
        True
    """
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def keep_freed_memory(verbose: bool = False) -> bool:
    """Make glibc's malloc keep freed blocks of up to 1 GiB for reuse (CPU speed).

    By default glibc returns every block over 32 MiB to the OS when it is freed and
    the next allocation of it page-faults and zeroes it again. A 224x224 float batch
    of 256 is 51 MiB, so each batch paid ~20 ms for memory it had just freed (measured
    on a 2-core Xeon, where writing it takes 1 ms), and a training step pays the same
    for every large activation. This is what the jemalloc/tcmalloc advice in
    PyTorch's CPU performance guide fixes; here it is two ``mallopt`` calls.

    Called explicitly, once, by ``load_data_fashion_mnist`` and ``train_ch6`` when they
    work on the CPU; with ``verbose`` the first call that tunes says so in one line.
    The cost: the process keeps up to 1 GiB of freed memory instead of returning it.
    Does nothing off glibc (macOS, Windows, musl) or when ``$D2LCNN_KEEP_FREED_MEMORY``
    is ``0``. Returns whether malloc is tuned.

    Example:
        >>> import os, sys
        >>> keep_freed_memory() == (sys.platform == "linux"
        ...     and os.environ.get("D2LCNN_KEEP_FREED_MEMORY", "1") != "0")
        True
    """
    global _malloc_tuned
    if _malloc_tuned is None:
        _malloc_tuned = _tune_malloc()
        if verbose and _malloc_tuned:
            print(f"cpu: malloc keeps freed blocks up to 1 GiB for reuse (faster; "
                  f"{KEEP_FREED_MEMORY_ENV}=0 turns it off)")
    return _malloc_tuned


def _tune_malloc() -> bool:
    if os.environ.get(KEEP_FREED_MEMORY_ENV, "1") == "0" or sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None)  # this process's symbols, libc's among them
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, _KEPT_BYTES)
                    and libc.mallopt(m_trim_threshold, _KEPT_BYTES))
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
