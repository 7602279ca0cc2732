"""train_ch6: d2l's behaviour, its defects fixed, and clean ends to faulty runs."""

import math
import os
import re
import signal

import pytest
import torch
from torch import nn

import d2lcnn as d2l
from d2lcnn.history import History


def batches(n_batches, batch_size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.rand(n_batches * batch_size, 1, 8, 8, generator=generator)
    y = torch.randint(0, 10, (n_batches * batch_size,), generator=generator)
    return [(X[i:i + batch_size], y[i:i + batch_size])
            for i in range(0, len(X), batch_size)]


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))


def run(net, train, test, num_epochs=1, lr=0.1, **kw):
    kw.setdefault("animator", False)
    return d2l.train_ch6(net, train, test, num_epochs, lr, "cpu", **kw)


@pytest.mark.parametrize("n_batches", [1, 2, 3, 4])
def test_fewer_than_five_batches_train_and_return_a_history(n_batches):
    # d2l divides by num_batches // 5 and fails with ZeroDivisionError here
    history = run(small_net(), batches(n_batches), batches(1, seed=1), num_epochs=2)
    assert isinstance(history, History)
    assert history.status == "completed" and len(history) == 2
    assert all(0.0 <= acc <= 1.0 for acc in history.test_acc)


def test_prints_d2ls_lines(capsys):
    run(small_net(), batches(3), batches(1))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "training on cpu"
    assert re.fullmatch(r"loss \d+\.\d{3}, train acc \d\.\d{3}, test acc \d\.\d{3}", out[-2])
    assert re.fullmatch(r"\d+\.\d examples/sec on cpu", out[-1])


def test_reinitialises_linear_and_conv_weights_with_xavier_like_d2l():
    net = small_net()
    for p in net.parameters():
        nn.init.constant_(p, 0.0)
    run(net, batches(1), batches(1), lr=1e-9)
    # Xavier-uniform bound for Linear(144, 10): sqrt(6 / (144 + 10))
    weight = net[3].weight
    assert weight.abs().max() <= (6 / 154) ** 0.5 and weight.std() > 0.05
    assert torch.all(net[3].bias.abs() < 1e-6)  # biases are left alone, as in d2l


def test_plain_sgd_step_matches_a_manual_update():
    train = batches(1)
    net, reference = small_net(), small_net()
    run(net, train, train, lr=0.5, init=None)
    X, y = train[0]
    loss = nn.CrossEntropyLoss()(reference(X), y)
    loss.backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.5 * p.grad
    for ours, theirs in zip(net.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs)


def test_history_records_each_epoch_and_settings():
    history = run(small_net(), batches(4), batches(2), num_epochs=3)
    assert len(history.train_loss) == len(history.examples_per_sec) == 3
    assert history.settings["num_epochs"] == 3 and history.settings["lr"] == 0.1
    assert all(v > 0 for v in history.examples_per_sec_e2e)


