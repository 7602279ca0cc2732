"""Small things every chapter uses: devices, counters, argument checks, safe writes."""

from __future__ import annotations

import ctypes
import math
import numbers
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["Accumulator", "ArgumentError", "Timer", "accuracy", "atomic_write",
           "best_device", "correct_count", "cpu_model", "device_name",
           "get_dataloader_workers", "keep_freed_memory", "num_gpus", "positive_int",
           "positive_number", "try_all_gpus", "try_gpu"]


# ------------------------------------------------------------------ devices (d2l's)

def num_gpus() -> int:
    """Number of CUDA GPUs (d2l's ``num_gpus``).

    Example:
        >>> num_gpus() == len([d for d in try_all_gpus() if d.type == "cuda"])
        True
    """
    return torch.cuda.device_count()


def try_gpu(i: int = 0) -> torch.device:
    """``cuda:i`` if it exists, else Apple ``mps`` (for i == 0), else ``cpu``.

    Example:
        >>> try_gpu().type in {"cuda", "mps", "cpu"}
        True
    """
    if num_gpus() >= i + 1:
        return torch.device(f"cuda:{i}")
    mps = getattr(torch.backends, "mps", None)
    if i == 0 and mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def try_all_gpus() -> list[torch.device]:
    """All CUDA GPUs, or ``[cpu]`` when there is none (as d2l does).

    Example:
        >>> try_all_gpus()[0].type in {"cuda", "cpu"}
        True
    """
    return [torch.device(f"cuda:{i}") for i in range(num_gpus())] or [torch.device("cpu")]


def best_device() -> torch.device:
    """The device a chapter trains on by default: CUDA, then MPS, then CPU.

    Example:
        >>> best_device() == try_gpu()
        True
    """
    return try_gpu(0)


def get_dataloader_workers() -> int:
    """Worker processes for a DataLoader: d2l's 4, but never more than cores - 1.

    d2lcnn's own loader needs none (batches are cut from memory).

    Example:
        >>> 0 <= get_dataloader_workers() <= 4
        True
    """
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def native_bf16(device="cpu") -> bool:
    """Whether ``device`` computes bf16 natively (Ampere+ GPUs, AVX512-BF16/AMX CPUs).

    Example:
        >>> native_bf16("cpu") in (True, False)
        True
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return device.type == "cpu" and check is not None and bool(check())


def cpu_model() -> str:
    """The CPU's model name with its core count and bf16 support, as results name it.

    Example:
        >>> "cores" in cpu_model()
        True
    """
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), name)
    except OSError:
        pass
    bf16 = "native bf16" if native_bf16("cpu") else "no bf16"
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


_malloc_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks up to 1 GiB for reuse (silent; CPU speed).

    glibc returns every freed block over 32 MiB to the OS, so the next batch or
    activation of that size page-faults and is zeroed again (~20 ms per 51 MiB batch
    on a 2-core Xeon, where writing it takes 1 ms): the jemalloc/tcmalloc advice of
    PyTorch's CPU performance guide, done with two ``mallopt`` calls. The process may
    then hold up to 1 GiB of freed memory. Does nothing off glibc.

    Example:
        >>> keep_freed_memory() == (sys.platform == "linux")
        True
    """
    global _malloc_tuned
    if _malloc_tuned is None:
        _malloc_tuned = False
        if sys.platform == "linux":
            try:
                libc = ctypes.CDLL(None)
                m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
                _malloc_tuned = bool(libc.mallopt(m_mmap_threshold, 1 << 30)
                                     and libc.mallopt(m_trim_threshold, 1 << 30))
            except (OSError, AttributeError):  # not glibc: nothing to tune
                pass
    return _malloc_tuned


# ------------------------------------------------------------------ counting (d2l's)

