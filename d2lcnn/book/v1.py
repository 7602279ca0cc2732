"""d2l 1.0's object API for the CNN chapters: Module, Classifier, DataModule, FashionMNIST.

The current English book writes ``class LeNet(d2l.Classifier)``, builds data with
``d2l.FashionMNIST(batch_size, resize)`` and trains with ``d2l.Trainer(...).fit(model,
data)``. These classes keep d2l 1.0.3's visible behaviour (what is plotted and when,
plain SGD at ``self.lr``, the ``init_cnn`` rule) on d2lcnn's in-memory loader, and
plot values stay on the device until the board draws them (no sync per batch).
"""

from __future__ import annotations

import operator

import torch
from torch import nn
from torch.nn import functional as F

from .. import data as _data
from ..plotting import show_images
from .board import HyperParameters, ProgressBoard

__all__ = ["Classifier", "DataModule", "FashionMNIST", "LeNet", "Module",
           "add_to_class", "cpu", "gpu"]


def add_to_class(Class: type):
    """Decorator: add the decorated function to ``Class`` as a method (d2l 1.0).

    Example:
        >>> class A:
        ...     pass
        >>> @add_to_class(A)
        ... def twice(self, x):
        ...     return 2 * x
        >>> A().twice(4)
        8
    """
    def wrapper(obj):
        setattr(Class, obj.__name__, obj)
        return obj  # d2l returns None, which leaves the name unusable afterwards
    return wrapper


def cpu() -> torch.device:
    """The CPU device (d2l 1.0's ``cpu``).

    Example:
        >>> cpu()
        device(type='cpu')
    """
    return torch.device("cpu")


def gpu(i: int = 0) -> torch.device:
    """The CUDA device ``i`` (d2l 1.0's ``gpu``; it need not exist, see ``try_gpu``).

    Example:
        >>> gpu(1)
        device(type='cuda', index=1)
    """
    return torch.device(f"cuda:{i}")


class Module(nn.Module, HyperParameters):
    """The base class of d2l 1.0's models: an ``nn.Module`` that plots its progress.

    Subclasses set ``self.net`` (or override ``forward``) and ``loss``; ``lr`` is
    read by ``configure_optimizers`` (plain SGD, as in d2l).

    Example:
        >>> class Line(Module):
        ...     def __init__(self, lr=0.1):
        ...         super().__init__(); self.save_hyperparameters()
        ...         self.net = nn.Linear(2, 1)
        >>> model = Line(); model(torch.ones(3, 2)).shape, model.lr
        (torch.Size([3, 1]), 0.1)
    """

    def __init__(self, plot_train_per_epoch: int = 2, plot_valid_per_epoch: int = 1):
        super().__init__()
        self.save_hyperparameters()
        self.board = ProgressBoard()

    def loss(self, y_hat, y):
        raise NotImplementedError(f"{type(self).__name__} has no loss: define "
                                  "loss(self, y_hat, y) or subclass d2l.Classifier")

    def forward(self, X):
        if not hasattr(self, "net"):
            raise AttributeError(f"{type(self).__name__} has no self.net: set it in "
                                 "__init__ or override forward")
        return self.net(X)

    def plot(self, key: str, value, train: bool) -> None:
        """Plot ``value`` as ``train_<key>`` or ``val_<key>`` (d2l's schedule).

        Training values make ``plot_train_per_epoch`` points per epoch, validation
        values ``plot_valid_per_epoch``, each the mean of its batches. A tensor
        ``value`` stays on its device until the board draws the point.
        """
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            raise RuntimeError("plot() needs a Trainer: call d2l.Trainer(...).fit("
                               "model, data), which sets model.trainer")
        self.board.xlabel = "epoch"
        if train:
            x = trainer.train_batch_idx / trainer.num_train_batches
            n = trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x = trainer.epoch + 1
            n = trainer.num_val_batches / self.plot_valid_per_epoch
        if isinstance(value, torch.Tensor):
            value = value.detach()
        label = ("train_" if train else "val_") + key
        record = getattr(trainer, "record", None)
        if record is not None:
            record(label, value)
        self.board.draw(x, value, label, every_n=max(1, int(n)))

    def training_step(self, batch):
        loss = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", loss, train=True)
        return loss

    def validation_step(self, batch):
        loss = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", loss, train=False)

    def configure_optimizers(self):
        if not hasattr(self, "lr"):
            raise AttributeError(f"{type(self).__name__} has no lr: save it with "
                                 "self.save_hyperparameters() in __init__")
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def apply_init(self, inputs, init=None) -> None:
        """Run ``inputs`` through the model (lazy layers take their shapes), then
        apply ``init`` (e.g. ``d2l.init_cnn``) to ``self.net``, as d2l does."""
        with torch.no_grad():
            self.forward(*inputs)
        if init is not None:
            getattr(self, "net", self).apply(init)