def test_loss_falls_on_a_learnable_problem():
    torch.manual_seed(0)
    X = torch.rand(256, 1, 8, 8)
    y = (X.mean(dim=(1, 2, 3)) > 0.5).long()  # brightness decides the class
    data = [(X[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
    history = run(small_net(), data, data, num_epochs=8, lr=0.5)
    assert history.train_loss[-1] < 0.7 * history.train_loss[0]


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf")])
def test_rejects_a_learning_rate_that_cannot_train(lr):
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        run(small_net(), batches(1), batches(1), lr=lr)


@pytest.mark.parametrize("num_epochs", [0, -1, 2.5, True])
def test_rejects_bad_epoch_counts(num_epochs):
    with pytest.raises(ValueError, match="num_epochs must be a positive integer"):
        run(small_net(), batches(1), batches(1), num_epochs=num_epochs)


def test_divergence_stops_at_once_keeping_the_history(capsys):
    history = run(small_net(), batches(4), batches(1), num_epochs=3, lr=1e30)
    assert history.status == "diverged"
    assert len(history) < 3
    out = capsys.readouterr().out
    assert "learning rate 1e+30 is probably too large" in out
    assert re.search(r"at epoch \d, batch \d", out)
    assert "grad_clip" in out  # the message says what else to try


class AtBatch:
    """Training batches that run ``action`` when the run draws its ``k``-th batch.

    ``peek()`` is d2lcnn's loader protocol: the checks before training look at the
    first batch without drawing one, so ``k`` counts only the batches trained on.
    """

    def __init__(self, batches, k, action):
        self.batches, self.k, self.action, self.drawn = batches, k, action, 0

    def __len__(self):
        return len(self.batches)

    def peek(self):
        return self.batches[0]

    def __iter__(self):
        for batch in self.batches:
            self.drawn += 1
            if self.drawn == self.k:
                self.action()
            yield batch


def test_stop_event_ends_the_run_at_a_batch_boundary():
    import threading

    stop = threading.Event()
    train = AtBatch(batches(4), 6, stop.set)  # epoch 2's second batch
    history = run(small_net(), train, batches(1), num_epochs=3, stop=stop)
    assert history.status == "stopped"
    assert len(history) == 1  # epoch 1 finished, epoch 2 stopped before its 2nd update
    assert "train_ch6(net, train_iter, test_iter" in history.message


def test_ctrl_c_stops_at_a_batch_boundary_and_keeps_model_and_history():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a background job, else Python's own
    train = AtBatch(batches(4), 7, lambda: os.kill(os.getpid(), signal.SIGINT))
    history = run(small_net(), train, batches(1), num_epochs=3)
    assert history.status == "interrupted" and len(history) == 1
    assert "interrupted by Ctrl-C" in history.message
    # the SIGINT handler is restored afterwards
    assert signal.getsignal(signal.SIGINT) == before


def test_a_run_can_be_continued_from_its_history():
    net = small_net()
    history = run(net, batches(2), batches(1), num_epochs=1)
    weights = [p.detach().clone() for p in net.parameters()]
    history = run(net, batches(2), batches(1), num_epochs=2, init=None, history=history)
    assert len(history) == 3 and history.status == "completed"
    assert history.settings["num_epochs"] == 3
    assert any(not torch.equal(a, b) for a, b in zip(weights, net.parameters()))


def _raise(error):
    def action():
        raise error
    return action


def test_out_of_memory_is_caught_with_advice(capsys):
    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    history = run(small_net(), AtBatch(batches(4), 3, _raise(oom)), batches(1), num_epochs=2)
    assert history.status == "out_of_memory"
    assert "smaller batch_size or resize" in capsys.readouterr().out


def test_other_errors_propagate_with_the_history_attached():
    train = AtBatch(batches(4), 5, _raise(RuntimeError("boom")))  # epoch 2's first
    with pytest.raises(RuntimeError, match="boom") as info:
        run(small_net(), train, batches(1), num_epochs=2)
    assert len(info.value.history) == 1


def test_history_round_trips_through_json(tmp_path):
    history = run(small_net(), batches(2), batches(1), num_epochs=2)
    loaded = History.load(history.save(tmp_path / "h.json"))
    assert loaded == history


def test_bf16_autocast_trains_on_cpu():
    history = run(small_net(), batches(2), batches(1), precision="bf16")
    assert history.settings["precision"] == "bf16" and history.status == "completed"
    with pytest.raises(ValueError, match="precision must be one of"):
        run(small_net(), batches(1), batches(1), precision="fp8")


@pytest.mark.parametrize("precision, channels_last, fastest, expected", [
    ("fp32", "auto", ("fp32", True), ("fp32", True)),
    ("fp32", "auto", ("fp32", False), ("fp32", False)),
    ("bf16", "auto", ("bf16", True), ("bf16", True)),
    ("fp32", True, None, ("fp32", True)),  # nothing to choose: nothing timed
    ("bf16", False, None, ("bf16", False)),
])
def test_auto_format_is_the_fastest_timed_one(monkeypatch, precision, channels_last,
                                              fastest, expected):
    from d2lcnn import recipe as formats

    timed = []

    def fake_seconds(net, X, y, loss, device, precision, channels_last):
        timed.append((precision, channels_last))
        return 1.0 if (precision, channels_last) == fastest else 2.0

    monkeypatch.setattr(formats, "_seconds_per_step", fake_seconds)
    monkeypatch.setattr(formats, "_CHOSEN", {})
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(),
                        nn.Linear(64, 10))
    history = run(net, batches(2), batches(1), precision=precision,
                  channels_last=channels_last)
    settings = history.settings
    assert (settings["precision"], settings["channels_last"]) == expected
    weight = net[2].weight  # 4 input channels: NCHW and NHWC differ
    assert weight.is_contiguous(memory_format=torch.channels_last) is expected[1]
    assert len(timed) == (0 if fastest is None else 2)
    run(net, batches(2), batches(1), precision=precision, channels_last=channels_last)
    assert len(timed) == (0 if fastest is None else 2), "timed once per net and shape"


def test_bad_channels_last_is_refused():
    with pytest.raises(ValueError, match="channels_last must be True, False or 'auto'"):
        run(small_net(), batches(1), batches(1), channels_last="yes")


def test_a_short_run_on_the_mini_set_learns():
    train_iter, test_iter = d2l.load_data_fashion_mnist(128, source="mini", verbose=False)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 10),
    )
    history = run(net, train_iter, test_iter, num_epochs=2, lr=0.3)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.test_acc[-1] > 0.5  # chance is 0.1


