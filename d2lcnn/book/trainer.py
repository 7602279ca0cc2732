"""d2l 1.0's ``Trainer``: ``Trainer(max_epochs, num_gpus).fit(model, data)``.

The loop is d2l 1.0.3's (``training_step``, backward, optional gradient clipping,
step; then ``validation_step`` on every validation batch), with d2lcnn's fixes:

- plot values stay on the device; they are read only when the board draws a point
  (twice per epoch for ``train_loss``, once for ``val_loss``/``val_acc``), and the
  epoch's means once per epoch for the History;
- ``trainer.history`` (also returned by ``fit``) is a ``d2lcnn.History`` written with
  ``add_point``/``add_epoch``/``end``, so d2lcnn's renderers can subscribe to it;
- Ctrl-C, ``stop=`` (an Event or callable), a NaN/inf loss and out-of-memory end the
  run at a batch boundary, keeping the model, the plot and the finished epochs;
- ``num_gpus`` uses the GPUs that exist (CUDA, else Apple MPS) and says so when
  there are fewer than asked; one batch per epoch works (d2l's ``every_n`` became 0).
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from .. import devices
from ..history import History
from ..precision import choose_format
from ..preflight import check_positive_int, first_batch
from ..stopping import TrainingStopped, epochs_kept, restore_if_diverged, snapshot, supervise
from .board import HyperParameters

__all__ = ["Trainer"]

# board labels -> History series; val_acc reaches the History through add_epoch
_SERIES = {"train_loss": "train loss", "train_acc": "train acc", "val_loss": "val loss"}


def _pick_gpus(num_gpus: int, verbose: bool) -> list[torch.device]:
    """The devices ``num_gpus`` asks for that exist; say so when some are missing."""
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 0:
        raise ValueError(f"num_gpus must be an integer >= 0, got {num_gpus!r}")
    found = [torch.device(f"cuda:{i}") for i in range(min(num_gpus, devices.num_gpus()))]
    if num_gpus and not found and devices.try_gpu().type == "mps":
        found = [torch.device("mps")]
    if verbose and num_gpus > len(found):
        where = f"on {found[0]}" if found else "on the CPU"
        print(f"Trainer: num_gpus={num_gpus} asked for {num_gpus} GPU(s), "
              f"{len(found)} found: training {where}"
              + ("" if found else " (pass num_gpus=0 to train on the CPU quietly)"))
    return found


class Trainer(HyperParameters):
    """Train a d2l 1.0 ``Module`` on a ``DataModule`` (d2l 1.0's ``Trainer``).

    ``Trainer(max_epochs, num_gpus=0, gradient_clip_val=0)`` as in d2l; keyword-only
    extras: ``channels_last`` (``"auto"``, the default as for ``train_ch6``: store
    images and conv weights as NHWC when a timed step on the first batch says that is
    faster here; still fp32, so the results are d2l's up to rounding; or True/False),
    ``stop`` (a ``threading.Event`` or callable checked between batches),
    ``history`` (the History to write into, so renderers can subscribe before ``fit``;
    default a new one, ``trainer.history``) and ``verbose`` (print the device notice
    and how an early stop ended).

    Example:
        >>> trainer = Trainer(max_epochs=2)
        >>> trainer.max_epochs, trainer.gpus, trainer.hparams["gradient_clip_val"]
        (2, [], 0)
    """

    def __init__(self, max_epochs: int, num_gpus: int = 0, gradient_clip_val=0, *,
                 channels_last: bool | str = "auto", stop=None,
                 history: History | None = None, verbose: bool = True):
        self.save_hyperparameters(ignore=["channels_last", "stop", "history",
                                          "verbose"])
        if channels_last not in (True, False, "auto"):
            raise ValueError(f"channels_last must be True, False or 'auto', got "
                             f"{channels_last!r}")
        self.channels_last, self._nhwc = channels_last, False
        max_epochs = check_positive_int("max_epochs", max_epochs)  # numpy ints too
        if not gradient_clip_val >= 0:
            raise ValueError(f"gradient_clip_val must be >= 0 (0 turns clipping "
                             f"off), got {gradient_clip_val!r}")
        self.stop, self.verbose = stop, verbose
        self.gpus = _pick_gpus(num_gpus, verbose)
        self.history = history if history is not None else History(
            device=str(self.device))

    @property
    def device(self) -> torch.device:
        """Where the model trains: the first GPU found, else the CPU."""
        return self.gpus[0] if self.gpus else torch.device("cpu")

    def prepare_data(self, data) -> None:
        self.train_dataloader = data.train_dataloader()
        self.val_dataloader = data.val_dataloader()
        if self.gpus:  # d2lcnn's batches are then cut and resized on the GPU
            for name in ("train_dataloader", "val_dataloader"):
                loader = getattr(self, name)
                if hasattr(loader, "to"):
                    setattr(self, name, loader.to(self.device))
        self.num_train_batches = len(self.train_dataloader)
        self.num_val_batches = (len(self.val_dataloader)
                                if self.val_dataloader is not None else 0)
        if self.num_train_batches == 0:
            raise ValueError("the training data loader is empty: its batch size is "
                             "larger than the data set; use a smaller batch_size")

    def prepare_model(self, model) -> None:
        model.trainer = self
        model.board.xlim = [0, self.max_epochs]
        if self.gpus:
            model.to(self.device)
        self.model = model

    def prepare_batch(self, batch):
        if self.gpus:
            batch = [a.to(self.device, non_blocking=True) for a in batch]
        if self._nhwc:
            batch = [a.contiguous(memory_format=torch.channels_last) if a.dim() == 4
                     else a for a in batch]
        return batch

    def _choose_layout(self, model) -> bool:
        """NHWC when a timed step says it is faster here (``train_ch6``'s "auto")."""
        self._nhwc = False
        if self.channels_last != "auto":
            return bool(self.channels_last)
        net = getattr(model, "net", None)  # not the model: a copy would copy the data
        # peeked, not drawn: the training order is the same with and without timing
        batch = self.prepare_batch(list(first_batch(self.train_dataloader, "train")))
        if not isinstance(net, nn.Module) or len(batch) != 2 or batch[0].dim() != 4:
            return False
        X, y = batch
        try:
            if any(nn.parameter.is_lazy(p) for p in net.parameters()):
                with torch.no_grad():  # lazy layers take their shapes before the copy
                    net.eval()(X)
            return choose_format(net, X, y, self.device, "fp32", "auto",
                                 loss=model.loss)[1]
        except Exception:  # noqa: BLE001 - a net the timing cannot run keeps NCHW
            return False

    def record(self, label: str, value) -> None:
        """Add a plotted value to this epoch's sums (on the device: no sync)."""
        sums, counts = self._sums, self._counts
        sums[label] = sums.get(label, 0) + value
        counts[label] = counts.get(label, 0) + 1

    def fit(self, model, data) -> History:
        """Train ``model`` on ``data`` for ``max_epochs``; return ``self.history``."""
        self.prepare_data(data)
        self.prepare_model(model)
        self._nhwc = self._choose_layout(model)
        if self._nhwc:
            model.to(memory_format=torch.channels_last)
        self.optim = model.configure_optimizers()
        self.epoch = self.train_batch_idx = self.val_batch_idx = 0
        history, loader = self.history, self.train_dataloader
        history.start(max_epochs=self.max_epochs, lr=getattr(model, "lr", None),
                      batch_size=getattr(loader, "batch_size", None),
                      resize=getattr(loader, "resize", None),
                      data_source=getattr(loader, "source", None),
                      data_split=getattr(loader, "data_split", None),
                      model=type(model).__name__, channels_last=self._nhwc,
                      api="d2l 1.0 Trainer")
        model.board.on_point = self._on_point
        if self.device.type == "cpu":
            devices.keep_freed_memory()  # activations reuse freed memory: no page faults
        try:
            supervise(history, self._epochs, stop=self.stop,
                      describe=self._stop_message, device=self.device)
        finally:
            model.board.flush()
        if history.message and self.verbose:
            print(history.message)
        return history

    def _epochs(self, should_stop) -> None:
        self._should_stop = should_stop
        for epoch in range(self.max_epochs):
            self.epoch = epoch  # read by Module.plot, as in d2l
            self._sums, self._counts = {}, {}
            start, saved = time.perf_counter(), snapshot(self.model)
            try:
                train_time, seen = self.fit_epoch()
            except TrainingStopped as stopped:
                restore_if_diverged(self.model, saved, stopped)  # finite weights back
                raise
            self._end_epoch(train_time, seen, time.perf_counter() - start)

    def fit_epoch(self) -> tuple[float, int]:
        """One pass over the training data, then the validation data.

        Returns the seconds spent training and the number of training examples.
        """
        self.model.train()
        check_every = 1 if self.device.type == "cpu" else max(1, self.num_train_batches
                                                              // 2)
        start, seen = time.perf_counter(), 0
        for i, batch in enumerate(self.train_dataloader):
            self._should_stop()  # Ctrl-C or stop=, between batches only
            batch = self.prepare_batch(batch)
            loss = self.model.training_step(batch)
            if check_every == 1 and not torch.isfinite(loss.detach()).all():
                # checked before the update on the CPU: the weights stay finite
                raise TrainingStopped("diverged", self._diverged(loss, i))
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            if self.gradient_clip_val > 0:
                self.clip_gradients(self.gradient_clip_val, self.model)
            self.optim.step()
            seen += len(batch[-1])
            # a finite check synchronises: twice per epoch on a GPU (then the epoch's
            # starting weights are handed back)
            if check_every > 1 and (i + 1) % check_every == 0 \
                    and not torch.isfinite(loss.detach()).all():
                raise TrainingStopped("diverged", self._diverged(loss, i))
            self.train_batch_idx += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # so the timing covers the work
        train_time = time.perf_counter() - start
        if self.val_dataloader is None:
            return train_time, seen
        self.model.eval()
        with torch.no_grad():
            for batch in self.val_dataloader:
                self.model.validation_step(self.prepare_batch(batch))
                self.val_batch_idx += 1
        return train_time, seen

    def clip_gradients(self, grad_clip_val: float, model) -> None:
        """Scale all gradients so that their joint norm is at most ``grad_clip_val``."""
        params = [p for p in model.parameters() if p.requires_grad and p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, grad_clip_val)

    # ------------------------------------------------------------ History

    def _on_point(self, label: str, x: float, y: float) -> None:
        series = _SERIES.get(label, label.replace("_", " "))
        if label != "val_acc":
            self.history.add_point(x, {series: y})

    def _end_epoch(self, train_time: float, seen: int, wall: float) -> None:
        means = {label: float(total) / self._counts[label]
                 for label, total in self._sums.items()}  # one sync per series
        nan = math.nan
        self.history.add_epoch(means.get("train_loss", nan), means.get("train_acc", nan),
                               means.get("val_acc", nan),
                               seen / train_time if train_time else 0.0,
                               seen / wall if wall else 0.0, wall)

    def _diverged(self, loss, batch: int) -> str:
        return (f"the loss became {float(loss.detach().float().mean()):.4g} at epoch "
                f"{self.epoch + 1}, batch {batch + 1}")

    def _stop_message(self, stopped: TrainingStopped) -> str:
        kept = f"{epochs_kept(len(self.history))} kept in trainer.history"
        if stopped.status == "diverged":
            weights = ("the model holds the weights from the start of that epoch"
                       if getattr(stopped, "restored", False)
                       else "the model holds the last finite weights")
            return (f"Stopped: {stopped}: the learning rate "
                    f"{getattr(self.model, 'lr', '?')} is probably too large; try a "
                    "value 3-10x smaller, or clip the gradients "
                    f"(Trainer(..., gradient_clip_val=1)). {kept}; {weights}.")
        return (f"Stopped at epoch {self.epoch + 1} ({stopped}); {kept} and the model "
                "keeps its weights.")
