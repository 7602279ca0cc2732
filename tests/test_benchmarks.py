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


def test_the_recipe_runner_records_each_seed_and_the_chapter_keeps_them(tmp_path, capsys):
    import json

    import d2lcnn as d2l

    recipes = load("recipes")
    out = tmp_path / "runs" / "lenet_bn.json"
    argv = ["lenet_bn", "--source", "mini", "--valid", "100", "--subset", "300",
            "--lrs", "0.1", "0.5", "--sweep-subset", "200", "--epochs", "1",
            "--seeds", "0", "1", "--final", "--out", str(out), "--init", "kaiming"]
    assert recipes.main(argv) == 0
    result = json.loads(out.read_text())[-1]
    assert [s["seed"] for s in result["seeds"]] == [0, 1]
    assert all(0 <= s["test_acc"] <= 1 and 0 <= s["val_acc"] <= 1 for s in result["seeds"])
    assert result["selected_on"] == "validation" and result["lr"] in (0.1, 0.5)
    assert result["sweep"]["train_images"] == 200 and result["valid_images"] == 100
    assert result["maps"] == {"last_conv": [8, 8], "global_pool": None}  # LeNet at 28 px
    record = recipes.chapter_record(result)
    assert record["test_acc_min"] == min(s["test_acc"] for s in result["seeds"])
    (tmp_path / "lenet_bn.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert d2l.seeds_report("lenet_bn", tmp_path)["seeds"] == result["seeds"]
    report = capsys.readouterr().out
    assert "over 2 seeds" in report and "chosen on 100 validation images" in report
    history = d2l.History(device="cpu", settings={"data_source": "local"})
    history.add_epoch(0.5, 0.8, 0.79, 1e3, 9e2, 1.0)
    d2l.save_result("lenet_bn", history, directory=tmp_path)  # a chapter's one run
    kept = json.loads((tmp_path / "lenet_bn.json").read_text())
    assert kept["seeds"] == result["seeds"]  # not replaced by one run
    assert kept["chapter_run"]["history"]["test_acc"] == [0.79]
    assert d2l.load_results(tmp_path)["lenet_bn"]["chapter_run"]["history"].test_acc == [0.79]


def test_seed_curves_draw_every_seed_of_a_record_against_training_minutes(tmp_path, capsys):
    import json

    curves = load("seed_curves")
    seeds = [{"seed": s, "val_acc_per_epoch": [0.7 + s / 100, 0.9], "epoch_end_seconds": [30, 90]}
             for s in (0, 1)]
    (tmp_path / "lenet.json").write_text(json.dumps({"seeds": seeds, "epochs": 2}))
    (tmp_path / "nin.json").write_text(json.dumps({"name": "nin", "history": {}}))  # one run
    records = curves.load_records(["nin", "lenet", "vgg11"], tmp_path)
    assert list(records) == ["lenet"]  # only seeds records, in the order asked
    fig = curves.plot_seed_curves(records, {"lenet": 0.78})
    seed_lines, target = fig.axes[0].lines[:2], fig.axes[0].lines[2]
    assert [line.get_xydata().tolist() for line in seed_lines] == [
        [[0.5, 0.7], [1.5, 0.9]], [[0.5, 0.71], [1.5, 0.9]]]
    assert list(target.get_ydata()) == [0.78, 0.78]
    with pytest.raises(ValueError, match="no seeds records"):
        curves.plot_seed_curves({})
    assert curves.main(["no_such_net", "--out", str(tmp_path / "none.png")]) == 2
    assert "no seeds record among no_such_net" in capsys.readouterr().err
    assert not (tmp_path / "none.png").exists()
