"""TrainingPanel driven without a browser, through its public methods and widgets:
settings, runs on the bundled mini set, Stop, refusals, failures kept, the snapshot."""

import base64
import math
import re
import threading

import numpy as np
import pytest
import torch
from torch import nn

from d2lcnn import widgets
from d2lcnn.data import load_data_fashion_mnist
from d2lcnn.settings import Settings
from d2lcnn.widgets import TrainingPanel

FAST = dict(lr=0.3, num_epochs=1, batch_size=32, subset=320, test_subset=100,
            source="mini", seed=0)


def small_cnn(settings=None, activation="relu"):
    """A 2-conv net that takes any input >= 6x6 (adaptive pooling before the Linear)."""
    if activation not in ("relu", "sigmoid"):
        raise ValueError(f"activation must be 'relu' or 'sigmoid', got {activation!r}")
    act = nn.ReLU() if activation == "relu" else nn.Sigmoid()
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), act, nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, 10),
    )


class RecordingLoader:
    """The real loader (the bundled mini set), recording each call's arguments."""

    def __init__(self):
        self.calls = []

    def __call__(self, batch_size, resize, **data):
        self.calls.append((batch_size, resize, data))
        return load_data_fashion_mnist(batch_size, resize, verbose=False, **data)


class Shown:
    """IPython's display, recorded: what the panel sends, and each later update."""

    def __init__(self, monkeypatch):
        self.bundles, self.updates = [], []
        monkeypatch.setattr("IPython.display.display", self.display)

    def display(self, obj, raw=False, display_id=None):
        self.bundles.append((obj, raw, display_id))
        return self

    def update(self, obj, raw=False):
        self.updates.append(obj)


def test_constructing_and_displaying_trains_nothing(monkeypatch):
    built, loader = [], RecordingLoader()

    def make_net(settings):
        built.append(torch.empty(0).device.type)  # where make_net builds the net
        return small_cnn()

    shown = Shown(monkeypatch)
    panel = TrainingPanel(make_net, defaults=FAST, load_data=loader)
    panel._ipython_display_()
    ((bundle, raw, display_id),) = shown.bundles
    assert raw and display_id is True
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == \
        panel.widget.model_id
    page = bundle["text/html"]  # the static copy for readers without a kernel
    assert "Training panel" in page and "No runs yet" in page and "<img" not in page
    assert bundle["text/plain"] == repr(panel) and len(repr(panel)) < 120
    assert loader.calls == [] and panel.runs == [] and not panel.busy
    assert set(built) == {"meta"}  # only shape probes: no weights, no training
    assert panel.stop_button.disabled and not panel.train_button.disabled
    assert "parameters" in panel.info.value and "FLOPs per image" in panel.info.value


def test_train_on_the_mini_set_records_a_run_with_the_chosen_settings():
    received, loader = [], RecordingLoader()

    def make_net(settings):
        received.append(settings)
        return small_cnn(activation=settings.activation)

    panel = TrainingPanel(make_net, defaults=FAST, load_data=loader,
                          knobs={"activation": ["relu", "sigmoid"]})
    panel.batch_size.value = 64
    panel.num_epochs.value = 2
    panel.resize.value = 20
    panel.lr.value = 0.2
    panel.knobs["activation"].value = "sigmoid"
    panel.train_button.click()
    assert panel.wait(timeout=120)

    (run,) = panel.runs
    assert run.history.status == "completed", run.history.message + run.error
    assert len(run.history) == 2
    assert run.settings["batch_size"] == 64 and run.settings["resize"] == 20
    assert run.settings["activation"] == "sigmoid"
    assert run.settings["lr"] == pytest.approx(0.2)
    assert received[-1].resize == 20 and received[-1].num_epochs == 2
    assert loader.calls == [(64, 20, dict(subset=320, test_subset=100, source="mini",
                                          seed=0))]
    assert panel.net is not None and panel.net[1].__class__ is nn.Sigmoid
    assert "completed" in panel.table.value and "sigmoid" in panel.table.value
    assert "Run #1 completed" in panel.status.value
    assert bytes(panel.plot.value)[:4] == b"\x89PNG"  # the curve, drawn from the History
    assert panel.error.value == "" and panel.last_error == ""
    assert not panel.train_button.disabled and panel.stop_button.disabled


