"""The d2l 1.0 style: Classifier, FashionMNIST, Trainer ... with ``import d2lcnn as d2l``.

Cells written in the style of the current English book's CNN chapters, on the bundled
mini set (``source="mini"``). ``Trainer.fit`` runs on ``train_ch6``, so what ends a run
(Stop, Ctrl-C, divergence, out of memory) is the loop's, checked here through ``fit``.
"""

import os
import signal
import threading

import matplotlib
import pytest
import torch
from torch import nn

import d2lcnn as d2l
from d2lcnn.history import History

matplotlib.use("Agg")


@pytest.fixture
def data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("D2LCNN_DATA", str(tmp_path))  # the mini set is bundled: no data root


def mini(batch_size=256, subset=1024, test_subset=100, **kwargs):
    return d2l.FashionMNIST(batch_size=batch_size, subset=subset, test_subset=test_subset,
                            source="mini", verbose=False, **kwargs)


class SmallCNN(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2), nn.Flatten(),
            nn.LazyLinear(84), nn.ReLU(), nn.LazyLinear(num_classes))


def fit(model, data, **trainer_options):
    trainer = d2l.Trainer(max_epochs=trainer_options.pop("max_epochs", 1),
                          **trainer_options)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    return trainer, trainer.fit(model, data)


def test_the_books_lenet_trains_with_trainer_and_plots_like_d2l(data_root, capsys):
    torch.manual_seed(0)
    data = mini(batch_size=64, subset=3000, test_subset=500)
    model = d2l.LeNet(lr=0.9)
    trainer, history = fit(model, data, max_epochs=3)
    assert history is trainer.history and isinstance(history, History)
    assert history.status == "completed" and len(history) == 3
    assert history.train_loss[-1] < history.train_loss[0]  # the loss falls
    assert history.settings["model"] == "LeNet" and "precision" in history.settings
    assert trainer.train_batch_idx == 3 * trainer.num_train_batches == 3 * 47
    # d2l plots train_loss twice per epoch and val_loss/val_acc once
    board = model.board
    assert list(board.data) == ["train_loss", "val_loss", "val_acc"]
    assert [len(points) for points in board.data.values()] == [6, 3, 3]
    first, second = board.data["train_loss"][:2]
    assert first.x < 0.5 < second.x < 1
    assert [p.x for p in board.data["val_acc"]] == [1, 2, 3]
    assert board.data["val_acc"][-1].y == pytest.approx(history.test_acc[-1])
    assert board.xlim == [0, 3] and board.xlabel == "epoch"
    assert board.animator.legend == list(board.data)  # the one renderer draws the board
    assert 0 < history.train_acc[-1] < 1  # counted from the classifier's logits
    assert "val_acc" in capsys.readouterr().out  # the console's rows


def test_a_lazy_classifier_learns(data_root):
    torch.manual_seed(0)
    _, history = fit(SmallCNN(lr=0.3), mini(batch_size=64, subset=3000, test_subset=500))
    assert history.status == "completed" and history.test_acc[-1] > 0.4  # chance: 0.1


def test_one_batch_per_epoch_still_plots(data_root):
    model = SmallCNN()
    trainer, history = fit(model, mini(subset=200, test_subset=50), max_epochs=2)
    assert trainer.num_train_batches == 1 and len(history) == 2
    assert len(model.board.data["train_loss"]) == 2  # d2l's every_n would be 0


def test_channels_last_reaches_the_loop(data_root):
    model = SmallCNN()
    _, history = fit(model, mini(subset=512), channels_last=True)
    assert history.status == "completed" and history.settings["channels_last"] is True
    assert model.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="channels_last must be True, False or 'auto'"):
        d2l.Trainer(max_epochs=1, channels_last="nhwc").fit(SmallCNN(), mini(subset=256))


def test_subscribers_see_points_epochs_and_the_end(data_root):
    events = []
    history = History()
    history.subscribe(lambda event, h: events.append(event))
    trainer = d2l.Trainer(max_epochs=1, history=history)
    assert trainer.fit(SmallCNN(), mini(batch_size=512)) is history
    assert events.count("epoch") == 1 and events[-1] == "end" and "point" in events


