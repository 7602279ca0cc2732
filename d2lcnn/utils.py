"""Small things every chapter uses: devices, counters, argument checks, safe writes."""

from __future__ import annotations

import ctypes
import functools
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
           "positive_number", "try_all_gpus", "try_gpu", "check_device", "available_memory",
           "to_device"]


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
    return torch.device("mps" if i == 0 and torch.backends.mps.is_available() else "cpu")


def try_all_gpus() -> list[torch.device]:
    """All CUDA GPUs, or ``[cpu]`` when there is none (as d2l does).

    Example:
        >>> try_all_gpus()[0].type in {"cuda", "cpu"}
        True
    """
    return [torch.device(f"cuda:{i}") for i in range(num_gpus())] or [torch.device("cpu")]


def best_device() -> torch.device:
    """The device a chapter trains on by default: CUDA, then MPS, then CPU (``try_gpu()``)."""
    return try_gpu(0)


def get_dataloader_workers() -> int:
    """DataLoader workers: d2l's 4, never more than cores - 1 (d2lcnn's loader needs none).

    Example:
        >>> 0 <= get_dataloader_workers() <= 4
        True
    """
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def native_bf16(device="cpu") -> bool:
    """Whether ``device`` computes bf16 natively (Ampere+ GPUs, AVX512-BF16/AMX CPUs)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def cpu_model() -> str:
    """The CPU's model name with its core count and bf16 support, as results name it.

    Example:
        >>> "cores" in cpu_model()
        True
    """
    cpuinfo = Path("/proc/cpuinfo")  # Linux; elsewhere platform's (vaguer) name
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    name = next((line.split(":", 1)[1].strip() for line in lines
                 if line.startswith("model name")), platform.processor() or platform.machine())
    bf16 = "native bf16" if native_bf16("cpu") else "no bf16"
    return f"{name}, {os.cpu_count()} cores, {bf16}"


def device_name(device) -> str:
    """A GPU's name, or the CPU's model: what a result says it ran on.

    Example:
        >>> device_name("cpu") == cpu_model()
        True
    """
    count, _, device = str(device).rpartition(" x ")  # a data-parallel run: "2 x cuda"
    device = torch.device(device)  # a loaded History may name a GPU this machine lacks
    cuda = device.type == "cuda" and torch.cuda.is_available()
    name = torch.cuda.get_device_name(device) if cuda else cpu_model()
    return f"{count} x {name}" if count and cuda else name


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks up to 1 GiB for reuse (silent; CPU speed).

    Else each freed block over 32 MiB goes back to the OS and the next page-faults again (~20 ms
    per 51 MiB batch on a 2-core Xeon; writing it takes 1 ms): PyTorch's CPU guide's advice.

    Example:
        >>> keep_freed_memory() == (sys.platform == "linux")
        True
    """
    if sys.platform != "linux":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:  # not glibc: nothing to tune
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, 1 << 30))


class Accumulator:
    """Sum ``n`` running values; index like d2l (``metric[0] / metric[2]``) or by name.

    Example:
        >>> metric = Accumulator("loss", "correct", "n")
        >>> metric.add(2.0, 3, 4)
        >>> metric.add(1.0, 1, 4)
        >>> metric[1], metric["n"], metric
        (4.0, 8.0, Accumulator(loss=3, correct=4, n=8))
    """

    def __init__(self, *n_or_names: int | str):
        if len(n_or_names) == 1 and isinstance(n_or_names[0], int) and n_or_names[0] > 0:
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

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={v:.4g}" for n, v in zip(self.names, self.data))
        return f"Accumulator({fields})"


class Timer:
    """Record several running times (d2l's ``Timer``).

    Example:
        >>> timer = Timer()
        >>> len(timer.times), timer.stop() >= 0, len(timer.times)
        (0, True, 1)
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
    if y_hat.shape != y.shape:  # labels (B, 1) against predictions (B,) would broadcast
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


class ArgumentError(ValueError, TypeError):
    """A bad argument, of the wrong type or value: callers may catch either."""


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
    """Write ``data`` to ``path`` through a temporary file and a rename: never half a file.

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


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device`` that exists and works, else a clear error.

    Example:
        >>> check_device("cpu")
        device(type='cpu')
    """
    fallback = "pass d2l.try_gpu(), which falls back to the CPU"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device (such as cpu, cuda, "
                         "cuda:1, mps); pass d2l.try_gpu(), 'cpu' or 'cuda:0'") from err
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type == "cuda" and count == 0:
        raise ValueError(f"device {device} asked for, but torch sees no CUDA GPU "
                         f"(torch.cuda.is_available() is False); {fallback}")
    if device.type == "cuda" and device.index is not None and device.index >= count:
        raise ValueError(f"device {device} asked for, but there are only {count} CUDA "
                         f"GPU(s) (cuda:0..cuda:{count - 1}); {fallback}")
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and (mps is None or not mps.is_available()):
        raise ValueError(f"device {device} asked for, but Apple MPS is not available "
                         f"here; {fallback}")
    try:
        torch.zeros(1, device=device) + 1  # a device that exists but cannot compute
    except (RuntimeError, AssertionError) as err:
        raise ValueError(f"device {device} does not work here ({err}); {fallback}") from err
    return device


def check_batch_fits(batch_size: int, height: int, width: int, device) -> None:
    """Refuse a float32 batch larger than the memory ``device`` has available.

    Example:
        >>> check_batch_fits(64, 50000, 50000, "cpu")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: a batch of 64 images at 50000x50000 takes 640.0 GB as float32, ...
    """
    need, free = 4 * batch_size * height * width, available_memory(device)
    if need > free:
        raise ValueError(f"a batch of {batch_size} images at {height}x{width} takes "
                         f"{need / 1e9:.1f} GB as float32, more than the {free / 1e9:.1f} GB "
                         f"available on {device}; use a smaller batch_size or resize")


def available_memory(device) -> int:
    """Bytes that ``device`` can still allocate: free GPU memory, or the host's available
    memory (Linux's MemAvailable; elsewhere its physical memory).

    Example:
        >>> available_memory("cpu") > 0
        True
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f
                        if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def to_device(X, device, channels_last: bool = False):
    """A batch's inputs on ``device`` (NHWC when asked); a list of tensors as a list.

    Example:
        >>> to_device(torch.zeros(2, 1, 4, 4), "cpu", channels_last=True).is_contiguous(
        ...     memory_format=torch.channels_last)
        True
    """
    if isinstance(X, list | tuple):  # several inputs, as in d2l's BERT chapters
        return [x.to(device) for x in X]
    X = X.to(device, non_blocking=True)
    return X.contiguous(memory_format=torch.channels_last) if channels_last and X.dim() == 4 else X
