"""TrainingPanel driven without a browser: clicks, runs, Stop, refusals, errors."""

import math
import threading

import pytest
import torch
from torch import nn

from d2lcnn import widgets
from d2lcnn.data import load_data_fashion_mnist
from d2lcnn.widgets import PanelRun, TrainingPanel, draw_runs

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
    """The real loader, recording each call's arguments."""

    def __init__(self):
        self.calls = []

    def __call__(self, batch_size, resize, **data):
        self.calls.append((batch_size, resize, data))
        return load_data_fashion_mnist(batch_size, resize, verbose=False, **data)


def test_constructing_and_displaying_trains_nothing(monkeypatch):
    built, loader = [], RecordingLoader()

    def make_net(settings):
        built.append(torch.empty(0).device.type)  # where make_net builds the net
        return small_cnn()

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs: shown.extend(objs))
    panel = TrainingPanel(make_net, defaults=FAST, load_data=loader)
    panel._ipython_display_()
    assert shown == [panel.widget]
    assert loader.calls == [] and panel.runs == [] and not panel.busy
    assert set(built) == {"meta"}  # only shape probes: no weights, no training
    assert panel.stop_button.disabled and not panel.train_button.disabled
    assert "parameters" in panel.info.value and "FLOPs per image" in panel.info.value
    assert "No runs yet" in panel.table.value


def test_train_click_records_a_run_with_the_chosen_settings():
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
    assert run.status == "completed", run.message + run.error
    assert len(run.history) == 2 and run.history.epochs == [1, 2]
    assert run.settings["batch_size"] == 64 and run.settings["resize"] == 20
    assert run.settings["activation"] == "sigmoid"
    assert run.settings["lr"] == pytest.approx(0.2)
    assert received[-1].resize == 20 and received[-1].num_epochs == 2
    assert loader.calls == [(64, 20, dict(subset=320, test_subset=100, source="mini",
                                          seed=0))]
    assert panel.net is not None and panel.net[1].__class__ is nn.Sigmoid
    assert len(run.points["test acc"][1]) == 2  # the live plot got each epoch
    assert "completed" in panel.table.value and "sigmoid" in panel.table.value
    assert "completed" in panel.status.value
    assert not panel.train_button.disabled and panel.stop_button.disabled


def test_native_resolution_reaches_the_loader_as_none_like_d2l():
    loader = RecordingLoader()
    panel = TrainingPanel(small_cnn, defaults=FAST, load_data=loader, background=False)
    panel.train_button.click()  # background=False: trains inside the click
    assert panel.resize.value == 28 and loader.calls[0][1] is None
    assert panel.runs[0].status == "completed" and len(panel.runs[0].history) == 1


def test_stop_during_a_run_ends_it_at_the_next_batch_and_keeps_it():
    panel = None
    forward_calls = []
    stop_after = 13  # 320 images / 32 = 10 batches per epoch: stop inside epoch 2

    def press_stop(module, inputs):
        if module.training:  # evaluation passes do not count
            forward_calls.append(1)
            if len(forward_calls) == stop_after:
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
    assert run.status == "stopped"
    assert len(forward_calls) == stop_after  # no batch ran after the click
    assert len(run.history) == 1  # the one finished epoch is kept
    assert "stopped" in panel.table.value
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
    assert panel.busy and panel.train_button.disabled
    assert not panel.stop_button.disabled
    assert panel.train() is None and "in progress" in panel.status.value
    panel.stop_button.click()
    assert "Stopping" in panel.status.value
    release.set()
    assert panel.wait(timeout=120)
    assert len(panel.runs) == 1 and panel.runs[0].status == "stopped"
    assert len(panel.runs[0].history) == 0


def test_resolution_is_bounded_below_by_the_nets_minimum_input_size():
    def needs_16(settings):  # three 2x2 poolings and a 3x3 conv: >= 16x16 inputs
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
    assert "does not fit" in panel.info.value
    panel.train_button.click()
    assert panel.runs == [] and loader.calls == [] and not panel.busy
    assert "Not started" in panel.status.value and "20x20" in panel.status.value
    assert "Linear" in panel.status.value  # the message names the layer
    panel.resize.value = 28
    panel.train_button.click()
    assert panel.wait(timeout=120) and panel.runs[0].status == "completed"


