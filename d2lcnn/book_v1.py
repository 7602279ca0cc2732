"""d2l 1.0's object API: ``Module``, ``Classifier``, ``FashionMNIST``, ``Trainer``, ...

``Trainer.fit`` runs on ``train_ch6`` (its ``training_step`` and ``validation_step`` as the
loop's hooks) and ``ProgressBoard`` draws with ``Animator``: no second loop or renderer.
"""

from __future__ import annotations

import collections
import inspect
import math

import torch
from torch import nn
from torch.nn import functional as F

from .data import get_fashion_mnist_labels, load_data_fashion_mnist
from .history import History
from .plot import Animator, show_images
from .train import train_ch6
from .utils import positive_int, try_gpu

__all__ = ["Classifier", "DataModule", "FashionMNIST", "HyperParameters", "LeNet", "Module",
           "ProgressBoard", "Trainer", "add_to_class", "cpu", "gpu"]


def add_to_class(Class: type):
    """Decorator: add the function to ``Class`` as a method (d2l 1.0), and keep its name.

    Example:
        >>> class A: pass
        >>> @add_to_class(A)
        ... def twice(self, x): return 2 * x
        >>> A().twice(4)
        8
    """
    def wrapper(obj):
        setattr(Class, obj.__name__, obj)
        return obj  # d2l returns None, which leaves the name unusable afterwards
    return wrapper


def cpu() -> torch.device:
    """The CPU device (d2l 1.0)."""
    return torch.device("cpu")


def gpu(i: int = 0) -> torch.device:
    """CUDA device ``i`` (d2l 1.0; it need not exist: see ``try_gpu``)."""
    return torch.device(f"cuda:{i}")


class HyperParameters:
    """d2l 1.0's base: ``save_hyperparameters(ignore)`` stores ``__init__``'s arguments.

    Example:
        >>> class Net(HyperParameters):
        ...     def __init__(self, lr=0.1, w=8, _cache=None): self.save_hyperparameters(["w"])
        >>> net = Net(lr=0.5); net.lr, net.hparams
        (0.5, {'lr': 0.5})
    """

    def save_hyperparameters(self, ignore=()) -> None:
        local_vars = dict(inspect.currentframe().f_back.f_locals)  # the caller's arguments
        self.hparams = {k: v for k, v in local_vars.items()
                        if k not in {*ignore, "self"} and not k.startswith("_")}
        for k, v in self.hparams.items():
            setattr(self, k, v)


Point = collections.namedtuple("Point", ["x", "y"])


class ProgressBoard(HyperParameters):
    """d2l 1.0's board: ``draw(x, y, label, every_n)`` adds the mean of every ``every_n``
    points of a label to ``data[label]``; ``self.animator`` draws it.

    Example:
        >>> board = ProgressBoard(display=False)
        >>> for x in range(4): board.draw(x, float(x), "sin", every_n=2)
        >>> board.data["sin"], board.animator.Y
        ([Point(x=0.5, y=0.5), Point(x=2.5, y=2.5)], [[0.5, 2.5]])
    """

    def __init__(self, xlabel=None, ylabel=None, xlim=None, ylim=None, xscale="linear",
                 yscale="linear", ls=("-", "--", "-.", ":"), colors=("C0", "C1", "C2", "C3"),
                 fig=None, axes=None, figsize=(3.5, 2.5), display=True):
        self.save_hyperparameters()
        self.raw_points, self.data = collections.OrderedDict(), collections.OrderedDict()
        self.animator: Animator | None = None

    def draw(self, x, y, label: str, every_n: int = 1) -> None:
        points = self.raw_points.setdefault(label, [])
        points.append(Point(x, y))
        if len(points) < every_n:  # d2l's every_n is 0 with one batch: then every point
            return
        x, y = (sum(values) / len(points) for values in zip(*points))
        y = float(y)  # the one synchronisation
        points.clear()
        self.data.setdefault(label, []).append(Point(x, y))
        if self.animator is None:
            self.animator = Animator(legend=[], figsize=self.figsize, display=self.display,
                                     fmts=[c + ls for ls, c in zip(self.ls, self.colors)])
            self.animator.X, self.animator.Y = [], []
        a = self.animator  # d2l code sets the board's labels and limits at any time
        a.xlabel, a.ylabel, a.xlim, a.ylim = self.xlabel or "x", self.ylabel, self.xlim, self.ylim
        a.xscale, a.yscale = self.xscale, self.yscale
        if label not in a.legend:  # a new line: a new series of the Animator
            a.legend.append(label)
            a.X.append([])
            a.Y.append([])
        a.add(x, [y if name == label else None for name in a.legend])


