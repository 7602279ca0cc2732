"""d2lcnn.stats: the intervals and tests behind every experiment's noise statement."""

import math

import numpy as np
import pytest
import torch
from scipy import stats as st

from d2lcnn import compare, mcnemar, mean_interval


def test_mean_interval_matches_a_hand_computed_t_interval():
    mean, half = mean_interval([0.80, 0.82, 0.84])  # s = 0.02, t(0.975, 2) = 4.303
    assert mean == pytest.approx(0.82)
    assert half == pytest.approx(4.303 * 0.02 / math.sqrt(3), rel=1e-3)
    assert mean_interval([0.80, 0.82, 0.84], confidence=0.90)[1] < half
    assert mean_interval([0.8]) == (0.8, math.inf)


def test_compare_separated_seeds_are_beyond_noise_and_name_the_leader():
    result = compare([0.85, 0.86, 0.87], [0.90, 0.91, 0.92], names=("VGG", "ResNet"))
    assert result.difference == pytest.approx(-0.05)
    assert result.beyond_noise
    assert str(result).startswith("ResNet ahead of VGG by 0.050 ± 0.000 (95 % t interval, "
                                  "3 paired seeds)")
    assert str(result).endswith(": beyond noise")


def test_compare_overlapping_seeds_are_within_noise():
    result = compare([0.80, 0.90, 0.85], [0.86, 0.81, 0.84])
    assert not result.beyond_noise
    assert str(result).endswith("within noise (the interval includes 0)")


def test_paired_uses_per_seed_differences_where_welch_cannot_see_the_gap():
    a = [0.800, 0.850, 0.900]  # seeds vary a lot, but A beats B on each by 0.010-0.012
    b = [0.790, 0.839, 0.888]
    paired, welch = compare(a, b), compare(a, b, paired=False)
    assert paired.difference == pytest.approx(welch.difference) == pytest.approx(0.011)
    assert paired.beyond_noise and not welch.beyond_noise
    assert "Welch t interval, 3 and 3 seeds" in str(welch)
    low, high = st.ttest_ind(a, b, equal_var=False).confidence_interval()
    assert welch.half_width == pytest.approx((high - low) / 2)


def test_mcnemar_p_value_is_the_exact_binomial_test_on_the_disagreements():
    a = torch.tensor([True] * 7 + [False] * 2 + [True] * 30 + [False] * 11)
    b = torch.tensor([False] * 7 + [True] * 2 + [True] * 30 + [False] * 11)
    p, says = mcnemar(a, b, names=("AlexNet", "LeNet"))
    assert p == pytest.approx(st.binomtest(7, 9, 0.5).pvalue)
    assert says == (f"AlexNet right where LeNet is wrong on 7 test images, LeNet right where "
                    f"AlexNet is wrong on 2: p = {p:.2g} (McNemar, exact): within noise at 5 %")
    p, says = mcnemar(np.r_[np.ones(40), np.zeros(5)], np.r_[np.zeros(40), np.ones(5)])
    assert p < 1e-6 and says.endswith("beyond noise at 5 %")
    assert mcnemar([1, 0], [1, 0])[0] == 1.0  # no disagreements: nothing to test


@pytest.mark.parametrize("call, problem, fix", [
    (lambda: compare([0.9, 0.8, 0.85], [0.8, 0.7]), "got 3 and 2", "paired=False"),
    (lambda: compare([0.9], [0.8]), "at least 2", "mcnemar()"),
    (lambda: mean_interval([]), "at least 2", "run more seeds"),
    (lambda: mcnemar([True, False], [True]), "same test set", "same images"),
    (lambda: mcnemar([3, 1, 0], [1, 1, 0]), "values like 3", "(predictions == labels)"),
])
def test_bad_input_names_the_problem_and_the_fix(call, problem, fix):
    with pytest.raises(ValueError) as info:
        call()
    assert problem in str(info.value) and fix in str(info.value)
