"""The league (benchmarks/league.py): one budget for every chapter net, resumable."""

import json

import pytest
import torch
from torch import nn

from benchmarks import league
from benchmarks.league import BUDGETS, NETS, build, fit_classifier, run_league, training_flops


def test_every_league_net_takes_the_budgets_image_size():
    for name in NETS:
        net = build(name, BUDGETS["cpu"]["resize"]).eval()
        with torch.no_grad():
            assert net(torch.zeros(2, 1, 72, 72)).shape == (2, 10), name


def test_fit_classifier_replaces_only_a_dense_layer_that_does_not_fit():
    from d2lcnn import get_model

    net = get_model("lenet")
    first = net.classifier[0]
    assert fit_classifier(net, 28).classifier[0] is first  # already fits: untouched
    fit_classifier(net, 72)
    assert net.classifier[0].in_features == 16 * 16 * 16
    assert net.classifier[2].in_features == 120  # the later layers keep their shapes


@pytest.mark.parametrize("groups", [1, 4])
def test_training_flops_are_three_forwards_less_the_images_gradient(groups):
    from torch.utils.flop_counter import FlopCounterMode

    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=groups),
                        nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    first = 2 * 8 * 6 * 6 * 9  # 2 * C_out * H * W * C_in/groups * k * k
    forward = first + 2 * 8 * 4 * 4 * (8 // groups) * 9 + 2 * 128 * 10
    assert training_flops(net, 8) == 3 * forward - first
    counter = FlopCounterMode(display=False)
    with counter:
        net(torch.zeros(1, 1, 8, 8)).sum().backward()
    if groups == 1:  # PyTorch 2.14's own counter overcounts a grouped conv's backward
        assert training_flops(net, 8) == counter.get_total_flops()


@pytest.mark.slow
def test_a_finished_league_is_not_trained_again(tmp_path, monkeypatch):
    rows = run_league("smoke", nets=["lenet_bn"], directory=tmp_path)
    assert [(r["net"], r["seed"], r["status"]) for r in rows] == [("lenet_bn", 0,
                                                                   "completed")]
    assert rows[0]["parameters"] > 0 and rows[0]["training_flops"] > 0
    assert rows[0]["data_source"] == "mini" and rows[0]["cpu_model"]

    def must_not_run(*args):
        raise AssertionError("a recorded run was trained again")

    monkeypatch.setattr(league, "_run_child", must_not_run)
    assert run_league("smoke", nets=["lenet_bn"], directory=tmp_path) == rows


def test_an_interrupted_league_keeps_its_finished_runs(tmp_path, monkeypatch):
    def child(net, seed, budget, root, threads):
        if net == "nin":
            raise KeyboardInterrupt
        return dict(net=net, seed=seed, status="completed", test_acc=0.5,
                    wall_seconds=1.0)

    monkeypatch.setattr(league, "_run_child", child)
    with pytest.raises(KeyboardInterrupt):
        run_league("smoke", nets=["lenet", "nin"], directory=tmp_path)
    saved = json.loads((tmp_path / "league-smoke.json").read_text())
    assert [r["net"] for r in saved] == ["lenet"]


def test_bad_budget_or_net_is_named_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="unknown budget 'gpu'; choose one of cpu"):
        run_league("gpu", directory=tmp_path)
    with pytest.raises(ValueError, match=r"not league nets: \['resnet50'\]"):
        run_league("smoke", nets=["resnet50"], directory=tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_damaged_results_file_is_refused_not_replaced(tmp_path):
    path = tmp_path / "league-smoke.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a league results file"):
        run_league("smoke", nets=["lenet"], directory=tmp_path)
    assert path.read_text() == "{not json"