def test_the_real_loader_gets_the_native_resolution_as_none_like_d2l(monkeypatch):
    calls = []

    def loader(batch_size, resize, **data):
        calls.append((batch_size, resize, data))
        return load_data_fashion_mnist(batch_size, resize, **data)

    monkeypatch.setattr(widgets, "load_data_fashion_mnist", loader)
    panel = TrainingPanel(small_cnn, defaults=FAST, background=False)
    run = panel.train()  # background=False: trains inside the call
    assert panel.resize.value == 28 and calls[0][1] is None
    assert calls[0][2]["source"] == "mini" and calls[0][2]["verbose"] is False
    assert run.history.status == "completed" and len(run.history) == 1


def test_a_chapters_settings_are_defaults_and_the_recipe_reaches_train_ch6(monkeypatch):
    seen = {}
    real = widgets.train_ch6

    def recording(net, train_iter, test_iter, num_epochs, lr, device=None, **kw):
        seen.update(kw, num_epochs=num_epochs, lr=lr)
        return real(net, train_iter, test_iter, num_epochs, lr, device, **kw)

    monkeypatch.setattr(widgets, "train_ch6", recording)
    hp = Settings(lr=0.1, num_epochs=1, batch_size=64, subset=128, test_subset=100,
                  source="mini", recipe=dict(momentum=0.9))
    panel = TrainingPanel(small_cnn, defaults=hp, background=False)
    assert panel.resize.value == 28  # Settings' resize=None: the images' own size
    run = panel.train()
    assert run.history.status == "completed", run.error
    assert seen["recipe"] == dict(momentum=0.9) and seen["animator"] is False
    assert seen["precision"] == "fp32" and seen["verbose"] is False


def test_stop_during_a_run_ends_it_and_keeps_the_finished_epochs():
    panel = None
    batches = []

    def press_stop(module, inputs):
        if module.training:
            batches.append(1)
            if len(batches) == 13:  # 10 batches an epoch: stop inside epoch 2
                panel.stop_button.click()  # from the worker, as a click would arrive

    def make_net(settings):
        net = small_cnn()
        net.register_forward_pre_hook(press_stop)
        return net

    panel = TrainingPanel(make_net, defaults=FAST)
    panel.num_epochs.value = 3
    panel.train_button.click()
    assert panel.wait(timeout=120)

    (run,) = panel.runs
    assert run.history.status == "stopped"
    assert len(run.history) == 1 and 1 < run.history.last_x < 2  # epoch 1 kept
    assert "stopped" in panel.table.value
    assert "panel.runs[0].history" in panel.status.value
    assert not panel.train_button.disabled and panel.stop_button.disabled


def test_stop_is_handled_while_the_worker_is_busy():
    entered, release = threading.Event(), threading.Event()

    def slow_make_net(settings):
        if torch.empty(0).device.type != "meta":  # the real build, not a shape probe
            entered.set()
            release.wait(timeout=60)  # the worker is busy; the main thread is not
        return small_cnn()

    panel = TrainingPanel(slow_make_net, defaults=FAST)
    panel.train_button.click()
    assert entered.wait(timeout=60)
    assert panel.busy and panel.train_button.disabled and not panel.stop_button.disabled
    assert panel.train() is None and "in progress" in panel.status.value
    panel.stop_button.click()
    assert "Stopping" in panel.status.value
    release.set()
    assert panel.wait(timeout=120)
    assert len(panel.runs) == 1 and panel.runs[0].history.status == "stopped"
    assert len(panel.runs[0].history) == 0