def test_an_input_too_small_for_the_net_names_the_layer_and_the_minimum():
    net = nn.Sequential(nn.Conv2d(1, 4, kernel_size=11, stride=4), nn.ReLU(),
                        nn.MaxPool2d(3, stride=2), nn.Flatten(), nn.LazyLinear(10))
    message = r"'0' \(Conv2d\) got input shape \(8, 1, 8, 8\).*at least 19"
    with pytest.raises(d2l.ShapeError, match=message) as info:
        run(net, batches(2), batches(1), init=None)
    assert len(info.value.history) == 0


def test_a_recipe_sets_optimizer_schedule_loss_and_init():
    recipe = d2l.Recipe(momentum=0.9, nesterov=True, weight_decay=5e-4,
                        schedule="onecycle", warmup=0.25, label_smoothing=0.1,
                        init="kaiming")
    net = small_net()
    optimizer, scheduler = recipe.optimizer(net, lr=0.2, total_steps=40)
    lrs = []
    for _ in range(40):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(lrs) == pytest.approx(0.2) and lrs.index(max(lrs)) == 10  # after 10 of 40 steps
    assert lrs[0] < 0.02 and lrs[-1] < 0.01  # from lr / 25 up, then annealed
    assert optimizer.param_groups[0]["nesterov"] is True
    assert {g["weight_decay"] for g in optimizer.param_groups} == {5e-4, 0.0}
    assert recipe.loss().label_smoothing == 0.1
    history = run(small_net(), batches(4), batches(1), num_epochs=2, recipe=recipe)
    assert history.status == "completed" and history.settings["recipe"] == recipe.to_dict()


@pytest.mark.parametrize("kwargs, message", [
    (dict(schedule="step"), "schedule must be one of"),
    (dict(momentum=1.5), "momentum must be a number in"),
    (dict(nesterov=True), "nesterov=True needs momentum"),
    (dict(weight_decay=-1), "weight_decay must be a number >= 0"),
    (dict(init="orthogonal"), "init must be one of"),
])
def test_a_bad_recipe_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        d2l.Recipe(**kwargs)


def test_a_stopped_run_reports_the_speed_of_its_finished_epochs(capsys):
    import threading

    stop = threading.Event()
    train = AtBatch(batches(4), 5, stop.set)  # epoch 2's first batch
    history = run(small_net(), train, batches(1), num_epochs=3, stop=stop)
    assert history.status == "stopped" and len(history) == 1
    speed = float(capsys.readouterr().out.splitlines()[-1].split()[0])
    assert speed > 0


def test_init_none_keeps_the_weights_also_with_a_recipe():
    net = small_net()
    before = [p.detach().clone() for p in net.parameters()]
    run(net, batches(1), batches(1), lr=1e-12, init=None,
        recipe=d2l.Recipe(init="kaiming"))
    assert all(torch.allclose(a, b) for a, b in zip(before, net.parameters()))


def test_timing_the_formats_draws_no_random_number_from_the_run():
    from d2lcnn import recipe as formats

    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(64, 10))
    X, y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    formats._CHOSEN.clear()
    torch.manual_seed(0)
    formats.choose_format(net, X, y, torch.device("cpu"), "auto", "auto")
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))