def test_a_stop_event_ends_fit_as_stopped_and_keeps_the_epochs(data_root, capsys):
    stop = threading.Event()
    trainer = d2l.Trainer(max_epochs=3, stop=stop)

    class Stopping(SmallCNN):
        def training_step(self, batch):
            if self.trainer.train_batch_idx == 6:  # the 3rd batch of epoch 2
                stop.set()
            return super().training_step(batch)

    history = trainer.fit(Stopping(), mini())
    assert history.status == "stopped" and len(history) == 1
    assert "epoch 2" in history.message and "kept" in capsys.readouterr().out
    assert "trainer.fit(model, data) again" in history.message  # not train_ch6's advice
    assert "train_ch6" not in history.message
    assert trainer.train_batch_idx == 7  # the batch that set it finished


def test_ctrl_c_is_deferred_to_the_next_batch_and_keeps_the_epochs(data_root):
    class Interrupted(SmallCNN):
        def training_step(self, batch):
            if self.trainer.train_batch_idx == 5:  # the 2nd batch of epoch 2
                os.kill(os.getpid(), signal.SIGINT)
            return super().training_step(batch)

    trainer, history = fit(Interrupted(), mini(), max_epochs=3, verbose=False)
    assert history.status == "interrupted" and len(history) == 1
    assert trainer.train_batch_idx == 6 and "Ctrl-C" in history.message


def test_a_nan_loss_ends_the_run_as_diverged(data_root):
    class Broken(SmallCNN):
        def loss(self, Y_hat, Y, averaged=True):
            return super().loss(Y_hat, Y) * float("nan")

    _, history = fit(Broken(), mini(subset=512), max_epochs=2, verbose=False)
    assert history.status == "diverged" and "learning rate" in history.message
    assert len(history) == 0


def test_a_diverging_lr_hands_back_finite_weights(data_root):
    model = SmallCNN()
    model.lr = 1e38
    _, history = fit(model, mini(), max_epochs=2, verbose=False)
    assert history.status == "diverged"
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_out_of_memory_ends_the_run_and_keeps_what_was_done(data_root):
    class Hungry(SmallCNN):
        def training_step(self, batch):
            if self.trainer.epoch == 1:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().training_step(batch)

    _, history = fit(Hungry(), mini(subset=512), max_epochs=2, verbose=False)
    assert history.status == "out_of_memory" and len(history) == 1
    assert "smaller batch_size" in history.message


def test_gradient_clipping_reaches_the_loop(data_root):
    _, history = fit(SmallCNN(), mini(subset=256), gradient_clip_val=0.5)
    assert history.status == "completed" and history.settings["grad_clip"] == 0.5
    with pytest.raises(ValueError, match="gradient_clip_val must be >= 0"):
        d2l.Trainer(max_epochs=1, gradient_clip_val=-1)


def test_errors_that_escape_carry_the_history(data_root):
    class Wrong(d2l.Classifier):
        def __init__(self):
            super().__init__()
            self.lr = 0.1
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(10, 10))

    with pytest.raises(ValueError, match="in_features=784") as caught:  # the loop's check
        d2l.Trainer(max_epochs=1).fit(Wrong(), mini(subset=256))
    assert caught.value.history.status == "failed"


