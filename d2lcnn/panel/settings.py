"""The panel's settings: defaults checked once, at construction, with the fix named.

A panel is built from a chapter's profile (``defaults``), whose numbers may come from
numpy or a config file: numpy scalars are accepted wherever Python numbers are, and
turned into Python numbers so that nothing downstream sees ``np.int64``.
"""

from __future__ import annotations

import math
import numbers
from types import SimpleNamespace

__all__ = [
    "BATCH_SIZES",
    "DATA_KEYS",
    "NATIVE_SIZE",
    "TRAIN_KEYS",
    "check_defaults",
    "check_knobs",
    "lr_slider_bounds",
    "make_settings",
]

BATCH_SIZES = (16, 32, 64, 128, 256, 512)
NATIVE_SIZE = 28  # Fashion-MNIST's own resolution: no resize needed
DATA_KEYS = ("subset", "test_subset", "source", "root", "seed")  # go to the loader
TRAIN_KEYS = ("precision", "channels_last")  # go to train_ch6
REQUIRED = ("lr", "num_epochs", "batch_size")
EXAMPLE = "defaults=dict(lr=0.1, num_epochs=10, batch_size=256)"


def _plain(value):
    """A numpy scalar as the Python number it holds; anything else unchanged."""
    is_numpy = type(value).__module__ == "numpy" and hasattr(value, "item")
    return value.item() if is_numpy and isinstance(value, numbers.Number) else value


def _positive_int(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"defaults[{key!r}] must be a positive whole number (an int or a numpy "
            f"integer), got {value!r}; e.g. {EXAMPLE}"
        )
    return int(value)


def _learning_rate(value) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not value > 0:
        raise ValueError(
            f"defaults['lr'] must be a finite number > 0 (an int, a float or a numpy "
            f"scalar, e.g. 0.1), got {value!r}"
        )
    return float(value)


def check_defaults(defaults) -> dict:
    """The panel's defaults as a dict of plain Python values, or a ValueError.

    ``lr``, ``num_epochs`` and ``batch_size`` are required; ``resize`` defaults to 28.

    Example:
        >>> import numpy as np
        >>> check_defaults(dict(lr=np.float32(0.5), num_epochs=np.int64(2),
        ...                     batch_size=8))
        {'lr': 0.5, 'num_epochs': 2, 'batch_size': 8, 'resize': 28}
        >>> check_defaults(dict(lr=float("inf"), num_epochs=1, batch_size=8))
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: defaults['lr'] must be a finite number > 0 (...), got inf
    """
    if isinstance(defaults, SimpleNamespace):
        defaults = vars(defaults)
    if not hasattr(defaults, "keys"):
        raise TypeError(
            f"defaults must be a dict or a namespace (e.g. a profile), got "
            f"{type(defaults).__name__}; e.g. {EXAMPLE}"
        )
    values = {key: _plain(value) for key, value in dict(defaults).items()}
    missing = [key for key in REQUIRED if key not in values]
    if missing:
        raise ValueError(
            f"defaults must set lr, num_epochs and batch_size; missing {missing}, "
            f"e.g. {EXAMPLE}"
        )
    if values.get("resize") is None:
        values["resize"] = NATIVE_SIZE
    for key in ("num_epochs", "batch_size", "resize"):
        values[key] = _positive_int(key, values[key])
    values["lr"] = _learning_rate(values["lr"])
    return values


def check_knobs(knobs, defaults: dict) -> dict:
    """``{name: [choices]}`` with plain values; a knob's default must be a choice.

    Example:
        >>> check_knobs({"width_mult": (0.5, 1.0)}, {"width_mult": 1.0})
        {'width_mult': [0.5, 1.0]}
    """
    choices = {name: [_plain(v) for v in options] for name, options in
               (knobs or {}).items()}
    for name, options in choices.items():
        if not options:
            raise ValueError(f"knob {name!r} needs at least one choice, got none")
        if name in defaults and defaults[name] not in options:
            raise ValueError(
                f"defaults[{name!r}]={defaults[name]!r} is not one of the knob's "
                f"choices {options}; add it to knobs[{name!r}]"
            )
    return choices


def lr_slider_bounds(lr: float, lr_range: tuple[float, float], step: float = 0.1):
    """(min, max) exponents of a log slider whose grid passes through ``lr``.

    The browser snaps a slider's value to ``min + k * step``: the default must lie
    on that grid, or the first drag (or a re-render) changes it.

    Example:
        >>> low, high = lr_slider_bounds(0.3, (1e-4, 10.0))
        >>> round((math.log10(0.3) - low) / 0.1, 9) % 1, low <= -4, high >= 1
        (0.0, True, True)
    """
    if len(lr_range) != 2 or not 0 < lr_range[0] < lr_range[1]:
        raise ValueError(
            f"lr_range must be (low, high) with 0 < low < high, got {lr_range!r}; "
            "e.g. lr_range=(1e-4, 10.0)"
        )
    exponent = math.log10(lr)
    low, high = (math.log10(v) for v in lr_range)
    low, high = min(low, exponent), max(high, exponent)
    below = math.ceil(round((exponent - low) / step, 6))
    above = math.ceil(round((high - exponent) / step, 6))
    return exponent - below * step, exponent + above * step


def make_settings(defaults: dict, **chosen) -> SimpleNamespace:
    """The namespace ``make_net`` receives: the defaults overridden by the controls.

    Example:
        >>> make_settings({"lr": 0.1, "seed": 0}, lr=0.30000000000000004).lr
        0.3
    """
    values = dict(defaults)
    values.update(chosen)
    if "lr" in chosen:  # 0.3, not the slider's 0.30000000000000004
        values["lr"] = float(f"{chosen['lr']:.6g}")
    return SimpleNamespace(**values)
