"""What the panel knows about a net before training it: shapes, costs, step time.

Probes build the net on the ``meta`` device (shapes only: no weights, no memory), so
moving a slider is cheap even for VGG at 224x224. A ``make_net`` that moves its net
(``Net().to("cpu")``) cannot run there; the probe then builds it for real on the CPU.
Timing goes through ``train_ch6`` itself on a few synthetic batches: one training
loop in the package, not a second hand-written one here.
"""

from __future__ import annotations

import torch

from .settings import TRAIN_KEYS

__all__ = ["NetProbe", "si", "time_training_steps"]


def si(n: float) -> str:
    """A count with an SI suffix, three significant digits.

    Example:
        >>> si(61_706), si(429_000_000), si(12)
        ('61.7K', '429M', '12')
    """
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


class NetProbe:
    """The net for a (resolution, knobs) setting, with its shape problem and costs.

    Every answer is cached by ``(resize, knob values)``: the net depends on nothing
    else (batch size, epochs and lr do not change its layers).

    Example:
        >>> from types import SimpleNamespace
        >>> from torch import nn
        >>> probe = NetProbe(lambda s: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)))
        >>> probe.costs(SimpleNamespace(resize=28))
        '7.85K parameters · 15.7K FLOPs per image'
        >>> probe.problem(SimpleNamespace(resize=20))[:32]
        'resolution 20x20 does not fit th'
        >>> probe.build(SimpleNamespace(resize=28))[0][1].weight.device.type
        'meta'
    """

    def __init__(self, make_net, channels: int = 1, knob_names=()):
        self.make_net = make_net
        self.channels = channels
        self.knob_names = tuple(knob_names)
        self._cache: dict = {}  # (question, key) -> answer

    def key(self, settings) -> tuple:
        return settings.resize, tuple(getattr(settings, n) for n in self.knob_names)

    def _memo(self, question: str, key, compute):
        if (question, key) not in self._cache:
            self._cache[question, key] = compute()
        return self._cache[question, key]

    def build(self, settings):
        """``(net, '')`` for these settings, or ``(None, why make_net failed)``."""
        return self._memo("net", self.key(settings), lambda: self._build(settings))

    def _build(self, settings):
        try:
            with torch.device("meta"):
                return self.make_net(settings), ""
        except Exception:  # e.g. .to("cpu") cannot copy meta tensors: build for real
            pass
        try:
            return self.make_net(settings), ""
        except Exception as error:  # shown in the info line; a run shows it again
            return None, f"make_net failed: {type(error).__name__}: {error}"

    def problem(self, settings) -> str:
        """Why the net cannot take these settings' input size ('' when it can)."""
        key = self.key(settings)
        return self._memo("problem", key, lambda: self._problem(settings))

    def _problem(self, settings) -> str:
        from ..summary import check_input_shape

        net, _ = self.build(settings)
        if net is None:
            return ""  # not a shape problem: the info line and a run show it
        r = settings.resize
        try:
            check_input_shape(net, (1, self.channels, r, r))
        except ValueError as error:  # ShapeError names the layer and the fix
            return f"resolution {r}x{r} does not fit this net: {error}"
        except Exception:  # anything else is a run's to report, with its traceback
            pass
        return ""

    def costs(self, settings) -> str:
        """Parameters and FLOPs per image (a FLOP count traces the net: cached)."""
        return self._memo("costs", self.key(settings), lambda: self._costs(settings))

    def _costs(self, settings) -> str:
        from ..summary import count_flops, count_params

        net, _ = self.build(settings)
        r = settings.resize
        try:
            return (
                f"{si(count_params(net))} parameters · "
                f"{si(count_flops(net, (1, self.channels, r, r)))} FLOPs per image"
            )
        except Exception as error:
            return f"costs unavailable ({type(error).__name__})"

    def min_size(self, settings) -> int:
        """The smallest side the net takes (1 when it cannot be probed)."""
        key = self.key(settings)[1]  # resolution does not change the answer
        return self._memo("min size", key, lambda: self._min_size(settings))

    def _min_size(self, settings) -> int:
        from ..summary import min_input_size

        net, _ = self.build(settings)
        try:
            return min_input_size(net, self.channels) if net is not None else 1
        except Exception:  # the check before training reports the real problem
            return 1


def time_training_steps(make_net, settings, *, channels=1, device, stop=None):
    """Seconds per training example and the batch timed, through ``train_ch6``.

    Two one-epoch passes over three random batches: the first warms up (allocations,
    kernels), the second is the one measured. On a CPU a step at 224x224 can take
    seconds, so a batch of at most 16 is timed and the result scaled per example.

    Example:
        >>> from types import SimpleNamespace
        >>> from torch import nn
        >>> s = SimpleNamespace(batch_size=8, resize=28, lr=0.1)
        >>> per_example, batch = time_training_steps(
        ...     lambda s: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), s,
        ...     device=torch.device("cpu"))
        >>> per_example > 0, batch
        (True, 8)
    """
    from ..train import train_ch6

    device = torch.device(device)
    batch = settings.batch_size
    if device.type == "cpu":
        batch = min(batch, 16)
    r = settings.resize
    X = torch.rand(batch, channels, r, r)
    y = torch.randint(0, 10, (batch,))
    train_iter, test_iter = [(X, y)] * 3, [(X[:2], y[:2])]
    extra = {k: getattr(settings, k) for k in TRAIN_KEYS if hasattr(settings, k)}
    history = train_ch6(make_net(settings), train_iter, test_iter, 2, settings.lr,
                        device, animator=False, stop=stop, verbose=False,
                        progress=False, **extra)
    if len(history) < 2:  # stopped, or diverged on random data
        raise RuntimeError(
            f"timing ended early ({history.status}: {history.message}); "
            "try again, or with a smaller learning rate"
        )
    return 1 / history.examples_per_sec[-1], batch
