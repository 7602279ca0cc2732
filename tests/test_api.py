"""``import d2lcnn as d2l`` must run code written for d2l 0.17's PyTorch helpers."""

import inspect

import pytest
import torch
from torch import nn

import d2lcnn as d2l
from d2lcnn import utils

# d2l 0.17 (PyTorch) signatures: positional parameters in order, with their defaults.
D2L_SIGNATURES = {
    "load_data_fashion_mnist": [("batch_size",), ("resize", None)],
    "train_ch6": [("net",), ("train_iter",), ("test_iter",), ("num_epochs",), ("lr",),
                  ("device",)],
    "evaluate_accuracy_gpu": [("net",), ("data_iter",), ("device", None)],
    "accuracy": [("y_hat",), ("y",)],
    "try_gpu": [("i", 0)],
    "try_all_gpus": [],
    "get_fashion_mnist_labels": [("labels",)],
    "show_images": [("imgs",), ("num_rows",), ("num_cols",), ("titles", None),
                    ("scale", 1.5)],
    "set_figsize": [("figsize", (3.5, 2.5))],
    "set_axes": [("axes",), ("xlabel",), ("ylabel",), ("xlim",), ("ylim",), ("xscale",),
                 ("yscale",), ("legend",)],
    "use_svg_display": [],
    "plot": [("X",), ("Y", None), ("xlabel", None), ("ylabel", None), ("legend", None),
             ("xlim", None), ("ylim", None), ("xscale", "linear"), ("yscale", "linear"),
             ("fmts", ("-", "m--", "g-.", "r:")), ("figsize", (3.5, 2.5)), ("axes", None)],
    "get_dataloader_workers": [],
    "Animator": [("xlabel", None), ("ylabel", None), ("legend", None), ("xlim", None),
                 ("ylim", None), ("xscale", "linear"), ("yscale", "linear"),
                 ("fmts", ("-", "m--", "g-.", "r:")), ("nrows", 1), ("ncols", 1),
                 ("figsize", (3.5, 2.5))],
    "Accumulator": [("n",)],
    "Timer": [],
}


def _positional(obj):
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in inspect.signature(obj).parameters.values() if p.kind in kinds]


@pytest.mark.parametrize("name", sorted(D2L_SIGNATURES))
def test_d2l_name_exists_with_d2l_positional_signature(name):
    ours = getattr(d2l, name)
    expected = D2L_SIGNATURES[name]
    if name == "Accumulator":  # Accumulator(n) or Accumulator("loss", "correct", "n")
        assert d2l.Accumulator(3).data == [0.0, 0.0, 0.0]
        return
    params = _positional(ours)
    assert [p.name for p in params[: len(expected)]] == [e[0] for e in expected]
    for param, spec in zip(params, expected):
        if len(spec) == 2:
            assert param.default == spec[1], f"{name}({param.name}) default"
    # anything we add beyond d2l's positional parameters is optional
    for param in params[len(expected):]:
        assert param.default is not inspect.Parameter.empty, f"{name}: {param.name}"


def test_accuracy_is_a_count_like_d2l():
    y_hat = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    y = torch.tensor([1, 1, 1])
    assert d2l.accuracy(y_hat, y) == 2.0
    assert isinstance(d2l.accuracy(y_hat, y), float)


def test_evaluate_accuracy_gpu_is_a_ratio_matching_plain_torch():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    batches = [(torch.randn(5, 1, 2, 2), torch.randint(0, 3, (5,))) for _ in range(3)]
    with torch.no_grad():
        expected = sum((net(X).argmax(1) == y).sum().item() for X, y in batches) / 15
    assert d2l.evaluate_accuracy_gpu(net, batches) == pytest.approx(expected)


def test_accumulator_indexes_resets_and_prints_named_fields():
    metric = d2l.Accumulator(3)
    metric.add(1.5, 2, 4)
    metric.add(0.5, 1, 4)
    assert (metric[0], metric[1], metric[2]) == (2.0, 3.0, 8.0)
    named = d2l.Accumulator("loss", "correct", "n")
    named.add(1, 2, 3)
    assert named["correct"] == 2.0 and repr(named) == "Accumulator(loss=1, correct=2, n=3)"
    metric.reset()
    assert metric.data == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="3 slots"):
        metric.add(1, 2)


def test_timer_start_stop_avg_sum_cumsum():
    timer = d2l.Timer()
    first = timer.stop()
    timer.start()
    second = timer.stop()
    assert timer.times == [first, second]
    assert timer.sum() == pytest.approx(first + second)
    assert timer.avg() == pytest.approx((first + second) / 2)
    assert timer.cumsum() == pytest.approx([first, first + second])


def test_try_gpu_and_try_all_gpus_fall_back_to_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert d2l.try_gpu() == torch.device("cpu")
    assert d2l.try_gpu(3) == torch.device("cpu")
    assert d2l.try_all_gpus() == [torch.device("cpu")]


def test_try_gpu_finds_cuda_and_apple_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert d2l.try_gpu(1) == torch.device("cuda:1")
    assert d2l.try_all_gpus() == [torch.device("cuda:0"), torch.device("cuda:1")]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert d2l.try_gpu() == torch.device("mps")


def test_dataloader_workers_never_oversubscribe_a_small_machine(monkeypatch):
    monkeypatch.setattr(utils.os, "cpu_count", lambda: 2)
    assert d2l.get_dataloader_workers() == 1
    monkeypatch.setattr(utils.os, "cpu_count", lambda: 64)
    assert d2l.get_dataloader_workers() == 4


def test_fashion_mnist_labels_are_d2ls_ten_names():
    assert d2l.get_fashion_mnist_labels(range(10)) == [
        "t-shirt", "trouser", "pullover", "dress", "coat",
        "sandal", "shirt", "sneaker", "bag", "ankle boot",
    ]


def test_dir_lists_the_lazy_and_the_book_names():
    names = dir(d2l)
    assert {"corr2d", "Trainer", "draw_net", "load_data_fashion_mnist"} <= set(names)


def test_the_books_lenet_path_runs_functions_in_at_most_8_files():
    """The thin-package promise (issue 24): d2l's two calls touch few d2lcnn files."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "tools" / "trace_path.py"
    spec = importlib.util.spec_from_file_location("trace_path", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    files = tool.trace(source="mini", subset=256)
    assert {"data.py", "train.py"} <= set(files) and len(files) <= 8, sorted(files)