class Classifier(Module):
    """The base class of classification models (d2l 1.0's ``Classifier``).

    Cross-entropy loss, accuracy, and per epoch one validation point each for
    ``val_loss`` and ``val_acc``. Training plots ``train_loss`` as in d2l; the
    training accuracy is also counted (not plotted) for the History.

    Example:
        >>> model = Classifier()
        >>> Y_hat = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
        >>> Y = torch.tensor([1, 1])
        >>> model.accuracy(Y_hat, Y), round(float(model.loss(Y_hat, Y)), 4)
        (tensor(0.5000), 0.7043)
    """

    def training_step(self, batch):
        Y_hat = self(*batch[:-1])
        loss = self.loss(Y_hat, batch[-1])
        self.plot("loss", loss, train=True)
        record = getattr(getattr(self, "trainer", None), "record", None)
        if record is not None:  # counted on the device; d2l does not plot it
            with torch.no_grad():
                record("train_acc", self.accuracy(Y_hat, batch[-1]))
        return loss

    def validation_step(self, batch):
        Y_hat = self(*batch[:-1])
        self.plot("loss", self.loss(Y_hat, batch[-1]), train=False)
        self.plot("acc", self.accuracy(Y_hat, batch[-1]), train=False)

    def accuracy(self, Y_hat, Y, averaged: bool = True):
        """The fraction of correct predictions (or, with ``averaged=False``, a 0/1
        tensor per example), as a tensor on ``Y_hat``'s device."""
        preds = Y_hat.reshape(-1, Y_hat.shape[-1]).argmax(dim=1).type(Y.dtype)
        compare = (preds == Y.reshape(-1)).type(torch.float32)
        return compare.mean() if averaged else compare

    def loss(self, Y_hat, Y, averaged: bool = True):
        """Cross-entropy of the logits ``Y_hat`` against labels ``Y``."""
        return F.cross_entropy(Y_hat.reshape(-1, Y_hat.shape[-1]), Y.reshape(-1),
                               reduction="mean" if averaged else "none")

    def layer_summary(self, X_shape) -> None:
        """Print each layer's output shape for a random input (d2l's lines).

        Example:
            >>> model = Classifier(); model.net = nn.Sequential(nn.Flatten(),
            ...                                                 nn.Linear(4, 2))
            >>> model.layer_summary((1, 1, 2, 2))  # doctest: +NORMALIZE_WHITESPACE
            Flatten output shape:	 torch.Size([1, 4])
            Linear output shape:	 torch.Size([1, 2])
        """
        net = getattr(self, "net", None)
        if not isinstance(net, nn.Sequential):
            raise TypeError(f"layer_summary walks self.net as an nn.Sequential; "
                            f"{type(self).__name__}.net is {type(net).__name__}. Use "
                            "d2l.layer_summary(model, X_shape), which works for any net")
        param = next(iter(self.parameters()), None)
        X = torch.randn(*X_shape, device=param.device if param is not None else None)
        with torch.no_grad():  # d2l keeps the graph of a throwaway forward pass
            for layer in net:
                X = layer(X)
                print(layer.__class__.__name__, "output shape:\t", X.shape)


