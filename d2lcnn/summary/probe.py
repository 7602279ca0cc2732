"""The probe: one forward pass under hooks, recording every module call in order.

``run`` is the only place that executes a net; the shape diagnosis (``shapes``), the
table (``table``) and the diagrams (``d2lcnn.draw``) all read the ``Trace`` it
returns. By default the pass runs on the ``meta`` device (shapes only, no arithmetic,
no memory); nets whose forward needs real values fall back to their own device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

INPUT = -1  # the source index of the net's own input in Call.sources


@dataclass(frozen=True)
class Feed:
    """What the probe feeds the net: zeros of ``shape``, or the example ``args``.

    Example:
        >>> Feed(shape=(1, 1, 4, 4)).describe()
        'one zero tensor of shape (1, 1, 4, 4)'
    """

    shape: tuple[int, ...] | None = None
    args: tuple = ()

    def describe(self) -> str:
        if self.shape is not None:
            return f"one zero tensor of shape {self.shape}"
        return f"the example input {shape_of(self.args)}"

    def on(self, device: torch.device, dtype: torch.dtype) -> tuple:
        """The forward's positional arguments, placed on ``device``."""
        if self.shape is not None:
            return (torch.zeros(self.shape, device=device, dtype=dtype),)
        return tuple(_moved(arg, device) for arg in self.args)


@dataclass
class Call:
    """One module call: where it sits, what it got and gave, what it cost."""

    module: nn.Module
    name: str
    depth: int
    index: int
    parent: int | None
    input_shape: tuple | None
    first_call: bool  # a module run twice shows its parameters once
    flops_before: int
    params: int = 0
    output_shape: tuple = ()
    flops: int = 0
    sources: frozenset[int] = frozenset()  # calls (or INPUT) whose outputs fed this one
    output_sources: frozenset[int] = frozenset()  # calls that made its output
    output_merge: str | None = None  # the op that joined paths into it (cat, add)


@dataclass
class Trace:
    """The calls of one pass, in execution order; ``failed`` is the innermost module
    running when ``error`` was raised (both None after a clean pass)."""

    calls: list[Call]
    error: Exception | None = None
    failed: Call | None = None
    children: dict[int, list[int]] = field(default_factory=dict)
    flops: int = 0  # the whole pass's, the backward's too when asked for


def run(
    net: nn.Module,
    feed: Feed | tuple[int, ...],
    *,
    device: str | torch.device | None,
    count: bool,
    track: bool = False,
    backward: bool = False,
) -> Trace:
    """One hooked forward pass; records the calls, or the innermost failing call.

    ``count`` adds FLOPs per call; ``track`` records which calls fed each call
    (``Call.sources``), following tensors through functional ops such as ``F.relu``;
    ``backward`` runs a backward pass after it (``Trace.flops`` then counts both).

    Example:
        >>> trace = run(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (2, 4),
        ...             device=None, count=False)
        >>> [(c.name, c.output_shape) for c in trace.calls]
        [('', (2, 3)), ('0', (2, 3)), ('1', (2, 3))]
    """
    feed = feed if isinstance(feed, Feed) else Feed(shape=tuple(feed))
    if device is None and has_lazy(net):
        device = device_of(net)  # lazy layers get their shapes from a real forward
    if device is None:
        trace = _run_on(net, feed, torch.device("meta"), count, track, backward)
        if trace.error is None or not _needs_real_values(trace):
            return trace
        device = device_of(net)  # forward needs real values: use the net's device
    return _run_on(net, feed, torch.device(device), count, track, backward)


def _run_on(net: nn.Module, feed: Feed, device: torch.device, count: bool, track: bool,
            backward: bool) -> Trace:
    names = {m: name for name, m in net.named_modules()}
    trace = Trace(calls=[])
    stack: list[Call] = []
    seen: set[nn.Module] = set()
    counter = FlopCounterMode(display=False, custom_mapping=FORMULAS) if count else None
    flow = _Flow() if track else None

    def total_flops() -> int:
        return counter.get_total_flops() if counter is not None else 0

    def pre_hook(module: nn.Module, args: tuple) -> None:
        parent = stack[-1].index if stack else None
        call = Call(module, names[module], len(stack), len(trace.calls), parent,
                    _first_shape(args), module not in seen, total_flops())  # fmt: skip
        if flow is not None:
            call.sources = flow.sources(args)
        if parent is not None:
            trace.children.setdefault(parent, []).append(call.index)
        seen.add(module)
        trace.calls.append(call)
        stack.append(call)

    def post_hook(module: nn.Module, args: tuple, output: object) -> None:
        call = stack.pop()
        if call.first_call:  # counted after the call, when lazy layers have shapes
            call.params = sum(p.numel() for p in module.parameters())
        call.output_shape = shape_of(output)
        call.flops = total_flops() - call.flops_before
        if flow is not None:
            call.output_sources = flow.sources(output)
            call.output_merge = flow.merge_of(output)
            flow.mark(output, frozenset({call.index}))

    handles = []
    for module in names:
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    try:
        with eval_mode(net), torch.set_grad_enabled(backward), _maybe(counter):
            args = feed.on(device, _dtype_of(net))
            if flow is not None:
                flow.mark(args, frozenset({INPUT}))
            with _maybe(flow):
                output = _forward_on(net, device)(*args)
            if backward:  # into the parameters' .grad, restored after
                grads = [(p, p.grad) for p in net.parameters()]
                torch.autograd.backward([t.sum() for t in _tensors(output) if t.requires_grad])
                for p, grad in grads:
                    p.grad = grad
            trace.flops = total_flops()
    except Exception as error:  # reported with the failing layer by the caller
        trace.error = error
        trace.failed = stack[-1] if stack else None
    finally:
        for handle in handles:
            handle.remove()
    return trace


def conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding,
                       _dilation, transposed, _output_padding, _groups, output_mask,
                       out_shape=None, **kwargs) -> int:
    """FLOPs of ``aten.convolution_backward``: each gradient asked for (the input's,
    the weights') costs one forward. PyTorch's own formula (2.14) counts the weights'
    gradient of a grouped conv ``groups`` times (as if dense).

    Example:
        >>> conv_backward_flop((1, 8, 4, 4), (1, 8, 4, 4), (8, 1, 3, 3), None, 1, 1,
        ...                    1, False, 0, 8, [False, True, False])  # 2*8*4*4*1*9
        2304
    """
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (bool(output_mask[0]) + bool(output_mask[1]))


FORMULAS = {torch.ops.aten.convolution_backward: conv_backward_flop}  # over PyTorch's


def _maybe(mode: AbstractContextManager | None) -> AbstractContextManager:
    return nullcontext() if mode is None else mode


class _Flow(TorchFunctionMode):
    """Follows tensors through every torch op: which module calls each one came from.

    Tensors are keyed by ``id``; keeping them alive until the pass ends keeps the ids
    unique (meta tensors cost nothing).
    """

    def __init__(self) -> None:
        super().__init__()
        self.origin: dict[int, frozenset[int]] = {}
        self.merge: dict[int, str] = {}  # id -> the last op that joined two paths
        self.alive: list[torch.Tensor] = []

    def sources(self, obj: object) -> frozenset[int]:
        found: frozenset[int] = frozenset()
        for tensor in _tensors(obj):
            found |= self.origin.get(id(tensor), frozenset())
        return found

    def merge_of(self, obj: object) -> str | None:
        merges = (self.merge[id(t)] for t in _tensors(obj) if id(t) in self.merge)
        return next(merges, None)

    def mark(
        self, obj: object, sources: frozenset[int], merge: str | None = None
    ) -> None:
        for tensor in _tensors(obj):
            self.origin[id(tensor)] = sources
            self.merge.pop(id(tensor), None)
            if merge is not None:
                self.merge[id(tensor)] = merge
            self.alive.append(tensor)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        inputs = [t for t in _tensors((args, kwargs)) if id(t) in self.origin]
        paths = {self.origin[id(t)] for t in inputs}  # read before marking: Y += X
        if paths:
            joined = len(paths) > 1  # cat, add: two paths meet here
            merge = getattr(func, "__name__", "op") if joined else self.merge_of(inputs)
            self.mark(output, frozenset().union(*paths), merge)
        return output


def _tensors(obj: object) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _moved(obj: object, device: torch.device) -> object:
    if isinstance(obj, torch.Tensor):
        if device.type == "meta":  # a parameter's copy needs a gradient as it did
            return torch.empty_like(obj, device=device).requires_grad_(obj.requires_grad)
        return obj.to(device)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_moved(item, device) for item in obj)
    if isinstance(obj, dict):
        return {key: _moved(value, device) for key, value in obj.items()}
    return obj


def _forward_on(net: nn.Module, device: torch.device):
    """A forward function running ``net`` on ``device`` without moving ``net``."""
    if _same_device(device, device_of(net)):
        return net
    # functional_call swaps in copies (meta copies are free) and leaves net untouched
    copies: dict[int, torch.Tensor] = {}  # tied weights must stay one tensor
    state = {}
    for name, tensor in net.state_dict(keep_vars=True).items():
        if id(tensor) not in copies:
            copies[id(tensor)] = _moved(tensor, device)
        state[name] = copies[id(tensor)]
    return lambda *args: functional_call(net, state, args)


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[None]:
    """Run ``net`` in eval mode, restoring every module's own training flag after.

    Example:
        >>> net = nn.Dropout().train()
        >>> with eval_mode(net):
        ...     net.training
        False
    """
    flags = {m: m.training for m in net.modules()}
    net.eval()
    try:
        yield
    finally:
        for module, training in flags.items():
            module.training = training


def has_lazy(net: nn.Module) -> bool:
    """True if ``net`` has lazy parameters (shapes fixed by the first forward).

    Example:
        >>> has_lazy(nn.LazyLinear(3)), has_lazy(nn.Linear(2, 3))
        (True, False)
    """
    return any(nn.parameter.is_lazy(t) for t in [*net.parameters(), *net.buffers()])


def device_of(net: nn.Module) -> torch.device:
    """The device of ``net``'s first parameter or buffer (CPU for none).

    Example:
        >>> device_of(nn.ReLU())
        device(type='cpu')
    """
    for tensor in [*net.parameters(), *net.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _same_device(a: torch.device, b: torch.device) -> bool:
    # 'cuda' and 'cuda:0' name the same device when 0 is the current one
    if a.type != b.type:
        return False
    if a.type == "cuda":
        current = torch.cuda.current_device()
        return (a.index if a.index is not None else current) == (
            b.index if b.index is not None else current
        )
    return a.index == b.index or None in (a.index, b.index)


def _dtype_of(net: nn.Module) -> torch.dtype:
    for tensor in net.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def _needs_real_values(trace: Trace) -> bool:
    """True if the meta pass failed for want of real values, not because of shapes."""
    error = trace.error
    return isinstance(error, NotImplementedError) or "meta" in str(error).lower()


def _first_shape(args: tuple) -> tuple | None:
    for arg in args:
        if isinstance(arg, torch.Tensor):
            return tuple(arg.shape)
    return None


def shape_of(output: object) -> tuple:
    """The shape of a tensor, or the nested shapes of a tuple/list of them.

    Example:
        >>> shape_of((torch.zeros(2, 3), torch.zeros(4)))
        ((2, 3), (4,))
    """
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        return tuple(shape_of(o) for o in output)
    return ()