class Module(nn.Module, HyperParameters):
    """d2l 1.0's model base: set ``self.net`` (or ``forward``) and ``loss``; SGD at ``lr``."""

    def __init__(self, plot_train_per_epoch: int = 2, plot_valid_per_epoch: int = 1):
        super().__init__()
        self.save_hyperparameters()
        self.board = ProgressBoard()

    def loss(self, y_hat, y):
        raise NotImplementedError("define loss(self, y_hat, y) or subclass d2l.Classifier")

    def forward(self, X):
        return self.net(X)

    def plot(self, key: str, value, train: bool) -> None:
        """Plot ``train_<key>``/``val_<key>``: ``plot_*_per_epoch`` batch means per epoch."""
        trainer, self.board.xlabel = self.trainer, "epoch"  # trainer: set by Trainer.fit
        if train:
            x = trainer.train_batch_idx / trainer.num_train_batches
            n = trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x, n = trainer.epoch + 1, trainer.num_val_batches / self.plot_valid_per_epoch
        value = value.detach() if isinstance(value, torch.Tensor) else value
        label = ("train_" if train else "val_") + key
        if not train:  # the Trainer hands the epoch's val_acc to the loop's History
            trainer.val_values.setdefault(label, []).append(value)
        self.board.draw(x, value, label, every_n=int(n))

    def training_step(self, batch):
        loss = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", loss, train=True)
        return loss

    def validation_step(self, batch):
        self.plot("loss", self.loss(self(*batch[:-1]), batch[-1]), train=False)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def apply_init(self, inputs, init=None) -> None:
        """Run ``inputs`` through (lazy layers take shapes), then ``self.net.apply(init)``."""
        with torch.no_grad():
            self.forward(*inputs)
        if init is not None:
            getattr(self, "net", self).apply(init)


class Classifier(Module):
    """d2l 1.0's classifier: cross-entropy, accuracy; per epoch one val_loss and val_acc point."""

    def validation_step(self, batch):
        Y_hat = self(*batch[:-1])
        self.plot("loss", self.loss(Y_hat, batch[-1]), train=False)
        self.plot("acc", self.accuracy(Y_hat, batch[-1]), train=False)

    def accuracy(self, Y_hat, Y, averaged: bool = True):
        preds = Y_hat.reshape(-1, Y_hat.shape[-1]).argmax(dim=1).type(Y.dtype)
        compare = (preds == Y.reshape(-1)).type(torch.float32)
        return compare.mean() if averaged else compare

    def loss(self, Y_hat, Y, averaged: bool = True):
        return F.cross_entropy(Y_hat.reshape(-1, Y_hat.shape[-1]), Y.reshape(-1),
                               reduction="mean" if averaged else "none")

    def layer_summary(self, X_shape) -> None:
        """Print each layer's output shape for a random input of ``X_shape`` (d2l's lines)."""
        if not isinstance(getattr(self, "net", None), nn.Sequential):
            raise TypeError("layer_summary walks self.net, an nn.Sequential; for any other "
                            "net use d2l.layer_summary(model, X_shape)")
        X = torch.randn(*X_shape, device=next(self.parameters()).device)
        with torch.no_grad():  # d2l keeps the graph of a throwaway forward pass
            for layer in self.net:
                X = layer(X)
                print(layer.__class__.__name__, "output shape:\t", X.shape)


class LeNet(Classifier):
    """LeNet-5 as d2l 1.0 saves it: lazy layers, sigmoid, average pooling."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, stride=2), nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(), nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))


class DataModule(HyperParameters):
    """d2l 1.0's data base class; ``root`` None is d2lcnn's data root (not ``../data``)."""

    def __init__(self, root=None, num_workers: int = 0):
        self.save_hyperparameters()

    def get_dataloader(self, train: bool):
        raise NotImplementedError("a DataModule defines get_dataloader(self, train)")

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)


class _Images(torch.utils.data.Dataset):
    """``data.train`` / ``data.val``: ``(image, label)`` by index."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self) -> int:
        return self.batches.num_examples

    def __getitem__(self, i: int):
        b, n, one = self.batches, len(self), slice(i, i + 1 or None)  # i = -1: the last
        if not -n <= i < n:
            raise IndexError(f"image index {i} is out of range for {n:,} images")
        X, y = next(iter(type(b)(b.images[one], b.labels[one], 1, resize=b.resize)))
        return X[0], int(y[0])


class FashionMNIST(DataModule):
    """d2l 1.0's ``FashionMNIST(batch_size=64, resize=(28, 28))``, plus keyword-only arguments
    of ``load_data_fashion_mnist``: ``root, source, subset, test_subset, seed, verbose``.

    Example:
        >>> data = FashionMNIST(batch_size=8, source="mini", verbose=False)
        >>> X, y = next(iter(data.train_dataloader()))
        >>> X.shape, len(data.val), data.text_labels([0, 9])
        (torch.Size([8, 1, 28, 28]), 1000, ['t-shirt', 'ankle boot'])
    """

    def __init__(self, batch_size: int = 64, resize=(28, 28), *, root=None, source="auto",
                 subset=None, test_subset=None, seed=None, verbose=True):
        super().__init__(root=root)
        self.save_hyperparameters(ignore=["source", "subset", "test_subset", "seed", "verbose"])
        self._train, self._val = load_data_fashion_mnist(
            batch_size, resize, root=root, subset=subset, test_subset=test_subset,
            source=source, seed=seed, verbose=verbose)
        self.train, self.val = _Images(self._train), _Images(self._val)

    def text_labels(self, indices) -> list[str]:
        return get_fashion_mnist_labels(indices)

    def get_dataloader(self, train: bool):
        b = self._train if train else self._val
        if b.batch_size != self.batch_size:  # a learner changed data.batch_size
            b = type(b)(b.images, b.labels, self.batch_size, resize=b.resize,
                        shuffle=b.shuffle, source=b.source, split=b.split,
                        data_split=b.data_split, _generator=b._generator)
        return b

    def visualize(self, batch, nrows: int = 1, ncols: int = 8, labels=()) -> None:
        X, y = batch
        show_images(X.squeeze(1), nrows, ncols, titles=labels or self.text_labels(y))


