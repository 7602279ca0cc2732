"""lr_sweep: one short run per learning rate on the validation split, read and plotted."""

from __future__ import annotations

import math

import pytest
from matplotlib.figure import Figure
from torch import nn

from d2lcnn import data, lr_sweep

pytestmark = pytest.mark.usefixtures("isolated_data")  # tests/conftest.py

LRS = [0.01, 0.1, 1e4]  # 1e4 diverges: two linear layers multiply its steps


def tiny_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.Linear(16, 10))


@pytest.fixture(scope="module")
def loaders():
    return data.load_data_fashion_mnist(100, source="mini", valid=500, subset=1000,
                                        verbose=False)


@pytest.fixture(scope="module")
def result(loaders):
    train_iter, valid_iter, _ = loaders
    return lr_sweep(tiny_net, train_iter, valid_iter, LRS, verbose=False)


def test_one_run_per_lr_and_the_best_is_the_argmax(result):
    assert result.lrs == tuple(LRS) and len(result.val_acc) == len(result.histories) == 3
    finished = [acc for acc in result.val_acc if not math.isnan(acc)]
    assert result.best_lr == result.lrs[result.val_acc.index(max(finished))]
    assert result.histories[0].test_acc[-1] == result.val_acc[0], "test acc: valid split"
    assert result.histories[0].settings["train_examples"] == 1000


def test_a_diverging_lr_is_nan_and_never_chosen(result):
    assert result.histories[2].status == "diverged" and math.isnan(result.val_acc[2])
    assert result.best_lr != 1e4
    text = str(result)
    assert text.splitlines()[2] == "lr 10000    diverged"
    assert text.endswith(f"chosen: lr {result.best_lr:g} (val acc "
                         f"{max(result.val_acc[:2]):.3f}), selected on the validation split")


def test_plot_is_validation_accuracy_on_a_log_lr_axis(result):
    ax = result.plot()
    assert isinstance(ax.figure, Figure) and ax.get_xscale() == "log"
    assert ax.get_xlabel() == "learning rate" and ax.get_ylabel() == "validation accuracy"
    assert any(text.get_text().startswith("chosen: lr") for text in ax.get_legend().texts)
    mine = Figure().add_subplot()
    assert result.plot(mine) is mine


def test_the_same_seed_gives_the_same_runs(loaders, result, capsys):
    train_iter, valid_iter, _ = loaders
    again = lr_sweep(tiny_net, train_iter, valid_iter, LRS[:1])
    assert again.val_acc[0] == result.val_acc[0]
    assert capsys.readouterr().out.startswith("lr 0.01: val acc ")


@pytest.mark.parametrize("make_net, lrs, valid, message", [
    (tiny_net(), [0.1], True, "make_net must be a function that builds a fresh net"),
    (tiny_net, [], True, "lrs is empty"),
    (tiny_net, [0.1, -1], True, "lr must be a finite number > 0"),
    (tiny_net, [0.1], False, "valid_iter must be a validation split, not the test set"),
])
def test_bad_arguments_are_refused_before_training(loaders, make_net, lrs, valid, message):
    train_iter, valid_iter, test_iter = loaders
    with pytest.raises((TypeError, ValueError), match=message):
        lr_sweep(make_net, train_iter, valid_iter if valid else test_iter, lrs)


def test_every_run_diverging_names_the_fix(loaders):
    train_iter, valid_iter, _ = loaders
    result = lr_sweep(tiny_net, train_iter, valid_iter, [1e4], verbose=False)
    assert str(result).endswith("chosen: none, every run diverged; try smaller lrs")
    with pytest.raises(ValueError, match="sweep smaller learning rates"):
        _ = result.best_lr
    assert result.plot().get_xscale() == "log"
