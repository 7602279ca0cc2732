"""What the book's plain SGD leaves open — a ``Recipe`` — and the run's numeric format.

Without a recipe ``train_ch6`` is d2l's: plain SGD at a fixed lr, cross-entropy, Xavier."""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .utils import native_bf16

__all__ = ["Recipe", "autocast", "choose_format", "kaiming_init", "xavier_init"]

SCHEDULES = ("constant", "onecycle", "cosine")
INITS = ("xavier", "kaiming", None)
PRECISIONS = ("fp32", "bf16", "auto")


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
    """He-normal weights scaled by fan-in (PyTorch's default mode: each layer keeps its
    input's variance through a ReLU, He et al. 2015, 2.2) and zero biases, Conv2d and Linear.

    Example:
        >>> layer = nn.Linear(100, 10).apply(kaiming_init)
        >>> bool((layer.bias == 0).all())
        True
    """
    if isinstance(module, nn.Conv2d | nn.Linear):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _lr_factor(schedule: str, step: int, warmup: int, total: int) -> float:
    """The lr's multiplier at ``step``: a warm-up over ``warmup`` steps, then a cosine decay.

    onecycle: OneCycleLR's shape (cosine from 1/25 up to 1, then down to 1/250,000), but
    defined for any number of steps (OneCycleLR divides by zero below 4); cosine: linear up.

    Example:
        >>> [round(_lr_factor("onecycle", s, 2, 6), 3) for s in range(6)]
        [0.04, 0.52, 1.0, 0.854, 0.5, 0.146]
        >>> [round(_lr_factor("cosine", s, 2, 6), 3) for s in range(6)]
        [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    decay = (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup)))) / 2
    if schedule == "cosine":
        return (step + 1) / warmup if step < warmup else decay
    start, end = 1 / 25, 1 / 25 / 1e4
    if step < warmup:
        return start + (1 - start) * (1 - math.cos(math.pi * step / warmup)) / 2
    return end + (1 - end) * decay


LAST_LAYER_SCALE = 0.1  # first losses 2.30-2.38, not 2.5-6.3


def initialise(net: nn.Module, init) -> nn.Module:
    """``net.apply(init)``; after He init the last layer's weights times 0.1, its biases 1.

    Fan-in He init keeps each layer's variance, so the logits start with the spread of
    the features and the first loss sits far above ln(classes) (VGG-11/4 at 64 px: 6.3,
    AlexNet 5.7, ResNet-20 4.8). A small last layer starts every net near ln 10 = 2.30
    (Karpathy 2019, "verify loss @ init"); the last Conv2d or Linear registered is the
    classifier in every chapter net. Its bias 1 changes nothing where the scores are its
    output (softmax ignores a shift shared by all classes) and keeps NiN's class maps,
    which pass a ReLU before pooling, alive: at 0 they sat at chance on 2 of 3 seeds
    (AlexNet's paper gives ReLUs positive biases for the same reason: Krizhevsky et al.
    2012, section 5).

    Example:
        >>> net = initialise(nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2)), kaiming_init)
        >>> bool(net[1].weight.std() < net[0].weight.std())
        True
    """
    net.apply(init)
    if init is kaiming_init:
        layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        if layers:
            with torch.no_grad():
                layers[-1].weight.mul_(LAST_LAYER_SCALE)
                if layers[-1].bias is not None:
                    layers[-1].bias.fill_(1.0)
    return net


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

    momentum: float = 0.0  # SGD momentum, 0.9 as AlexNet, VGG and ResNet were trained
    nesterov: bool = False
    weight_decay: float = 0.0  # L2 on weights, not biases or norms (5e-4: AlexNet, VGG)
    schedule: str = "constant"  # d2l's; "onecycle" (Smith & Topin 2018) or "cosine"
    warmup: float = 0.25  # fraction of the steps spent warming up (onecycle, cosine)
    label_smoothing: float = 0.0  # soft targets (Szegedy et al. 2016, Inception-v3)
    init: str | None = "xavier"  # d2l's; "kaiming" (He fan-in, small last layer) or None

    def __post_init__(self):
        for name, allowed in (("schedule", SCHEDULES), ("init", INITS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name, high in (("momentum", 1), ("label_smoothing", 1), ("warmup", 1),
                           ("weight_decay", math.inf)):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int | float)
                                               and 0 <= value < high):
                rule = "in [0, 1)" if high == 1 else ">= 0 such as 5e-4"
                raise ValueError(f"{name} must be a number {rule}, got {value!r}")
        if self.nesterov and not self.momentum:
            raise ValueError("nesterov=True needs momentum > 0, e.g. momentum=0.9")

    @classmethod
    def of(cls, value) -> Recipe | None:
        """A Recipe from a Recipe, a dict of its fields (a chapter's settings), or None.

        Example:
            >>> Recipe.of(dict(momentum=0.9, nesterov=True)).nesterov
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
        # biases and normalisation scales/shifts are 1-D: decaying them only hurts
        decay = [p for p in net.parameters() if p.dim() > 1]
        rest = [p for p in net.parameters() if p.dim() <= 1]
        groups = [{"params": decay, "weight_decay": self.weight_decay},
                  {"params": rest, "weight_decay": 0.0}]
        optimizer = torch.optim.SGD([g for g in groups if g["params"]], lr=lr,
                                    momentum=self.momentum, nesterov=self.nesterov)
        if self.schedule == "constant":
            return optimizer, None
        warmup = max(1, round(self.warmup * total_steps))
        return optimizer, torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: _lr_factor(self.schedule, step, warmup, total_steps))

    def to_dict(self) -> dict:
        return asdict(self)