class Trainer(HyperParameters):
    """d2l 1.0's ``Trainer``: ``fit(model, data)`` is ``train_ch6`` with the model's
    ``training_step`` and ``validation_step`` as hooks; ``num_gpus`` says when fewer exist.
    Keyword-only, as for ``train_ch6``: ``channels_last``, ``stop``, ``history``, ``verbose``.
    """

    def __init__(self, max_epochs: int, num_gpus: int = 0, gradient_clip_val=0, *,
                 channels_last="auto", stop=None, history: History | None = None, verbose=True):
        self.save_hyperparameters(ignore=["channels_last", "stop", "history", "verbose"])
        positive_int("max_epochs", max_epochs)
        if not gradient_clip_val >= 0:
            raise ValueError(f"gradient_clip_val must be >= 0 (0 turns clipping off), got "
                             f"{gradient_clip_val!r}")
        if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 0:
            raise ValueError(f"num_gpus must be an integer >= 0, got {num_gpus!r}")
        self.channels_last, self.stop, self.verbose = channels_last, stop, verbose
        self.gpus = [gpu(i) for i in range(min(num_gpus, torch.cuda.device_count()))] or (
            [torch.device("mps")] if num_gpus and try_gpu().type == "mps" else [])
        if verbose and num_gpus > len(self.gpus):
            print(f"Trainer: num_gpus={num_gpus}, {len(self.gpus)} GPU(s) found: training on "
                  f"{self.device}" + ("" if self.gpus else " (num_gpus=0 trains on it quietly)"))
        self.history = history if history is not None else History(device=str(self.device))

    @property
    def device(self) -> torch.device:
        return self.gpus[0] if self.gpus else torch.device("cpu")

    def __deepcopy__(self, memo):
        return self  # a copy of the model (the loop's format timing) shares its trainer

    def prepare_data(self, data) -> None:
        self.train_dataloader = data.train_dataloader()
        self.val_dataloader = data.val_dataloader()
        self.num_train_batches = len(self.train_dataloader)
        self.num_val_batches = len(self.val_dataloader) if self.val_dataloader else 0

    def prepare_model(self, model) -> None:
        model.trainer, model.board.xlim, self.model = self, [0, self.max_epochs], model

    def prepare_batch(self, batch):
        return [a.to(self.device) for a in batch] if self.gpus else batch

    def fit(self, model, data) -> History:
        self.prepare_data(data)
        self.prepare_model(model)
        self.epoch = self.train_batch_idx = self.val_batch_idx = 0
        self.val_values, self._y_hat = {}, None
        # the model's output, kept as its training_step computes it: a classifier's train acc
        hook = model.register_forward_hook(lambda m, i, output: setattr(self, "_y_hat", output))

        def training_step(X, y):  # the loop moved the batch; backward and step follow
            self.epoch = self.train_batch_idx // self.num_train_batches  # plot reads it
            self._y_hat = None
            loss = model.training_step(self.prepare_batch([X, y]))
            self.train_batch_idx += 1
            return loss, self._y_hat if isinstance(model, Classifier) else None

        def evaluate(net, val_iter):  # the epoch's validation; its mean val_acc, or nan
            self.epoch, self.val_values = (self.train_batch_idx - 1) // self.num_train_batches, {}
            model.eval()
            with torch.no_grad():
                for batch in val_iter:
                    model.validation_step(self.prepare_batch(batch))
                    self.val_batch_idx += 1
            return float(sum(a) / len(a)) if (a := self.val_values.get("val_acc")) else math.nan

        try:
            history = train_ch6(
                model, self.train_dataloader, self.val_dataloader, self.max_epochs,
                getattr(model, "lr", None), self.device, init=None, animator=False, verbose=False,
                optimizer=model.configure_optimizers(), loss=model.loss, stop=self.stop,
                history=self.history, channels_last=self.channels_last, evaluate=evaluate,
                grad_clip=self.gradient_clip_val or None, training_step=training_step)
        finally:
            hook.remove()
            if model.board.animator is not None:  # a notebook's last redraw, a console's row
                model.board.animator.finish()
        # the loop's advice names train_ch6's arguments: say it in the Trainer's terms
        history.message = history.message.replace("(grad_clip=1.0)", "(Trainer(..., "
                                                  "gradient_clip_val=1))").replace(
            "train_ch6(net, train_iter, test_iter, num_epochs, lr, device, init=None, "
            "history=history)", "trainer.fit(model, data) again")
        if history.message and self.verbose:
            print(history.message)
        return history