@pytest.mark.parametrize("error, status", [
    (IndexError("label out of range"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_any_exception_from_user_code_keeps_the_finished_epochs(data_root, error, status):
    class Failing(SmallCNN):
        def training_step(self, batch):
            if self.trainer.epoch == 1:
                raise error
            return super().training_step(batch)

    with pytest.raises(type(error)) as caught:
        d2l.Trainer(max_epochs=2, verbose=False).fit(Failing(), mini(subset=512))
    history = caught.value.history
    assert history.status == status and len(history) == 1


def test_trainer_says_when_the_gpu_it_was_asked_for_is_missing(capsys):
    if torch.cuda.is_available() or d2l.try_gpu().type == "mps":
        pytest.skip("this machine has a GPU")
    trainer = d2l.Trainer(max_epochs=1, num_gpus=1)
    assert trainer.gpus == [] and trainer.device == d2l.cpu()
    assert "0 GPU(s) found: training on cpu" in capsys.readouterr().out
    with pytest.raises(ValueError, match="max_epochs must be a positive integer"):
        d2l.Trainer(max_epochs=0)
    with pytest.raises(ValueError, match="num_gpus must be an integer >= 0"):
        d2l.Trainer(max_epochs=1, num_gpus=-1)


def test_layer_summary_prints_d2ls_lines(capsys):
    d2l.LeNet().layer_summary((1, 1, 28, 28))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Conv2d output shape:\t torch.Size([1, 6, 28, 28])"
    assert lines[5] == "AvgPool2d output shape:\t torch.Size([1, 16, 5, 5])"
    assert lines[-1] == "Linear output shape:\t torch.Size([1, 10])"
    assert len(lines) == 12


def test_apply_init_with_init_cnn_gives_xavier_weights():
    torch.manual_seed(0)
    model = d2l.LeNet()
    model.apply_init([torch.zeros(2, 1, 28, 28)], d2l.init_cnn)
    linear = model.net[7]  # 400 -> 120
    assert type(linear) is nn.Linear
    bound = (6 / (400 + 120)) ** 0.5  # PyTorch's default would stay below 0.05
    assert 0.8 * bound < linear.weight.abs().max() <= bound


def test_fashion_mnist_module_and_visualize(data_root):
    data = d2l.FashionMNIST(batch_size=32, resize=(32, 32), source="mini")
    X, y = next(iter(data.val_dataloader()))
    assert X.shape == (32, 1, 32, 32) and y.dtype == torch.int64
    assert len(data.train) == 6000 and data.val[0][0].shape == (1, 32, 32)
    assert data.val[-1][1] == int(data.get_dataloader(False).labels[-1])
    with pytest.raises(IndexError, match="out of range for 1,000 images"):
        data.val[1000]
    assert data.text_labels([0, 9]) == ["t-shirt", "ankle boot"]
    data.batch_size = 8  # d2l builds its loaders on request, so this takes effect
    assert next(iter(data.train_dataloader()))[0].shape[0] == 8
    import matplotlib.pyplot as plt

    plt.close("all")
    data.visualize((X, y))
    titles = [ax.get_title() for ax in plt.gcf().axes]
    assert titles == data.text_labels(y[:8])
    plt.close("all")


def test_hyperparameters_and_add_to_class():
    class A(d2l.HyperParameters):
        def __init__(self, a, b, c=3, _private=None):
            self.save_hyperparameters(ignore=["c"])

    a = A(1, 2)
    assert (a.a, a.b, a.hparams) == (1, 2, {"a": 1, "b": 2})

    @d2l.add_to_class(A)
    def total(self):
        return self.a + self.b

    assert a.total() == 3 and total(a) == 3


def test_progress_board_averages_every_n_points_and_draws_on_the_animator(tmp_path):
    board = d2l.ProgressBoard(xlabel="epoch", display=False)
    for i in range(6):
        board.draw(i, torch.tensor(float(i)), "loss", every_n=3)
    board.draw(2.0, 0.5, "acc", every_n=0)  # d2l's every_n with one batch: each point
    assert [tuple(p) for p in board.data["loss"]] == [(1.0, 1.0), (4.0, 4.0)]
    assert isinstance(board.data["loss"][0].y, float)  # read once, when plotted
    assert board.data["acc"] == [(2.0, 0.5)]
    animator = board.animator
    assert animator.legend == ["loss", "acc"] and animator.Y == [[1.0, 4.0], [0.5]]
    assert animator.xlabel == "epoch"
    animator.save(tmp_path / "board.png")
    assert (tmp_path / "board.png").stat().st_size > 0


def test_a_new_batch_size_keeps_the_split_and_the_seeded_shuffle(data_root):
    first_labels = []
    for _ in range(2):
        data = mini(batch_size=8, seed=0)
        data.batch_size = 16  # as a learner may, after building the data module
        loader = data.train_dataloader()
        assert loader.batch_size == 16 and "npm rebuild" in loader.data_split
        first_labels.append(next(iter(loader))[1])
    assert torch.equal(*first_labels), "the same seed gives the same order"