def test_a_first_loss_far_above_ln_classes_is_named_before_any_update(capsys):
    def blown_up(module):  # a last layer 100x too large: logits in the hundreds
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=100.0)

    history = run(small_net(), batches(2), batches(1), init=blown_up, verbose=True)
    out = capsys.readouterr().out
    assert history.settings["first_loss"] > 10
    assert re.search(r"check: the first loss is [\d.e+]+, far above ln\(10\) = 2\.30", out)
    assert "initial weights are likely too large" in out and "init='xavier'" in out
    history = run(small_net(), batches(2), batches(1), verbose=True)  # d2l's Xavier init
    assert abs(history.settings["first_loss"] - math.log(10)) < 0.5
    assert "check:" not in capsys.readouterr().out


def test_a_continued_run_redraws_the_stopped_epoch_instead_of_going_back():
    import threading

    stop = threading.Event()
    history = run(small_net(), AtBatch(batches(4), 6, stop.set), batches(1), num_epochs=3,
                  stop=stop)
    assert history.status == "stopped" and history.last_x > 1  # half of epoch 2 drawn
    run(small_net(), batches(4), batches(1), num_epochs=1, init=None, history=history)
    xs = history.points["train loss"][0]
    assert xs == sorted(xs) and len(history) == 2


def test_ctrl_c_before_the_first_batch_and_during_the_last_evaluation_are_recorded():
    class SelfInterrupting(nn.Module):  # Ctrl-C during the checks before the first batch
        def __init__(self):
            super().__init__()
            self.net = small_net()

        def forward(self, x):
            os.kill(os.getpid(), signal.SIGINT)
            return self.net(x)

    with pytest.raises(KeyboardInterrupt) as info:
        run(SelfInterrupting(), batches(2), batches(1))
    assert info.value.history.status == "interrupted"

    def evaluate(net, test_iter):  # Ctrl-C while the last epoch is evaluated
        os.kill(os.getpid(), signal.SIGINT)
        return 0.5

    history = run(small_net(), batches(2), batches(1), evaluate=evaluate)
    assert history.status == "interrupted" and len(history) == 1


def test_a_stop_of_ones_own_must_use_a_known_status():
    with pytest.raises(ValueError, match="status must be one of.*use 'stopped'"):
        d2l.train.TrainingStopped("early_stopped", "patience ran out")


def test_saving_a_history_leaves_its_listeners_alone(tmp_path):
    import threading

    class Listener:  # holds what cannot be copied, as an Animator's figure may
        lock = threading.Lock()

        def __call__(self, event, history):
            pass

    history = run(small_net(), batches(2), batches(1))
    history.subscribe(Listener())
    assert History.load(history.save(tmp_path / "h.json")).test_acc == history.test_acc


@pytest.mark.parametrize("name, size, kwargs", [
    ("vgg11", 32, dict(resolution=32, ratio=16)),  # 6.3 at fan-in alone (64 px, ratio 4)
    ("alexnet", 72, dict(resolution=72)),  # 5.7
])
def test_he_init_starts_the_chapter_nets_near_ln_10(name, size, kwargs):
    from d2lcnn.recipe import initialise, kaiming_init

    torch.manual_seed(0)
    X, y = torch.rand(64, 1, size, size), torch.randint(0, 10, (64,))
    net = initialise(d2l.get_model(name, **kwargs), kaiming_init).train()
    with torch.no_grad():
        assert abs(nn.functional.cross_entropy(net(X), y).item() - math.log(10)) < 0.25
    run(net, [(X, y)], [(X, y)], recipe=d2l.Recipe(init="kaiming"), lr=1e-9)
    with torch.no_grad():  # train_ch6 does the same with the recipe's init
        assert abs(nn.functional.cross_entropy(net.eval()(X), y).item()
                   - math.log(10)) < 0.25


def test_he_init_keeps_nins_class_maps_alive_through_its_last_relu():
    from d2lcnn.recipe import initialise, kaiming_init

    torch.manual_seed(0)
    net = d2l.get_model("nin", dropout=0.0)
    last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]  # 10 class maps
    seen = {}
    last.register_forward_hook(lambda module, inputs, output: seen.update(z=output))
    initialise(net, kaiming_init).eval()(torch.rand(8, 1, 112, 112))
    assert (seen["z"] > 0).float().mean() > 0.95  # at bias 0 about half are cut by the ReLU
    with torch.no_grad():
        last.bias.zero_()
        net(torch.rand(8, 1, 112, 112))
    assert 0.2 < (seen["z"] > 0).float().mean() < 0.8  # the bias is what keeps them alive
