"""``python -m d2lcnn``: a smoke run records its files; bad arguments exit 2."""

import json
import re
import subprocess
import sys

import pytest
from torch import nn

from d2lcnn import cli
from d2lcnn.settings import register_model, settings_for


@register_model("tiny_cli_net")
def tiny_cli_net(num_classes=10, in_channels=1):
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3, stride=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 13 * 13, num_classes))


def run_cli(*args):
    return cli.main(["train", "tiny_cli_net", "--profile", "smoke", "--precision",
                     "fp32", *args])


def test_smoke_run_prints_d2ls_lines_and_writes_history_and_curve(tmp_path, capsys):
    code = run_cli("--epochs", "2", "--out", str(tmp_path))
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^loss \d+\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}$",
                     out, re.M)
    assert re.search(r"^\d+\.\d examples/sec on \S+$", out, re.M)
    record = json.loads((tmp_path / "tiny_cli_net.json").read_text())
    history = record["history"]
    assert record["name"] == "tiny_cli_net" and record["profile"] == "smoke"
    assert len(history["test_acc"]) == 2 and history["status"] == "completed"
    assert history["settings"]["model"] == "tiny_cli_net"
    assert history["settings"]["train_examples"] == 512  # the smoke default
    png = (tmp_path / "tiny_cli_net.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_flags_override_the_profile_and_name_the_record(tmp_path, capsys):
    assert run_cli("--lr", "0.05", "--batch-size", "64", "--subset", "128",
                   "--name", "custom", "--out", str(tmp_path)) == 0
    capsys.readouterr()
    settings = json.loads((tmp_path / "custom.json").read_text())["history"]["settings"]
    assert settings["lr"] == 0.05 and settings["batch_size"] == 64
    assert settings["train_examples"] == 128 and settings["num_epochs"] == 1


def test_the_cli_trains_what_the_chapter_trains(tmp_path, capsys):
    assert cli.main(["train", "lenet_modern", "--profile", "smoke", "--out",
                     str(tmp_path)]) == 0
    capsys.readouterr()
    settings = json.loads((tmp_path / "lenet_modern.json").read_text())["history"][
        "settings"]
    chapter = settings_for("lenet_modern", "smoke")
    assert (settings["lr"], settings["batch_size"], settings["num_epochs"]) == (
        chapter.lr, chapter.batch_size, chapter.num_epochs)


@pytest.mark.parametrize("args, message", [
    (["train", "no_such_net"], "unknown model 'no_such_net'; choose one of:"),
    (["train", "tiny_cli_net", "--epochs", "0"], "--epochs: must be > 0, got 0"),
    (["train", "tiny_cli_net", "--lr", "-1"], "--lr: must be > 0"),
    (["train", "tiny_cli_net", "--device", "tpu"], "--device: device 'tpu' is not"),
    (["train", "tiny_cli_net", "--batch-size", "x"], "expected a positive integer"),
    (["train", "tiny_cli_net", "--precision", "fp8"], "invalid choice: 'fp8'"),
    (["train", "tiny_cli_net", "--resize", "2"], "cannot take 2x2 images"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_arguments_exit_2_with_a_clear_message(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_model_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "no_such_net"])
    assert "tiny_cli_net" in capsys.readouterr().err


def test_help_lists_the_train_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0 and "train" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli_and_exits_2_on_a_missing_model():
    bad = subprocess.run([sys.executable, "-m", "d2lcnn", "train"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "MODEL" in bad.stderr