class Accumulator:
    """Sum ``n`` running values; index like d2l (``metric[0] / metric[2]``) or by name.

    Example:
        >>> metric = Accumulator("loss", "correct", "n")
        >>> metric.add(2.0, 3, 4); metric.add(1.0, 1, 4)
        >>> metric[1], metric["n"]
        (4.0, 8.0)
        >>> metric
        Accumulator(loss=3, correct=4, n=8)
    """

    def __init__(self, *n_or_names: int | str):
        if len(n_or_names) == 1 and isinstance(n_or_names[0], int):
            if n_or_names[0] < 1:
                raise ValueError(f"Accumulator needs at least one slot, got {n_or_names[0]}")
            self.names = tuple(str(i) for i in range(n_or_names[0]))
        elif n_or_names and all(isinstance(name, str) for name in n_or_names):
            self.names = tuple(n_or_names)
        else:
            raise TypeError("Accumulator takes a count, Accumulator(3), or slot names, "
                            f"Accumulator('loss', 'correct', 'n'); got {n_or_names!r}")
        self.data = [0.0] * len(self.names)

    def add(self, *args) -> None:
        if len(args) != len(self.data):
            raise ValueError(f"Accumulator has {len(self.data)} slots, add() got {len(args)}")
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self) -> None:
        self.data = [0.0] * len(self.data)

    def __getitem__(self, key: int | str) -> float:
        return self.data[self.names.index(key) if isinstance(key, str) else key]

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={v:.4g}" for n, v in zip(self.names, self.data))
        return f"Accumulator({fields})"


class Timer:
    """Record several running times (d2l's ``Timer``).

    Example:
        >>> timer = Timer(); _ = timer.stop()
        >>> len(timer.times), timer.sum() >= 0
        (1, True)
    """

    def __init__(self):
        self.times: list[float] = []
        self.start()

    def start(self) -> None:
        self.tik = time.perf_counter()

    def stop(self) -> float:
        self.times.append(time.perf_counter() - self.tik)
        return self.times[-1]

    def avg(self) -> float:
        return sum(self.times) / len(self.times) if self.times else 0.0

    def sum(self) -> float:
        return sum(self.times)

    def cumsum(self) -> list[float]:
        return np.array(self.times).cumsum().tolist()

    def __repr__(self) -> str:
        return f"Timer(n={len(self.times)}, avg={self.avg() * 1e3:.3g} ms)"


def correct_count(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions as a 0-d tensor on ``y_hat``'s device (no sync).

    Example:
        >>> int(correct_count(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])))
        1
    """
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    if y_hat.shape != y.shape:
        # labels of shape (B, 1) against (B,) predictions would broadcast to B x B
        if y.numel() != y_hat.numel():
            raise ValueError(f"{y.numel()} labels (shape {tuple(y.shape)}) for "
                             f"{y_hat.numel()} predictions: pass one label per example")
        y = y.reshape(y_hat.shape)
    return (y_hat.type(y.dtype) == y).sum()


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Number of correct predictions, a count as in d2l (divide by ``len(y)`` for a ratio).

    Example:
        >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([[1], [1]]))
        1.0
    """
    return float(correct_count(y_hat, y))


# ------------------------------------------------------------------ checks and files

class ArgumentError(ValueError, TypeError):
    """A bad argument, of the wrong type or value: caught as either, as callers expect."""


def positive_int(name: str, value) -> int:
    """``value`` as an int >= 1 (numpy integers too; floats and bools are refused).

    Example:
        >>> positive_int("num_epochs", np.int64(2))
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


def positive_number(name: str, value, example: str = "0.1") -> float:
    """``value`` as a finite float > 0 (numpy scalars too).

    Example:
        >>> positive_number("lr", np.float32(0.5))
        0.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name} must be a number such as {example}, got {value!r} "
                            f"({type(value).__name__})")
    if not math.isfinite(value) or value <= 0:
        raise ArgumentError(f"{name} must be a finite number > 0 (e.g. {example}), "
                            f"got {value!r}")
    return float(value)


def atomic_write(path, data: bytes) -> Path:
    """Write ``data`` beside ``path`` under a temporary name, then rename it into place,
    so an interrupted write never leaves a file that looks complete.

    Example:
        >>> atomic_write(Path(tempfile.mkdtemp()) / "a.txt", b"hi").read_bytes()
        b'hi'
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide a shared data root
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
