"""Training: d2l's ``train_ch6`` and ``evaluate_accuracy_gpu``, fast and safe to stop.

d2l's semantics are kept (Xavier re-init, plain SGD, cross-entropy, the two closing
lines). What changes: everything checkable is checked before the first batch
(``preflight``); metrics stay on the device and synchronise only at the ~5 curve points
per epoch; the run is recorded in a ``History`` that the plot, the progress bar and the
panel subscribe to; divergence, Ctrl-C, a Stop button and out-of-memory end the run
cleanly, keeping the finished epochs and a usable model.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from .animator import attach_renderers
from .devices import best_device, keep_freed_memory
from .history import History
from .metrics import correct_count
from .precision import autocast, check_channels_last, choose_format, resolve_precision
from .preflight import check_device, check_first_batches, check_positive_int, check_positive_number
from .recipe import Recipe, xavier_init
from .stopping import TrainingStopped, epochs_kept, restore_if_diverged, snapshot, supervise

__all__ = ["History", "TrainingStopped", "evaluate_accuracy_gpu",
           "resolve_precision", "train_ch6", "xavier_init"]


def _to_device(X, device, channels_last: bool):
    if isinstance(X, list | tuple):  # BERT-style inputs, as in d2l
        return [x.to(device) for x in X]
    X = X.to(device, non_blocking=True)
    if channels_last and X.dim() == 4:
        X = X.contiguous(memory_format=torch.channels_last)
    return X


def evaluate_accuracy_gpu(net: nn.Module, data_iter, device=None, *,
                          precision: str = "fp32", channels_last: bool = False) -> float:
    """Accuracy (a ratio in [0, 1]) of ``net`` on ``data_iter``, computed on ``device``.

    ``device`` defaults to that of the net's parameters; a net without parameters is
    evaluated wherever the batches are.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> _ = nn.init.zeros_(net[1].weight), net[1].bias.data.copy_(torch.tensor([1., 0.]))
        >>> batches = [(torch.ones(3, 1, 2, 2), torch.tensor([0, 1, 0]))]
        >>> evaluate_accuracy_gpu(net, batches)  # always class 0: two of three right
        0.6666666666666666
    """
    if isinstance(net, nn.Module):
        net.eval()
        if device is None:
            device = next(iter(net.parameters()), torch.empty(0)).device
    device = torch.device(device) if device is not None else None
    correct, count = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            where = device if device is not None else y.device
            y = y.to(where, non_blocking=True)
            with autocast(where, precision):
                correct += correct_count(net(_to_device(X, where, channels_last)), y)
            count += y.numel()
    if count == 0:
        raise ValueError("evaluate_accuracy_gpu got an empty data iterator; check its "
                         "data and batch size")
    return float(correct) / count


class _Step:
    """One optimisation step on one batch, with the run's format, layout and clipping."""

    def __init__(self, net, optimizer, scheduler, loss, device, precision,
                 channels_last, grad_clip):
        self.net, self.optimizer, self.loss = net, optimizer, loss
        self.scheduler = scheduler  # stepped after every update (a recipe's schedule)
        self.device, self.precision = device, precision
        self.channels_last, self.grad_clip = channels_last, grad_clip
        # A finite-loss check synchronises: free on the CPU, so there before each
        # update (the weights stay finite); on a GPU only at curve points.
        self.check_each_batch = device.type == "cpu"

    def __call__(self, X, y) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        X = _to_device(X, self.device, self.channels_last)
        y = y.to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.precision):
            y_hat = self.net(X)
            batch_loss = self.loss(y_hat, y)
        if self.check_each_batch and not torch.isfinite(batch_loss):
            raise TrainingStopped("diverged",
                                  f"the loss became {float(batch_loss.detach()):.4g}")
        batch_loss.backward()
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return y_hat, y, batch_loss.detach()


