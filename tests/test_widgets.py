"""TrainingPanel driven without a browser: clicks, runs, Stop, refusals, errors, the
static snapshot; and its controller and view without any widget."""

import base64
import math
import re
import threading

import numpy as np
import pytest
import torch
from torch import nn

from d2lcnn import train as train_module
from d2lcnn import widgets
from d2lcnn.data import load_data_fashion_mnist
from d2lcnn.history import History
from d2lcnn.panel import view
from d2lcnn.panel.controller import PanelController
from d2lcnn.panel.settings import make_settings
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


def fake_train_ch6(net, train_iter, test_iter, num_epochs, lr, device=None, *,
                   history, animator=None, **kw):
    """train_ch6's History contract without training: 5 points an epoch, then end."""
    assert animator is False  # the panel draws; train_ch6 must not
    history.start(lr=lr)
    for epoch in range(num_epochs):
        for k in range(1, 6):
            history.add_point(epoch + k / 5, {"train loss": 2.0 / (epoch + k),
                                              "train acc": 0.5 + 0.04 * k})
        history.add_epoch(1.0, 0.7, 0.6 + 0.1 * epoch, 1000.0, 900.0, 0.5)
    history.end("completed")
    return history


def no_data(batch_size, resize, **data):
    return [], []


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
    view_ref = bundle["application/vnd.jupyter.widget-view+json"]
    assert view_ref["model_id"] == panel.widget.model_id
    page = bundle["text/html"]  # the static copy for readers without a kernel
    assert "Training panel" in page and "No runs yet" in page
    assert bundle["text/plain"] == repr(panel) and len(repr(panel)) < 120
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
    assert run.history.points["test acc"][1] == run.history.test_acc  # one record
    assert not hasattr(run, "points")
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


@pytest.mark.parametrize("move", ["to_cpu", "guarded_cuda"])
def test_a_make_net_that_moves_its_net_is_probed_on_the_cpu(move):
    def make_net(settings):  # .to() cannot copy meta tensors: the probe falls back
        net = small_cnn()
        if move == "guarded_cuda":
            return net.cuda() if torch.cuda.is_available() else net.to("cpu")
        return net.to("cpu")

    panel = TrainingPanel(make_net, defaults=FAST)
    assert "make_net failed" not in panel.info.value
    assert "parameters" in panel.info.value and panel.resize.min == 6
    panel.resize.value = 4  # clamped up to the probed minimum
    assert panel.resize.value == 6 and panel.check() == ""


def test_an_exception_in_make_net_is_shown_and_the_panel_trains_again():
    panel = TrainingPanel(lambda s: small_cnn(activation=s.activation), defaults=FAST,
                          knobs={"activation": ["relu", "tanh"]})
    panel.knobs["activation"].value = "tanh"
    assert "make_net failed" in panel.info.value
    panel.train_button.click()
    assert panel.wait(timeout=60)
    failed = panel.runs[-1]
    assert failed.status == "failed" and "make_net" in failed.message
    assert "ValueError" in failed.error and "'tanh'" in failed.error
    assert "ValueError" in panel.error.value and "tanh" in panel.error.value
    assert "failed" in panel.table.value and "make_net" in panel.status.value
    assert not panel.train_button.disabled and panel.stop_button.disabled

    panel.knobs["activation"].value = "relu"
    panel.train_button.click()
    assert panel.wait(timeout=120)
    assert [run.status for run in panel.runs] == ["failed", "completed"]
    assert panel.error.value == "" and "'tanh'" in panel.runs[0].error  # kept


def test_an_exception_while_training_keeps_the_run_and_its_traceback():
    def broken_loader(batch_size, resize, **data):
        raise OSError("disk unplugged")

    panel = TrainingPanel(small_cnn, defaults=FAST, load_data=broken_loader)
    panel.train_button.click()
    assert panel.wait(timeout=60)
    run = panel.runs[-1]
    assert run.status == "failed" and run.message.startswith("loading the data failed")
    assert "disk unplugged" in panel.error.value and "OSError" in panel.last_error
    assert "disk unplugged" in panel.status.value


def test_a_failure_while_drawing_is_shown_and_the_run_still_completes(monkeypatch):
    monkeypatch.setattr(train_module, "train_ch6", fake_train_ch6)
    panel = TrainingPanel(small_cnn, defaults=FAST, load_data=no_data, min_interval=0)

    def broken_png(fig):
        raise RuntimeError("no PNG today")

    monkeypatch.setattr("d2lcnn.panel.ui.png", broken_png)
    panel.train_button.click()
    assert panel.wait(timeout=60)
    assert panel.runs[0].status == "completed" and len(panel.runs[0].history) == 1
    assert "no PNG today" in panel.error.value and "RuntimeError" in panel.last_error