def test_an_exception_in_make_net_is_shown_and_the_panel_trains_again():
    panel = TrainingPanel(lambda s: small_cnn(activation=s.activation), defaults=FAST,
                          knobs={"activation": ["relu", "tanh"]})
    panel.knobs["activation"].value = "tanh"
    assert "make_net failed" in panel.info.value
    panel.train_button.click()
    assert panel.wait(timeout=60)
    failed = panel.runs[-1]
    assert failed.status == "error" and "make_net" in failed.message
    assert "ValueError" in failed.error and "'tanh'" in failed.error
    assert "ValueError" in panel.error.value and "tanh" in panel.error.value
    assert "error" in panel.table.value
    assert not panel.train_button.disabled and panel.stop_button.disabled

    panel.knobs["activation"].value = "relu"
    panel.train_button.click()
    assert panel.wait(timeout=120)
    assert [run.status for run in panel.runs] == ["error", "completed"]
    assert panel.error.value == ""


def test_an_exception_while_training_keeps_the_run_and_its_traceback():
    def broken_loader(batch_size, resize, **data):
        raise OSError("disk unplugged")

    panel = TrainingPanel(small_cnn, defaults=FAST, load_data=broken_loader)
    panel.train_button.click()
    assert panel.wait(timeout=60)
    run = panel.runs[-1]
    assert run.status == "error" and run.message.startswith("loading the data failed")
    assert "disk unplugged" in panel.error.value and "OSError" in panel.last_error


def test_time_an_epoch_measures_steps_and_shows_an_estimate():
    panel = TrainingPanel(small_cnn, defaults=FAST)
    assert "press <i>Time an epoch</i>" in panel.info.value
    panel.measure_button.click()
    assert panel.wait(timeout=60)
    assert "s per epoch of 320 images" in panel.info.value
    panel.resize.value = 40  # not measured for this setting yet
    assert "press <i>Time an epoch</i>" in panel.info.value


@pytest.mark.parametrize("lr", [0.3, 0.9, 1e-5, 20.0])
def test_the_default_lr_lies_on_the_sliders_grid_and_reads_back_exactly(lr):
    # the browser snaps a log slider to min + k * step: the default must survive that
    panel = TrainingPanel(small_cnn, defaults=dict(FAST, lr=lr))
    steps = (math.log10(lr) - panel.lr.min) / panel.lr.step
    assert steps == pytest.approx(round(steps), abs=1e-9)
    assert panel.lr.min <= math.log10(lr) <= panel.lr.max
    panel.lr.value = 10 ** (panel.lr.min + round(steps) * panel.lr.step)  # as snapped
    assert panel.settings().lr == lr


def test_bad_defaults_and_knobs_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="missing \\['lr'\\]"):
        TrainingPanel(small_cnn, defaults=dict(num_epochs=1, batch_size=8))
    with pytest.raises(ValueError, match="must be a number > 0"):
        TrainingPanel(small_cnn, defaults=dict(FAST, lr=0))
    with pytest.raises(ValueError, match="not one of the knob's choices"):
        TrainingPanel(small_cnn, defaults=dict(FAST, width_mult=0.3),
                      knobs={"width_mult": [0.5, 1.0]})


def test_earlier_runs_are_drawn_faded_behind_the_newest():
    runs = []
    for number, acc in ((1, 0.5), (2, 0.7)):
        run = PanelRun(number, dict(num_epochs=2), status="completed")
        for series in widgets.SERIES:
            run.add_point(series, 1, acc)
            run.add_point(series, 2, acc + 0.1)
        runs.append(run)
    loss_ax, acc_ax = draw_runs(runs).axes
    assert sorted(line.get_alpha() for line in acc_ax.lines) == [0.25, 0.25, 1.0, 1.0]
    assert "run #2: completed" in acc_ax.get_title()
    (_, only_newest) = draw_runs(runs, overlay=False).axes
    assert [line.get_alpha() for line in only_newest.lines] == [1.0, 1.0]
