"""The benchmark harness's arithmetic: ratios, targets, the accuracy-within-noise test."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from torch import nn

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = load("run")


def fake_runs(seconds: dict[str, list[float]], test_acc: dict[str, list[float]]):
    return {impl: [{"seconds": s, "cpu_seconds": 2 * s, "import_seconds": 1.0,
                    "train_loss": 1.0, "train_acc": 0.5, "test_acc": acc,
                    "step_examples_per_sec": 100.0}
                   for s, acc in zip(seconds[impl], test_acc[impl])]
            for impl in seconds}


def test_summary_uses_medians_and_checks_the_target():
    runs = fake_runs({"reference": [9.0, 30.0, 10.0], "d2lcnn": [3.0, 2.0, 2.5]},
                     {"reference": [0.8, 0.8, 0.8], "d2lcnn": [0.8, 0.8, 0.8]})
    row = run.summarise("lenet", run.CASES["lenet"], runs)
    assert row["seconds_median"] == {"reference": 10.0, "d2lcnn": 2.5}
    assert row["ratio"] == 4.0 and row["target_met"] is True
    slow = fake_runs({"reference": [5.0], "d2lcnn": [2.5]},
                     {"reference": [0.8], "d2lcnn": [0.8]})
    assert run.summarise("lenet", run.CASES["lenet"], slow)["target_met"] is False


def test_accuracy_cases_have_no_speed_target():
    runs = fake_runs({"reference": [9.0, 9.0], "d2lcnn": [3.0, 3.0]},
                     {"reference": [0.80, 0.82], "d2lcnn": [0.81, 0.83]})
    row = run.summarise("lenet_10_epochs", run.ACCURACY_CASES["lenet_10_epochs"], runs)
    assert row["target"] is None and row["target_met"] is None
    assert "10 epochs" in row["description"]
    assert "within noise" in run.accuracy_table({"cases": [row]})


@pytest.mark.parametrize("d2lcnn, within", [
    ([0.80, 0.82, 0.81], True),    # the same accuracy
    ([0.70, 0.71, 0.69], False),   # ten points lower, far outside a 0.01 spread
    ([0.83, 0.85, 0.84], False),   # higher also counts as different
])
def test_accuracy_difference_is_judged_against_run_to_run_noise(d2lcnn, within):
    result = run.compare_accuracy({"reference": [0.81, 0.80, 0.82], "d2lcnn": d2lcnn})
    assert result["within_noise"] is within
    assert math.isclose(result["difference"],
                        sum(d2lcnn) / 3 - 0.81, abs_tol=1e-12)


def test_single_runs_cannot_be_judged():
    result = run.compare_accuracy({"reference": [0.8], "d2lcnn": [0.7]})
    assert result["within_noise"] is None


@pytest.mark.parametrize("case", [c for c, spec in run.CASES.items() if spec["kind"] == "train"])
def test_both_sides_train_the_same_architecture(case):
    worker = load("worker")  # the reference's nets are the book's code, d2lcnn's its own
    layers = {}
    for impl in ("reference", "d2lcnn"):  # the leaf layers in order (flatten aside)
        net = worker.build_net(impl, run.CASES[case])
        layers[impl] = [repr(m) for m in net.modules()
                        if not list(m.children()) and not isinstance(m, nn.Flatten)]
    assert layers["reference"] == layers["d2lcnn"]