def test_time_an_epoch_goes_through_train_ch6_and_shows_an_estimate(monkeypatch):
    calls = []

    def recording(net, train_iter, test_iter, num_epochs, lr, device=None, **kw):
        calls.append((len(train_iter), num_epochs, kw["animator"]))
        return real(net, train_iter, test_iter, num_epochs, lr, device, **kw)

    real = train_module.train_ch6
    monkeypatch.setattr(train_module, "train_ch6", recording)
    panel = TrainingPanel(small_cnn, defaults=FAST)
    assert "press <i>Time an epoch</i>" in panel.info.value
    panel.measure_button.click()
    assert panel.wait(timeout=60)
    assert calls == [(3, 2, False)]  # a few batches through the one training loop
    assert "s per epoch of 320 images" in panel.info.value, panel.error.value
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


@pytest.mark.parametrize("key, value, expected", [
    ("lr", math.inf, "finite number > 0"),
    ("lr", math.nan, "finite number > 0"),
    ("lr", -0.1, "finite number > 0"),
    ("lr", 0, "finite number > 0"),
    ("lr", "0.1", "finite number > 0"),
    ("lr", True, "finite number > 0"),
    ("num_epochs", 2.5, "positive whole number"),
    ("batch_size", 0, "positive whole number"),
    ("resize", "28", "positive whole number"),
])
def test_bad_defaults_are_refused_naming_the_key_the_value_and_what_works(
        key, value, expected):
    with pytest.raises(ValueError, match=expected) as caught:
        TrainingPanel(small_cnn, defaults=dict(FAST, **{key: value}))
    assert f"defaults[{key!r}]" in str(caught.value)
    assert f"got {value!r}" in str(caught.value)


def test_missing_defaults_and_bad_knobs_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="missing \\['lr'\\]"):
        TrainingPanel(small_cnn, defaults=dict(num_epochs=1, batch_size=8))
    with pytest.raises(ValueError, match="not one of the knob's choices"):
        TrainingPanel(small_cnn, defaults=dict(FAST, width_mult=0.3),
                      knobs={"width_mult": [0.5, 1.0]})
    with pytest.raises(TypeError, match="make_net must be a function"):
        TrainingPanel("alexnet", defaults=FAST)


def test_numpy_scalars_are_accepted_as_python_numbers():
    defaults = dict(FAST, lr=np.float32(0.1), num_epochs=np.int64(2),
                    batch_size=np.int32(32), resize=np.int64(28), subset=np.int64(320))
    panel = TrainingPanel(small_cnn, defaults=defaults, batch_sizes=np.array([16, 32]),
                          max_epochs=np.int64(5), max_resize=np.int64(40),
                          background=False, load_data=RecordingLoader())
    assert (panel.num_epochs.max, panel.resize.max) == (5, 40)
    s = panel.settings()
    assert (s.lr, s.num_epochs, s.batch_size, s.resize) == (0.1, 2, 32, 28)
    assert type(s.subset) is int and type(s.num_epochs) is int
    panel.num_epochs.value = 1
    panel.train()
    assert panel.runs[0].status == "completed"


def test_earlier_runs_are_drawn_faded_behind_the_newest():
    runs = []
    for number, acc in ((1, 0.5), (2, 0.7)):
        run = PanelRun(number, dict(num_epochs=2))
        for x in (1, 2):
            run.history.add_point(x, dict.fromkeys(widgets.SERIES, acc + x / 10))
        run.history.end("completed")
        runs.append(run)
    loss_ax, acc_ax = draw_runs(runs).axes
    assert sorted(line.get_alpha() for line in acc_ax.lines) == [0.25, 0.25, 1.0, 1.0]
    assert "run #2: completed" in acc_ax.get_title()
    (_, only_newest) = draw_runs(runs, overlay=False).axes
    assert [line.get_alpha() for line in only_newest.lines] == [1.0, 1.0]
    newest_acc = list(only_newest.lines[1].get_ydata())
    assert newest_acc == pytest.approx([0.8, 0.9])  # read from the History


def test_a_one_epoch_runs_test_accuracy_is_drawn_with_a_marker():
    run = PanelRun(1, dict(num_epochs=1))
    run.history.add_point(0.5, {"train loss": 1.0, "train acc": 0.6})
    run.history.add_point(1.0, {"train loss": 0.8, "train acc": 0.7})
    run.history.add_epoch(0.8, 0.7, 0.66, 1e3, 1e3, 1.0)
    _, acc_ax = draw_runs([run]).axes
    markers = {line.get_label(): line.get_marker() for line in acc_ax.lines}
    assert markers == {"train acc": "None", "test acc": "o"}