def _train_epoch(step: _Step, train_iter, history: History, epoch: int,
                 should_stop) -> tuple[float, int]:
    """One pass over ``train_iter``; ~5 curve points; returns (train seconds, examples)."""
    num_batches = len(train_iter)
    plot_every = max(1, num_batches // 5)  # d2l divides by zero with < 5 batches
    loss_sum = torch.zeros((), device=step.device)
    correct = torch.zeros((), device=step.device)
    seen, train_time, start = 0, 0.0, time.perf_counter()
    step.net.train()
    for i, (X, y) in enumerate(train_iter):
        should_stop()  # honoured between batches only
        try:
            y_hat, y, batch_loss = step(X, y)
        except TrainingStopped as stopped:  # diverged: say where
            raise TrainingStopped(stopped.status, f"{stopped} at epoch {epoch + 1}, "
                                  f"batch {i + 1}") from None
        with torch.no_grad():  # accumulate on the device: no synchronisation here
            loss_sum += batch_loss.float() * len(y)
            correct += correct_count(y_hat, y)
        seen += len(y)
        if (i + 1) % plot_every == 0 or i == num_batches - 1:
            train_l = float(loss_sum) / seen  # the one synchronisation per point
            if train_l != train_l or abs(train_l) == float("inf"):
                raise TrainingStopped("diverged", f"the loss became {train_l:.4g} by "
                                      f"epoch {epoch + 1}, batch {i + 1}")
            history.add_point(epoch + (i + 1) / num_batches,
                              {"train loss": train_l, "train acc": float(correct) / seen})
            train_time += time.perf_counter() - start
            start = time.perf_counter()
    return train_time, seen


def _run_epochs(net, step, train_iter, test_iter, history, epochs, should_stop,
                totals: dict) -> None:
    """The epochs of the run; ``totals`` collects examples and seconds as they finish
    (for the closing line, also when the run ends early)."""
    for epoch in epochs:
        start, saved = time.perf_counter(), snapshot(net)
        try:
            seconds, seen = _train_epoch(step, train_iter, history, epoch, should_stop)
        except TrainingStopped as stopped:
            restore_if_diverged(net, saved, stopped)  # hand back finite weights
            raise
        test_acc = evaluate_accuracy_gpu(net, test_iter, step.device,
                                         precision=step.precision,
                                         channels_last=step.channels_last)
        wall = time.perf_counter() - start
        history.add_epoch(history.last("train loss"), history.last("train acc"),
                          test_acc, seen / max(seconds, 1e-9), seen / wall, wall)
        totals["examples"] += seen
        totals["seconds"] += seconds


def _prepare(net, train_iter, test_iter, device, init, fmt, loss, verbose, history):
    """Move, check, initialise; choose the format; returns iterators and the format.

    An error here ends the run as ``failed`` before any epoch, carrying ``.history``.
    """
    try:
        return _prepare_run(net, train_iter, test_iter, device, init, fmt, loss, verbose)
    except Exception as error:
        error.history = history  # as for any exception that ends a run
        history.end("failed", f"{type(error).__name__}: {error}")
        raise


def _prepare_run(net, train_iter, test_iter, device, init, fmt, loss, verbose):
    if init not in ("xavier", None, False) and not callable(init):
        raise ValueError(f"init must be 'xavier', a function or None, got {init!r}")
    if hasattr(train_iter, "to"):  # d2lcnn loaders move their uint8 store once
        train_iter = train_iter.to(device)
    if hasattr(test_iter, "to"):
        test_iter = test_iter.to(device)
    net.to(device)
    X, y = check_first_batches(net, train_iter, test_iter, device)
    if init == "xavier":
        net.apply(xavier_init)
    elif callable(init):
        net.apply(init)
    precision, channels_last = choose_format(net, X, y, device, *fmt, loss=loss,
                                             verbose=verbose)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    return train_iter, test_iter, precision, channels_last


def train_ch6(net: nn.Module, train_iter, test_iter, num_epochs: int, lr: float,
              device=None, *, init="xavier", optimizer=None, loss=None, animator=None,
              stop=None, precision: str = "fp32", channels_last: bool | str = "auto",
              progress: bool | None = None, history: History | None = None,
              grad_clip: float | None = None, recipe: Recipe | dict | None = None,
              verbose: bool = True) -> History:
    """Train ``net`` with a GPU if there is one (d2l's ``train_ch6``); return a History.

    As in d2l: Xavier-uniform re-initialisation, plain SGD at ``lr``, cross-entropy, a
    live plot of train loss, train and test accuracy, d2l's two closing lines.

    Args:
        init: ``"xavier"`` (d2l), a function applied to every module, or ``None`` to keep
            the weights (to continue a run, pass its ``history=`` too).
        optimizer, loss: replace plain SGD / cross-entropy.
        animator: ``None`` for d2l's plot, ``False`` for none, or an ``add(x, ys)`` object.
        stop: a ``threading.Event`` or callable; when set, the run ends at the next batch.
        precision: ``"fp32"`` (d2l), ``"bf16"`` (autocast) or ``"auto"`` (the faster
            of the two where bf16 is native, timed on the first batch).
        channels_last: NHWC images and weights; ``"auto"``: whichever is faster here.
        progress: a tqdm bar; by default only on a terminal (logs get a row per epoch).
        history: a History to append to, or one that renderers have subscribed to.
        grad_clip: clip the gradients' total norm to this value (off by default).
        recipe: a ``Recipe`` (momentum, weight decay, lr schedule, label smoothing,
            init), or its fields as a dict, in place of d2l's plain SGD;
            ``optimizer=``, ``loss=`` and an ``init=`` other than ``"xavier"`` still win.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 10))
        >>> data = [(torch.rand(8, 1, 2, 2), torch.randint(0, 10, (8,)))]
        >>> history = train_ch6(net, data, data, 2, 0.1, animator=False, verbose=False)
        >>> history.status, len(history)
        ('completed', 2)
    """
    # --- everything that can be checked is checked before the first batch
    num_epochs, lr, grad_clip, device, fmt = _checked(
        num_epochs, lr, optimizer, grad_clip, device, precision, channels_last)
    recipe = Recipe.of(recipe)
    _announce(device, verbose)
    history = history if history is not None else History(device=str(device))
    loss = loss or (recipe.loss() if recipe else nn.CrossEntropyLoss())
    init = recipe.init_function() if recipe and init == "xavier" else init
    train_iter, test_iter, precision, channels_last = _prepare(
        net, train_iter, test_iter, device, init, fmt, loss, verbose, history)
    # --- the step, the record and its renderers
    step = _Step(net, *_optimizer(net, optimizer, recipe, lr, num_epochs * len(train_iter)),
                 loss, device, precision, channels_last, grad_clip)
    first = len(history)
    _start(history, net, train_iter, step, num_epochs=first + num_epochs, lr=lr,
           recipe=recipe.to_dict() if recipe else None)
    detach = attach_renderers(history, animator, progress=progress, verbose=verbose,
                              first_epoch=first, num_batches=len(train_iter))
    # --- train, then d2l's closing lines
    speed = _supervise(net, step, train_iter, test_iter, history,
                       range(first, first + num_epochs), stop, detach)
    if verbose:
        _print_closing(history, speed, device)
    return history


def _announce(device, verbose: bool) -> None:
    if verbose:
        print("training on", device)  # d2l's first line
    if device.type == "cpu":
        keep_freed_memory(verbose=verbose)  # activations reuse freed memory: faster


def _print_closing(history: History, speed: float, device) -> None:
    if history.message:
        print(history.message)
    if len(history):  # d2l's two closing lines
        print(history.summary())
        print(f"{speed:.1f} examples/sec on {device}")


def _optimizer(net, optimizer, recipe, lr, total_steps):
    if optimizer is not None:
        return optimizer, None
    if recipe is not None:
        return recipe.optimizer(net, lr, total_steps)
    return torch.optim.SGD(net.parameters(), lr=lr), None  # d2l's


def _checked(num_epochs, lr, optimizer, grad_clip, device, precision, channels_last):
    num_epochs = check_positive_int("num_epochs", num_epochs)
    lr = check_positive_number("lr", lr) if optimizer is None else lr
    if grad_clip is not None:
        grad_clip = check_positive_number("grad_clip", grad_clip, "1.0")
    device = check_device(device if device is not None else best_device())
    resolve_precision(precision, device), check_channels_last(channels_last)
    return num_epochs, lr, grad_clip, device, (precision, channels_last)


def _start(history: History, net, train_iter, step: _Step, **settings) -> None:
    """Record the run's settings, including where its data came from."""
    history.start(**settings, model=type(net).__name__,
                  batch_size=getattr(train_iter, "batch_size", None),
                  resize=getattr(train_iter, "resize", None),
                  train_examples=getattr(train_iter, "num_examples", None),
                  data_source=getattr(train_iter, "source", None),
                  data_split=getattr(train_iter, "data_split", None),
                  precision=step.precision, channels_last=step.channels_last,
                  grad_clip=step.grad_clip)


def _supervise(net, step, train_iter, test_iter, history, epochs, stop, detach) -> float:
    """Run the epochs; whatever ends them, record how and keep what was finished.

    Returns the training speed (examples/sec) of the epochs that finished.
    """
    totals = {"examples": 0, "seconds": 0.0}
    try:
        supervise(history, lambda should_stop: _run_epochs(
            net, step, train_iter, test_iter, history, epochs, should_stop, totals),
            stop=stop, describe=lambda stopped: _stop_message(stopped, history, step),
            device=step.device)
    finally:
        detach()
    return totals["examples"] / totals["seconds"] if totals["seconds"] else 0.0


def _stop_message(stopped: TrainingStopped, history: History, step: _Step) -> str:
    kept = f"{epochs_kept(len(history))} kept in the history"
    if stopped.status == "diverged":
        weights = ("the model holds the weights from the start of that epoch, the "
                   "last finite ones" if getattr(stopped, "restored", False)
                   else "the model holds the last finite weights, before that update")
        fp32 = "" if step.precision == "fp32" else ", use precision='fp32'"
        return (f"Stopped: {stopped}: the learning rate {history.settings.get('lr')} "
                f"is probably too large; try a value 3-10x smaller{fp32}, or clip the "
                f"gradients (grad_clip=1.0). {kept[0].upper()}{kept[1:]}; {weights}.")
    return (f"Stopped at epoch {len(history) + 1} ({stopped}); {kept} and the model "
            "keeps its weights. To continue: train_ch6(net, train_iter, test_iter, "
            "num_epochs, lr, device, init=None, history=history)")