class DataModule(HyperParameters):
    """The base class of data (d2l 1.0): ``train_dataloader``/``val_dataloader``.

    ``root`` None means d2lcnn's data root (``$D2LCNN_DATA``, else a per-user cache),
    not d2l's ``../data``; ``num_workers`` is kept for d2l code but d2lcnn's loader
    needs none.

    Example:
        >>> data = DataModule(); data.batch_size = 2
        >>> X, y = next(iter(data.get_tensorloader((torch.ones(4, 3), torch.zeros(4)),
        ...                                        train=False)))
        >>> X.shape
        torch.Size([2, 3])
    """

    def __init__(self, root=None, num_workers: int = 0):
        self.save_hyperparameters()

    def get_dataloader(self, train: bool):
        raise NotImplementedError(f"{type(self).__name__} must define "
                                  "get_dataloader(self, train)")

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)

    def get_tensorloader(self, tensors, train: bool, indices=slice(0, None)):
        """A DataLoader over ``tensors[indices]``, shuffled when ``train``."""
        dataset = torch.utils.data.TensorDataset(*(a[indices] for a in tensors))
        return torch.utils.data.DataLoader(dataset, self.batch_size, shuffle=train)


class _Images(torch.utils.data.Dataset):
    """``data.train`` / ``data.val``: indexable examples, ``len`` = number of images."""

    def __init__(self, batches: _data.FashionMNISTBatches):
        self.batches = batches

    def __len__(self) -> int:
        return self.batches.num_examples

    def __getitem__(self, i: int):
        n = len(self)
        i = operator.index(i)
        if not -n <= i < n:
            raise IndexError(f"image index {i} is out of range for {n:,} images")
        i %= n  # a negative index counts from the end, as for a list
        one = _data.FashionMNISTBatches(self.batches.images[i:i + 1],
                                        self.batches.labels[i:i + 1], 1,
                                        resize=self.batches.resize)
        X, y = next(iter(one))
        return X[0], int(y[0])


class FashionMNIST(DataModule):
    """Fashion-MNIST as d2l 1.0's data module, on d2lcnn's in-memory loader.

    Same arguments as d2l (``batch_size=64, resize=(28, 28)``); keyword-only extras
    are passed to ``d2l.load_data_fashion_mnist`` (``root``, ``source``, ``subset``,
    ``test_subset``, ``seed``, ``verbose``). Batches are cut and resized where they
    are used; there are no worker processes.

    Example:
        >>> data = FashionMNIST(batch_size=8, source="mini", verbose=False)
        >>> X, y = next(iter(data.train_dataloader()))
        >>> X.shape, len(data.val), data.text_labels([0, 9])
        (torch.Size([8, 1, 28, 28]), 1000, ['t-shirt', 'ankle boot'])
    """

    def __init__(self, batch_size: int = 64, resize=(28, 28), *, root=None,
                 source: str = "auto", subset: int | None = None,
                 test_subset: int | None = None, seed: int | None = None,
                 verbose: bool = True):
        super().__init__(root=root)
        self.save_hyperparameters(ignore=["source", "subset", "test_subset", "seed",
                                          "verbose"])
        self._train, self._val = _data.load_data_fashion_mnist(
            batch_size, resize, root=root, subset=subset, test_subset=test_subset,
            source=source, seed=seed, verbose=verbose)
        self.train, self.val = _Images(self._train), _Images(self._val)

    def text_labels(self, indices) -> list[str]:
        """The text names of labels ``indices``."""
        return _data.get_fashion_mnist_labels(indices)

    def get_dataloader(self, train: bool) -> _data.FashionMNISTBatches:
        batches = self._train if train else self._val
        if batches.batch_size != self.batch_size:  # a learner changed data.batch_size
            batches = _data.FashionMNISTBatches(
                batches.images, batches.labels, self.batch_size,
                resize=batches.resize, shuffle=batches.shuffle, source=batches.source,
                split=batches.split)
        return batches

    def visualize(self, batch, nrows: int = 1, ncols: int = 8, labels=()) -> None:
        """Show the first ``nrows * ncols`` images of ``batch`` with their labels."""
        X, y = batch
        if not labels:
            labels = self.text_labels(y)
        show_images(X.squeeze(1), nrows, ncols, titles=labels)  # None, as in d2l


class LeNet(Classifier):
    """LeNet-5 as d2l 1.0 saves it: lazy layers, sigmoid, average pooling.

    Example:
        >>> LeNet()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, lr: float = 0.1, num_classes: int = 10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(),
            nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))