def test_the_saved_output_carries_a_snapshot_updated_when_a_run_ends(monkeypatch):
    monkeypatch.setattr(train_module, "train_ch6", fake_train_ch6)
    shown = Shown(monkeypatch)
    panel = TrainingPanel(small_cnn, defaults=dict(FAST, num_epochs=2),
                          load_data=no_data, title="LeNet panel")
    panel._ipython_display_()
    assert shown.updates == []
    panel.train_button.click()
    assert panel.wait(timeout=60)

    (latest,) = shown.updates  # one update, when the run ended
    page = latest["text/html"]
    assert "LeNet panel" in page and "epochs <b>2</b>" in page  # the controls, static
    (encoded,) = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert base64.b64decode(encoded) == panel.plot.value  # the last curves drawn
    assert "Run #1 completed" in page and "test acc 0.700" in page  # the run's numbers
    assert "<td" in page and "0.700" in page  # the runs table
    assert latest["text/plain"].startswith("TrainingPanel(runs=1")
    assert "application/vnd.jupyter.widget-view+json" in latest


def test_the_controller_runs_without_widgets_and_follows_the_history(monkeypatch):
    monkeypatch.setattr(train_module, "train_ch6", fake_train_ch6)
    events, statuses = [], []
    c = PanelController(small_cnn, dict(FAST, num_epochs=2), load_data=no_data,
                        background=False)

    def listener(event):
        events.append(event)
        statuses.append(c.status[0])

    c.subscribe(listener)
    run = c.train(make_settings(c.defaults))
    assert run.status == "completed" and isinstance(run.history, History)
    assert events.count("point") == 12  # 5 points + 1 epoch, twice: each one shown
    assert events[-2:] == ["end", "busy"]
    assert ("Run #1 training: 1.20 of 2 epochs done, loss 1.000, train acc 0.540, "
            "test acc 0.600") in statuses
    text = f"Run #1 completed after {run.wall_time:.1f} s: test acc 0.700"
    assert c.status == (text, "completed")


def test_the_view_is_plain_functions_of_the_runs():
    run = PanelRun(3, dict(batch_size=32, num_epochs=1, resize=28, lr=0.1, pool="max"))
    run.history.add_epoch(0.51, 0.8, 0.75, 1234.0, 1000.0, 2.0)
    run.history.end("diverged", "the loss became nan")
    table = view.runs_table_html([run], ["pool"])
    assert "<th" in table and ">max<" in table and ">0.750<" in table
    assert ">1234<" in table and "color:firebrick" in table and "nan" in table
    assert view.status_html("<b>", "completed") == (
        "<span style='color:green'>&lt;b&gt;</span>")
    assert "does not fit" in view.info_html(20, 1, "resolution 20x20 does not fit")


def test_a_notebooks_own_run_is_shown_from_the_start_and_in_the_snapshot(monkeypatch):
    monkeypatch.setattr(train_module, "train_ch6", fake_train_ch6)
    history = fake_train_ch6(None, [], [], 3, 0.05, history=History(), animator=False)
    history.settings.update(batch_size=128, num_epochs=3, resize=None)
    panel = TrainingPanel(small_cnn, defaults=FAST, load_data=no_data, history=history)
    (run,) = panel.runs
    assert run.history is history and run.status == "completed"
    assert (run.settings["batch_size"], run.settings["lr"]) == (128, 0.05)
    assert run.settings["resize"] == 28  # not recorded: the panel's own setting
    assert ">0.800<" in panel.table.value and ">128<" in panel.table.value
    assert "0.800" in panel.snapshot_html()
    panel.train_button.click()
    assert panel.wait(timeout=60)
    assert [r.number for r in panel.runs] == [1, 2]
    with pytest.raises(TypeError, match="History that train_ch6 returned"):
        TrainingPanel(small_cnn, defaults=FAST, history={"test acc": [0.8]})


def test_timing_after_a_stopped_run_is_not_ended_by_the_old_stop():
    panel = TrainingPanel(small_cnn, defaults=FAST)
    panel.controller._stop_event.set()  # as a Stop during an earlier run leaves it
    panel.measure_button.click()
    assert panel.wait(timeout=60)
    assert "s per epoch of 320 images" in panel.info.value, panel.error.value
    assert "Timing a few steps" not in panel.status.value


def test_a_stop_click_while_a_run_ends_changes_nothing():
    panel = TrainingPanel(small_cnn, defaults=FAST)
    panel.controller.subscribe(lambda event: event == "end" and panel.stop())
    panel.train_button.click()
    assert panel.wait(timeout=120)
    (run,) = panel.runs
    assert run.status == "completed" and "Stopping" not in panel.status.value
    assert not panel.controller._stop_event.is_set()
