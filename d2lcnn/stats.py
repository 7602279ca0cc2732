"""The one noise statement every experiment prints: ``compare`` for several seeds per variant
(a t interval on per-seed differences, or Welch's), ``mcnemar`` for one run each scored on the
same test set (exact, Dietterich 1998). Each ends "beyond noise" or "within noise".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Comparison", "compare", "mcnemar", "mean_interval"]


def _t(confidence, df) -> float:  # scipy is imported on first use: import d2lcnn stays fast
    from scipy.stats import t
    return float(t.ppf(0.5 + confidence / 2, df))


def _values(values, what="values") -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"an interval needs at least 2 {what}, got {x.size}; run more "
                         "seeds, or test a single pair of runs with mcnemar()")
    return x


def mean_interval(values, confidence=0.95) -> tuple[float, float]:
    """Mean over seeds and its Student-t half width, t * s / sqrt(n); ``inf`` for one value.

    Example:
        >>> m, h = mean_interval([0.80, 0.82, 0.84])
        >>> round(m, 3), round(h, 3)  # 4.303 * 0.02 / sqrt(3)
        (0.82, 0.05)
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 1:
        return float(x[0]), float("inf")
    x = _values(x)
    return float(x.mean()), _t(confidence, x.size - 1) * float(x.std(ddof=1)) / x.size**0.5


@dataclass(frozen=True)
class Comparison:
    """The result of ``compare``: mean difference a - b, its half width, the sentence."""

    difference: float
    half_width: float
    names: tuple[str, str]
    method: str  # e.g. "95 % t interval, 3 paired seeds"

    @property
    def beyond_noise(self) -> bool:
        return abs(self.difference) > self.half_width

    def __str__(self) -> str:
        a, b = self.names if self.difference >= 0 else self.names[::-1]
        reading = "beyond noise" if self.beyond_noise else "within noise (the interval includes 0)"
        return (f"{a} ahead of {b} by {abs(self.difference):.3f} ± {self.half_width:.3f} "
                f"({self.method}): {reading}")


def compare(a, b, names=("A", "B"), confidence=0.95, paired=True) -> Comparison:
    """Per-seed accuracies of two variants: mean difference with its t interval, as a sentence.

    Example:
        >>> print(compare([0.90, 0.91, 0.92], [0.87, 0.89, 0.89], names=("ReLU", "sigmoid")))
        ReLU ahead of sigmoid by 0.027 ± 0.014 (95 % t interval, 3 paired seeds): beyond noise
    """
    a, b = _values(a, "seeds per variant"), _values(b, "seeds per variant")
    level = f"{confidence * 100:g} %"
    if paired:
        if a.size != b.size:
            raise ValueError(f"paired by seed, but got {a.size} and {b.size} values; run both "
                             "on the same seeds, or pass paired=False (Welch's interval)")
        diff, half = mean_interval(a - b, confidence)
        return Comparison(diff, half, tuple(names), f"{level} t interval, {a.size} paired seeds")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if va + vb else 1.0
    half = _t(confidence, df) * float(np.sqrt(va + vb))  # Welch-Satterthwaite df
    return Comparison(float(a.mean() - b.mean()), half, tuple(names),
                      f"{level} Welch t interval, {a.size} and {b.size} seeds")


def _correct(x, name) -> np.ndarray:
    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x).ravel()
    if (bad := x[~np.isin(x, (0, 1))]).size:
        raise ValueError(f"{name} must hold per-example correctness (True/False or 0/1), got "
                         f"values like {bad[0]}; pass (predictions == labels), not predictions")
    return x.astype(bool)


def mcnemar(correct_a, correct_b, names=("A", "B"), alpha=0.05) -> tuple[float, str]:
    """Exact McNemar test for two classifiers' per-example correctness on one test set.

    Example:
        >>> p, says = mcnemar([1] * 20 + [0] * 5 + [1] * 75, [0] * 20 + [1] * 5 + [1] * 75)
        >>> print(says)
        A right where B is wrong on 20 test images, B right where A is wrong on 5: p = 0.0041 (McNemar, exact): beyond noise at 5 %
    """  # noqa: E501
    from scipy.stats import binomtest
    ra, rb = _correct(correct_a, "correct_a"), _correct(correct_b, "correct_b")
    if ra.size != rb.size:
        raise ValueError(f"correct_a and correct_b must cover the same test set, got {ra.size} "
                         f"and {rb.size} examples; score both runs on the same images, in order")
    b, c = int((ra & ~rb).sum()), int((~ra & rb).sum())
    p = float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    return p, (f"{names[0]} right where {names[1]} is wrong on {b} test images, {names[1]} "
               f"right where {names[0]} is wrong on {c}: p = {p:.2g} (McNemar, exact): "
               f"{'beyond' if p < alpha else 'within'} noise at {alpha * 100:g} %")
