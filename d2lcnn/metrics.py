"""Counting helpers from d2l: ``Accumulator``, ``Timer`` and ``accuracy``."""

from __future__ import annotations

import time

import numpy as np
import torch

__all__ = ["Accumulator", "Timer", "accuracy"]


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
            count = n_or_names[0]
            if count < 1:
                raise ValueError(f"Accumulator needs at least one slot, got {count}")
            self.names = tuple(str(i) for i in range(count))
        elif n_or_names and all(isinstance(name, str) for name in n_or_names):
            self.names = tuple(n_or_names)
        else:
            raise TypeError(
                "Accumulator takes a count, Accumulator(3), or slot names, "
                f"Accumulator('loss', 'correct', 'n'); got {n_or_names!r}"
            )
        self.data = [0.0] * len(self.names)

    def add(self, *args) -> None:
        if len(args) != len(self.data):
            raise ValueError(
                f"Accumulator has {len(self.data)} slots, add() got {len(args)}"
            )
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self) -> None:
        self.data = [0.0] * len(self.data)

    def __getitem__(self, key: int | str) -> float:
        if isinstance(key, str):
            return self.data[self.names.index(key)]
        return self.data[key]

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

    Labels of shape (B, 1) count as (B,), instead of broadcasting to B x B.

    Example:
        >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
        1.0
        >>> accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([[1], [1]]))
        1.0
    """
    return float(correct_count(y_hat, y))
