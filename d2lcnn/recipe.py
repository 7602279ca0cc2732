"""A training recipe: what the book's plain SGD leaves open, in one small object.

``train_ch6(..., recipe=Recipe(...))`` builds its optimizer, learning-rate schedule,
loss and initialisation from it; without a recipe ``train_ch6`` is d2l's (plain SGD at a
fixed lr, cross-entropy, Xavier). Each field is one lever with a known effect:

- ``momentum``/``nesterov``: SGD with (Nesterov) momentum, as AlexNet, VGG and ResNet
  were trained (0.9);
- ``weight_decay``: L2 on the weights (5e-4 in AlexNet and VGG), not on biases or
  batch-norm parameters, whose decay only hurts;
- ``schedule``: ``"constant"`` (d2l), ``"onecycle"`` (warm up to ``lr`` over the first
  ``warmup`` fraction of the steps, then anneal to ~0: Smith & Topin 2018) or
  ``"cosine"`` (cosine decay after the same warm-up);
- ``label_smoothing``: cross-entropy against 0.9/0.1-style soft targets (Szegedy et al.
  2016, Inception-v3);
- ``init``: ``"xavier"`` (d2l), ``"kaiming"`` (He et al. 2015, for ReLU nets) or None.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = ["Recipe", "kaiming_init", "xavier_init"]

SCHEDULES = ("constant", "onecycle", "cosine")
INITS = ("xavier", "kaiming", None)


def xavier_init(module: nn.Module) -> None:
    """d2l's ``init_weights``: Xavier-uniform weights for every Linear and Conv2d.

    Example:
        >>> net = nn.Sequential(nn.Linear(400, 2)).apply(xavier_init)
        >>> bool(net[0].weight.abs().max() <= (6 / 402) ** 0.5)
        True
    """
    if type(module) in (nn.Linear, nn.Conv2d):
        nn.init.xavier_uniform_(module.weight)


def kaiming_init(module: nn.Module) -> None:
    """He-normal weights (fan-out, for ReLU) and zero biases for Conv2d and Linear.

    Example:
        >>> layer = nn.Linear(100, 10); kaiming_init(layer)
        >>> float(layer.bias.abs().max())
        0.0
    """
    if isinstance(module, nn.Conv2d | nn.Linear):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _decays(name: str, parameter: torch.Tensor) -> bool:
    # biases and normalisation scales/shifts are 1-D: decaying them only hurts
    return parameter.dim() > 1


def _onecycle(step: int, warmup: int, total: int) -> float:
    """The lr factor of a one-cycle schedule (as ``OneCycleLR`` with cosine phases, but
    defined for any number of steps): lr/25 up to lr over ``warmup`` steps, then down to
    lr/250,000.

    Example:
        >>> [round(_onecycle(s, 2, 6), 3) for s in range(6)]
        [0.04, 0.52, 1.0, 0.854, 0.5, 0.146]
    """
    start, end = 1 / 25, 1 / 25 / 1e4
    if step < warmup:
        return start + (1 - start) * (1 - math.cos(math.pi * step / warmup)) / 2
    done = min(1.0, (step - warmup) / max(1, total - warmup))
    return end + (1 - end) * (1 + math.cos(math.pi * done)) / 2


def _cosine(step: int, warmup: int, total: int) -> float:
    """The lr factor of linear warm-up over ``warmup`` steps, then cosine decay to 0.

    Example:
        >>> [round(_cosine(s, 2, 6), 3) for s in range(6)]
        [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    if step < warmup:
        return (step + 1) / warmup
    done = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))


@dataclass(frozen=True)
class Recipe:
    """Optimizer, schedule, loss and init for ``train_ch6(..., recipe=...)``.

    Example:
        >>> recipe = Recipe(momentum=0.9, weight_decay=5e-4, schedule="onecycle")
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        >>> optimizer, scheduler = recipe.optimizer(net, lr=0.1, total_steps=100)
        >>> [group["weight_decay"] for group in optimizer.param_groups]
        [0.0005, 0.0]
        >>> round(optimizer.param_groups[0]["lr"], 4)  # warming up from lr / 25
        0.004
    """

    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup: float = 0.25  # fraction of the steps spent warming up (onecycle, cosine)
    label_smoothing: float = 0.0
    init: str | None = "xavier"

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        for name in ("momentum", "label_smoothing", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int | float)
                                               and 0 <= value < 1):
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        decay = self.weight_decay
        if isinstance(decay, bool) or not (isinstance(decay, int | float)
                                           and 0 <= decay < math.inf):
            raise ValueError(f"weight_decay must be a number >= 0 such as 5e-4, got "
                             f"{decay!r}")
        if self.nesterov and not self.momentum:
            raise ValueError("nesterov=True needs momentum > 0, e.g. momentum=0.9")

    @classmethod
    def of(cls, value) -> Recipe | None:
        """A Recipe from a Recipe, a dict of its fields (a chapter's ``SETTINGS``), or None.

        Example:
            >>> Recipe.of(dict(momentum=0.9, nesterov=True)).nesterov
            True
            >>> Recipe.of(None) is None
            True
        """
        if value is None or isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"recipe must be a Recipe, a dict of its fields or None, got "
                            f"{type(value).__name__}")
        unknown = sorted(set(value) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown recipe field(s) {unknown}; the fields are "
                             f"{', '.join(cls.__dataclass_fields__)}")
        return cls(**value)

    def loss(self) -> nn.Module:
        return nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)

    def init_function(self):
        """The function ``train_ch6`` applies to every module (None keeps the weights)."""
        return {"xavier": xavier_init, "kaiming": kaiming_init, None: None}[self.init]

    def optimizer(self, net: nn.Module, lr: float, total_steps: int):
        """SGD as the recipe says, and a per-step scheduler (None for constant lr)."""
        decay = [p for n, p in net.named_parameters() if _decays(n, p)]
        rest = [p for n, p in net.named_parameters() if not _decays(n, p)]
        groups = [{"params": decay, "weight_decay": self.weight_decay},
                  {"params": rest, "weight_decay": 0.0}]
        optimizer = torch.optim.SGD([g for g in groups if g["params"]], lr=lr,
                                    momentum=self.momentum, nesterov=self.nesterov)
        if self.schedule == "constant":
            return optimizer, None
        warmup = max(1, round(self.warmup * total_steps))
        factor = _onecycle if self.schedule == "onecycle" else _cosine
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: factor(step, warmup, total_steps))
        return optimizer, scheduler

    def to_dict(self) -> dict:
        return asdict(self)
