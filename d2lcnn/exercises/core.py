"""The exercise registry, ``check``, and the matchers the chapter checkers share.

A checker takes the learner's answer and returns ``None`` when it is right, else a
hint: one sentence that points at the mistake without giving the answer away. The
expected values are computed from the chapter's own nets when the checker runs, so
they stay true when a net changes.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

Checker = Callable[[object], "str | None"]


@dataclass(frozen=True)
class Exercise:
    """One checkable exercise: its id ("lenet.params"), what it asks, its checker."""

    id: str
    question: str
    checker: Checker


_REGISTRY: dict[str, Exercise] = {}


def exercise(exercise_id: str, question: str) -> Callable[[Checker], Checker]:
    """Register the decorated checker under ``exercise_id`` ("<chapter>.<name>").

    Example:
        >>> @exercise("demo.two", "What is 1 + 1?")
        ... def _two(answer):
        ...     return match_number(answer, 2, [(3, "that is 1 + 2")])
        >>> check("demo.two", 3)
        demo.two: not yet. Hint: that is 1 + 2
        False
        >>> del _REGISTRY["demo.two"]  # a demo only: keep the registry to the chapters
    """
    if exercise_id.count(".") != 1:
        raise ValueError(f"exercise ids are '<chapter>.<name>' with one dot, got {exercise_id!r}")

    def register(checker: Checker) -> Checker:
        _REGISTRY[exercise_id] = Exercise(exercise_id, question, checker)
        return checker

    return register


def exercises(chapter: str | None = None) -> list[str]:
    """The registered exercise ids, sorted, optionally of one chapter only.

    Example:
        >>> "lenet.params" in exercises("lenet")
        True
    """
    _load_chapters()
    return sorted(i for i in _REGISTRY if chapter is None or i.split(".")[0] == chapter)


def check(exercise_id: str, answer: object) -> bool | None:
    """Print in one line whether ``answer`` is right; when wrong, a hint. Blank: None.

    ``None`` or ``...`` is a blank answer: it prints "not answered yet" and returns
    None, so a notebook whose answers are still empty runs unattended.

    Example:
        >>> check("lenet.params", None)
        lenet.params: not answered yet
        >>> check("lenet.params", 1)
        lenet.params: not yet. Hint: far too low
        False
    """
    _load_chapters()
    if exercise_id not in _REGISTRY:
        chapter = exercise_id.split(".")[0]
        same = [i for i in sorted(_REGISTRY) if i.startswith(chapter + ".")]
        raise ValueError(
            f"unknown exercise {exercise_id!r}; valid ids are "
            f"{', '.join(same or sorted(_REGISTRY))}"
        )
    if answer is None or answer is Ellipsis:
        print(f"{exercise_id}: not answered yet")
        return None
    hint = _REGISTRY[exercise_id].checker(answer)
    if hint is None:
        print(f"{exercise_id}: right!")
        return True
    print(f"{exercise_id}: not yet. Hint: {hint}")
    return False


def _load_chapters() -> None:
    from . import classic, modern  # noqa: F401  (registration happens at import)


def match_number(
    answer: object,
    expected: float,
    wrong: Iterable[tuple[float, str]] = (),
    *,
    rel: float = 0.0,
) -> str | None:
    """None if ``answer`` equals ``expected`` (within ``rel``), else the fitting hint.

    ``wrong`` pairs typical wrong values with their hints; any other value gets a
    "too high/too low" hint that does not give the answer away.

    Example:
        >>> match_number(10, 12, [(10, "that is without padding")])
        'that is without padding'
        >>> match_number(2.0, 2, rel=0.01) is None
        True
    """
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):  # numpy too
        if isinstance(answer, torch.Tensor) and answer.numel() == 1:
            answer = answer.item()
        else:
            return f"the answer is a number, got {type(answer).__name__} {answer!r}"

    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12 if rel else 0.5)

    if close(answer, expected):
        return None
    for value, hint in wrong:
        if value != expected and close(answer, value):
            return hint
    ratio = answer / expected if expected else math.inf
    if ratio > 3 or ratio < 1 / 3:
        return f"far too {'high' if ratio > 1 else 'low'}"
    return f"close, but too {'high' if answer > expected else 'low'}"


def match_shape(
    answer: object, expected: Sequence[int], wrong: Iterable[tuple[tuple, str]] = ()
) -> str | None:
    """None if ``answer`` is the shape ``expected`` (a tuple, list or torch.Size).

    Example:
        >>> match_shape((16, 10, 10), (16, 5, 5), [((16, 10, 10), "before pooling")])
        'before pooling'
    """
    if isinstance(answer, int):
        answer = (answer,)
    if not isinstance(answer, (tuple, list, torch.Size)):
        return f"the answer is a shape such as (6, 28, 28), got {answer!r}"
    got, want = tuple(answer), tuple(expected)
    if got == want:
        return None
    for value, hint in wrong:
        if tuple(value) != want and got == tuple(value):
            return hint
    if len(got) == len(want) + 1 and got[1:] == want:
        return "right numbers, but leave out the batch dimension"
    if len(got) != len(want):
        return f"the answer has {len(want)} numbers ({_shape_words(len(want))})"
    wrong_at = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    names = _shape_words(len(want)).split(", ")
    return "check the " + " and ".join(names[i] for i in wrong_at)


def _shape_words(n: int) -> str:
    return {1: "the channels", 2: "height, width", 3: "channels, height, width",
            4: "batch, channels, height, width"}.get(n, f"{n} dimensions")  # fmt: skip


def match_function(
    answer: object,
    reference: Callable,
    cases: Sequence[tuple],
    wrong: Iterable[tuple[Callable, str]] = (),
    *,
    atol: float = 1e-5,
) -> str | None:
    """Call ``answer`` on each case and compare it with ``reference`` (and wrong refs).

    Example:
        >>> match_function(lambda n: n - 2, lambda n: n - 4, [(28,), (10,)],
        ...                [(lambda n: n - 2, "you forgot one side")])
        'you forgot one side'
    """
    if not callable(answer):
        return f"the answer is a function (def ... or lambda), got {answer!r}"
    got = []
    for args in cases:
        try:
            got.append(answer(*args))
        except Exception as error:  # the learner's code: report, don't crash
            return f"your function raised {type(error).__name__} on {args}: {error}"
    if all(_same(g, reference(*a), atol) for g, a in zip(got, cases)):
        return None
    for other, hint in wrong:
        if all(_same(g, other(*a), atol) for g, a in zip(got, cases)):
            return hint
    bad = next(a for g, a in zip(got, cases) if not _same(g, reference(*a), atol))
    return f"your function gives a wrong result for the input {_brief(bad)}"


def _same(a: object, b: object, atol: float) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b).double()
        return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol))
    return a == b


def _brief(args: tuple) -> str:
    parts = [f"a tensor of shape {tuple(a.shape)}" if isinstance(a, torch.Tensor)
             else repr(a) for a in args]  # fmt: skip
    return ", ".join(parts)


def params_of(net: object) -> int | str:
    """Parameters of a learner's net, or a hint saying why it is not one.

    Example:
        >>> params_of(nn.Linear(3, 2))
        8
    """
    if not isinstance(net, nn.Module):
        return f"the answer is a network (an nn.Module), got {type(net).__name__}"
    return sum(p.numel() for p in net.parameters())


def output_problem(net: nn.Module, input_shape: tuple, classes: int = 10) -> str | None:
    """A hint if ``net`` does not map ``input_shape`` to (batch, classes) logits.

    Example:
        >>> output_problem(nn.Sequential(nn.Flatten(), nn.Linear(4, 10)), (2, 1, 2, 2))
    """
    was = net.training
    try:
        with torch.no_grad():
            out = net.eval()(torch.zeros(input_shape))
    except Exception as error:  # the learner's net: report, don't crash
        return f"your net fails on an input of shape {input_shape}: {error}"
    finally:
        net.train(was)  # the learner's net comes back in the mode it was in
    if tuple(out.shape) != (input_shape[0], classes):
        return (f"your net's output has shape {tuple(out.shape)}, it should be "
                f"(batch, {classes})")  # fmt: skip
    return None


def on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """Build a net on the meta device: parameters without memory, for counting.

    Example:
        >>> on_meta(lambda: nn.Linear(4096, 4096)).weight.is_meta
        True
    """
    with torch.device("meta"):
        return build()
