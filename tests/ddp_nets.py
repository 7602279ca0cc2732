"""Builders that the worker processes of tests/test_distributed.py import by name."""

import os

from torch import nn


def tiny():
    """No BatchNorm: two processes and one give the same weights."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))


class _FailsOnRank1(nn.Sequential):
    def forward(self, X):
        if self.training and os.environ.get("RANK") == "1":
            raise ValueError("rank 1 broke on purpose")
        return super().forward(X)


def failing():
    return _FailsOnRank1(nn.Flatten(), nn.Linear(784, 10))