def test_resolution_is_bounded_below_by_the_nets_minimum_input_size():
    def needs_16(settings):  # three 2x2 poolings and a 2x2 conv: >= 16x16 inputs
        return nn.Sequential(
            nn.MaxPool2d(2), nn.MaxPool2d(2), nn.MaxPool2d(2), nn.Conv2d(1, 2, 2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 10),
        )

    panel = TrainingPanel(needs_16, defaults=FAST)
    assert panel.resize.min == 16
    panel.resize.value = 8
    assert panel.resize.value == 16


def test_a_resolution_the_net_cannot_take_is_refused_before_training():
    loader = RecordingLoader()

    def lenet_like(settings):  # Linear sized for 28x28 inputs, whatever the setting
        return nn.Sequential(nn.Conv2d(1, 2, 5), nn.Flatten(), nn.Linear(1152, 10))

    panel = TrainingPanel(lenet_like, defaults=FAST, load_data=loader)
    panel.resize.value = 20
    assert "does not fit" in panel.info.value and "does not fit" in panel.check()
    panel.train_button.click()
    assert panel.runs == [] and loader.calls == [] and not panel.busy
    assert "Not started" in panel.status.value and "20x20" in panel.status.value
    assert "Linear" in panel.status.value  # the message names the layer
    panel.resize.value = 28
    panel.train_button.click()
    assert panel.wait(timeout=120) and panel.runs[0].history.status == "completed"


def test_a_make_net_that_moves_its_net_is_probed_on_the_cpu():
    panel = TrainingPanel(lambda s: small_cnn().to("cpu"), defaults=FAST)
    assert "make_net failed" not in panel.info.value and "parameters" in panel.info.value
    assert panel.resize.min == 6
    panel.resize.value = 4  # clamped up to the probed minimum
    assert panel.resize.value == 6 and panel.check() == ""


def test_an_exception_in_make_net_is_shown_kept_and_the_panel_trains_again():
    panel = TrainingPanel(lambda s: small_cnn(activation=s.activation), defaults=FAST,
                          knobs={"activation": ["relu", "tanh"]})
    panel.knobs["activation"].value = "tanh"
    assert "make_net failed" in panel.info.value
    panel.train_button.click()
    assert panel.wait(timeout=60)
    failed = panel.runs[-1]
    assert failed.history.status == "failed" and "make_net" in failed.history.message
    assert "ValueError" in failed.error and "'tanh'" in failed.error
    assert "ValueError" in panel.error.value and "tanh" in panel.error.value
    assert "failed" in panel.table.value and "make_net" in panel.status.value
    assert not panel.train_button.disabled and panel.stop_button.disabled

    panel.knobs["activation"].value = "relu"
    panel.train_button.click()
    assert panel.wait(timeout=120)
    assert [run.history.status for run in panel.runs] == ["failed", "completed"]
    assert panel.error.value == "" and "'tanh'" in panel.runs[0].error  # kept
    assert "'tanh'" in panel.last_error


def test_an_exception_while_loading_keeps_the_run_and_its_traceback():
    def broken_loader(batch_size, resize, **data):
        raise OSError("disk unplugged")

    panel = TrainingPanel(small_cnn, defaults=FAST, load_data=broken_loader)
    panel.train_button.click()
    assert panel.wait(timeout=60)
    run = panel.runs[-1]
    assert run.history.status == "failed"
    assert run.history.message.startswith("loading the data failed")
    assert "disk unplugged" in panel.error.value and "OSError" in panel.last_error
    assert "disk unplugged" in panel.status.value


def test_a_failure_while_drawing_is_shown_and_the_run_still_completes(monkeypatch):
    def broken_png(fig):
        raise RuntimeError("no PNG today")

    monkeypatch.setattr(widgets, "figure_png", broken_png)
    panel = TrainingPanel(small_cnn, defaults=FAST, min_interval=0)
    panel.train_button.click()
    assert panel.wait(timeout=60)
    run = panel.runs[0]
    assert run.history.status == "completed" and len(run.history) == 1
    assert "no PNG today" in panel.error.value and "RuntimeError" in panel.last_error