def autocast(device: torch.device, precision: str):
    """A bf16 autocast context for ``precision="bf16"``, else one that does nothing.

    Example:
        >>> with autocast(torch.device("cpu"), "bf16"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.bfloat16
    """
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _seconds_per_step(net, X, y, loss, device, precision: str, channels_last: bool) -> float:
    trial = copy.deepcopy(net).train()  # the real net's weights and statistics stay as they are
    if channels_last:
        trial.to(memory_format=torch.channels_last)
        X = X.contiguous(memory_format=torch.channels_last)
    times = []
    for _ in range(3):  # the first step warms up (allocations, kernels)
        start = time.perf_counter()
        with autocast(device, precision):
            batch_loss = loss(trial(X), y)
        batch_loss.backward()
        trial.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times[1:])


_CHOSEN: dict[tuple, tuple[str, bool]] = {}  # one timing per architecture, batch, device


def choose_format(net: nn.Module, X, y, device, precision: str = "auto",
                  channels_last: bool | str = "auto", *, loss=None) -> tuple[str, bool]:
    """``(precision, channels_last)`` with each ``"auto"`` made the fastest choice here.

    Times training steps of a copy of ``net`` per candidate, as cuDNN's benchmark mode does
    (the fastest layout differs between CPU kinds), on the whole batch (a quarter batch
    ranked MobileNet wrongly); within 5 % of fp32 NCHW, d2l's format is kept.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(144, 10))
        >>> X, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
        >>> choose_format(net, X, y, torch.device("cpu"), "fp32", "auto")[0]
        'fp32'
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if channels_last not in (True, False, "auto"):
        raise ValueError(f"channels_last must be True, False or 'auto', got {channels_last!r}")
    device = torch.device(device)
    auto = ["fp32", "bf16"] if native_bf16(device) else ["fp32"]
    precisions = auto if precision == "auto" else [precision]
    layouts = [False, True] if channels_last == "auto" else [bool(channels_last)]
    layouts = layouts if X.dim() == 4 else [False]
    candidates = list(itertools.product(precisions, layouts))
    if len(candidates) == 1:
        return candidates[0]
    shapes = tuple((k, tuple(v.shape)) for k, v in net.state_dict().items())
    key = (type(net).__qualname__, shapes, tuple(X.shape), str(device), tuple(candidates))
    if key not in _CHOSEN:
        X, y, loss = X.to(device), y.to(device), loss or nn.CrossEntropyLoss()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                times = {c: _seconds_per_step(net, X, y, loss, device, *c) for c in candidates}
            best = min(times, key=times.get)
            _CHOSEN[key] = candidates[0] if times[candidates[0]] <= 1.05 * times[best] else best
        except Exception:  # noqa: BLE001 - e.g. a net that cannot be copied: d2l's format
            _CHOSEN[key] = candidates[0]
    return _CHOSEN[key]
