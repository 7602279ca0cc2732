"""A learning-rate sweep: one short run per learning rate, read on the validation split."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .history import History
from .plot import PngFigure, in_notebook
from .train import train_ch6
from .utils import positive_number

__all__ = ["SweepResult", "lr_sweep"]


@dataclass(frozen=True, repr=False)
class SweepResult:
    """The sweep's runs: ``val_acc[i]`` is ``lrs[i]``'s last validation accuracy (nan: the
    run diverged); ``histories[i]`` its History, whose "test acc" is the validation split's."""

    lrs: tuple[float, ...]
    val_acc: tuple[float, ...]
    histories: tuple[History, ...]

    def _best(self) -> tuple[float, float] | None:  # (lr, val acc); None: all diverged
        finished = [(lr, acc) for lr, acc in zip(self.lrs, self.val_acc) if not math.isnan(acc)]
        return max(finished, key=lambda run: run[1]) if finished else None  # ties: first lr

    @property
    def best_lr(self) -> float:
        """The learning rate with the highest validation accuracy (a diverged run never)."""
        if (best := self._best()) is None:
            raise ValueError("every run of the sweep diverged, so no lr is chosen; sweep "
                             "smaller learning rates (e.g. 10x smaller)")
        return best[0]

    def plot(self, ax=None):
        """Validation accuracy against lr on a log axis, the chosen lr marked; the axes."""
        if ax is None:
            ax = PngFigure(figsize=(3.5, 2.5)).add_subplot()
        ax.plot(self.lrs, self.val_acc, "o-", label="validation")
        if diverged := [lr for lr, acc in zip(self.lrs, self.val_acc) if math.isnan(acc)]:
            ax.plot(diverged, [0] * len(diverged), "rx", label="diverged")
        if best := self._best():
            ax.plot(*best, "r*", markersize=12, label=f"chosen: lr {best[0]:g}")
        ax.set(xscale="log", xlabel="learning rate", ylabel="validation accuracy")
        ax.legend()
        if in_notebook() and isinstance(ax.figure, PngFigure):  # pyplot's show themselves
            from IPython.display import display

            display(ax.figure)
        return ax

    def __str__(self) -> str:
        lines = [f"lr {lr:<8g} " + (h.status if math.isnan(acc) else f"val acc {acc:.3f}")
                 for lr, acc, h in zip(self.lrs, self.val_acc, self.histories)]
        best = self._best()
        return "\n".join([*lines, "chosen: none, every run diverged; try smaller lrs" if best
                          is None else f"chosen: lr {best[0]:g} (val acc {best[1]:.3f}), "
                          "selected on the validation split"])

    __repr__ = __str__


def lr_sweep(make_net, train_iter, valid_iter, lrs, num_epochs: int = 1, *, seed: int = 0,
             verbose: bool = True, **train_kwargs) -> SweepResult:
    """Train ``make_net()`` for ``num_epochs`` at each of ``lrs`` with ``train_ch6``; keep
    the validation accuracy. Each run starts at ``torch.manual_seed(seed)``, so from the same
    weights; ``train_kwargs`` go to ``train_ch6``. Choose on ``valid_iter``, never the test set.

    Example:
        >>> data = [(torch.rand(8, 1, 2, 2), torch.randint(0, 10, (8,)))]
        >>> result = lr_sweep(lambda: nn.Sequential(nn.Flatten(), nn.Linear(4, 10)),
        ...                   data, data, [0.01, 0.1], verbose=False)
        >>> result.lrs, result.best_lr in result.lrs
        ((0.01, 0.1), True)
    """
    if isinstance(make_net, nn.Module) or not callable(make_net):
        raise TypeError(f"make_net must be a function that builds a fresh net, got "
                        f"{type(make_net).__name__}; pass e.g. lambda: LeNet()")
    if valid_iter is None or getattr(valid_iter, "split", "valid") == "test":
        raise ValueError("valid_iter must be a validation split, not the test set (choosing "
                         "on it makes the test accuracy optimistic); load the data with "
                         "load_data_fashion_mnist(..., valid=5000) and pass its valid_iter")
    lrs = tuple(positive_number("lr", lr) for lr in lrs)
    if not lrs:
        raise ValueError("lrs is empty; pass a grid such as [0.01, 0.03, 0.1, 0.3]")
    accs, histories = [], []
    for lr in lrs:
        torch.manual_seed(seed)
        history = train_ch6(make_net(), train_iter, valid_iter, num_epochs, lr,
                            animator=False, verbose=False, **train_kwargs)
        done = history.status == "completed" and len(history)
        accs.append(history.test_acc[-1] if done else math.nan)
        histories.append(history)
        if verbose:
            print(f"lr {lr:g}: " + (f"val acc {accs[-1]:.3f}" if done else history.status)
                  + f" ({sum(history.wall_time):.1f} s)", flush=True)
        if history.status in ("stopped", "interrupted"):  # Ctrl-C or stop=: end the sweep
            break
    return SweepResult(lrs[:len(accs)], tuple(accs), tuple(histories))