@pytest.mark.parametrize("lr", [0.3, 0.9, 1e-5, 20.0])
def test_the_default_lr_lies_on_the_sliders_grid_and_reads_back_exactly(lr):
    # the browser snaps a log slider to min + k * step: the default must survive that
    panel = TrainingPanel(small_cnn, defaults=dict(FAST, lr=lr))
    steps = (math.log10(lr) - panel.lr.min) / panel.lr.step
    assert steps == pytest.approx(round(steps), abs=1e-9)
    assert panel.lr.min <= math.log10(lr) <= panel.lr.max
    panel.lr.value = 10 ** (panel.lr.min + round(steps) * panel.lr.step)  # as snapped
    assert panel.settings().lr == lr


@pytest.mark.parametrize("key, value, expected", [
    ("lr", math.inf, "finite number > 0"),
    ("lr", -0.1, "finite number > 0"),
    ("lr", "0.1", "must be a number"),
    ("num_epochs", 2.5, "positive integer"),
    ("batch_size", 0, "positive integer"),
    ("resize", "28", "positive integer"),
])
def test_bad_defaults_are_refused_naming_the_key_and_the_value(key, value, expected):
    with pytest.raises(ValueError, match=expected) as caught:
        TrainingPanel(small_cnn, defaults=dict(FAST, **{key: value}))
    assert f"defaults[{key!r}]" in str(caught.value) and repr(value) in str(caught.value)


def test_missing_defaults_and_bad_knobs_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="missing \\['lr'\\]"):
        TrainingPanel(small_cnn, defaults=dict(num_epochs=1, batch_size=8))
    with pytest.raises(ValueError, match="not one of the knob's choices"):
        TrainingPanel(small_cnn, defaults=dict(FAST, width_mult=0.3),
                      knobs={"width_mult": [0.5, 1.0]})
    with pytest.raises(TypeError, match="make_net must be a function"):
        TrainingPanel("alexnet", defaults=FAST)
    with pytest.raises(TypeError, match="defaults must be a dict"):
        TrainingPanel(small_cnn, defaults=0.1)


def test_numpy_scalars_are_accepted_as_python_numbers():
    defaults = dict(FAST, lr=np.float32(0.1), num_epochs=np.int64(2),
                    batch_size=np.int32(32), resize=np.int64(28), subset=np.int64(320))
    panel = TrainingPanel(small_cnn, defaults=defaults, batch_sizes=np.array([16, 32]),
                          max_epochs=np.int64(5), max_resize=np.int64(40),
                          knobs={"width": np.array([4, 8])})
    assert (panel.num_epochs.max, panel.resize.max) == (5, 40)
    s = panel.settings()
    assert (s.lr, s.num_epochs, s.batch_size, s.resize, s.width) == (0.1, 2, 32, 28, 4)
    assert type(s.subset) is int and type(s.num_epochs) is int and type(s.width) is int


def test_the_saved_output_carries_a_snapshot_updated_when_a_run_ends(monkeypatch):
    shown = Shown(monkeypatch)
    panel = TrainingPanel(small_cnn, defaults=FAST, knobs={"width": [4, 8]},
                          title="LeNet panel")
    panel._ipython_display_()
    panel.num_epochs.value = 2
    assert shown.updates == []
    panel.train_button.click()
    assert panel.wait(timeout=60)

    (latest,) = shown.updates  # one update, when the run ended
    page = latest["text/html"]
    assert page == panel.snapshot_html()
    assert "LeNet panel" in page and "epochs <b>2</b>" in page and "width <b>4</b>" in page
    (encoded,) = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert base64.b64decode(encoded) == bytes(panel.plot.value)  # the last curve drawn
    run = panel.runs[0]
    assert f"test acc {run.history.test_acc[-1]:.3f}" in page  # the status line
    assert f">{run.history.test_acc[-1]:.3f}<" in page  # the runs table
    assert latest["text/plain"].startswith("TrainingPanel(runs=1")
    assert panel.error.value == ""
    assert "application/vnd.jupyter.widget-view+json" in latest
