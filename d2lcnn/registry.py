"""A tiny model registry: chapters register their nets, tools look them up by name."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from torch import nn

__all__ = ["register_model", "get_model", "list_models", "model_chapter"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str | None = None):
    """Decorator registering a model builder or class under ``name`` (default: lowercased).

    Example:
        >>> @register_model("tiny")
        ... def tiny(num_classes=10):
        ...     return nn.Linear(4, num_classes)
        >>> "tiny" in list_models()
        True
        >>> _ = _MODELS.pop("tiny")  # keep the example out of the real registry
    """

    def wrap(builder):
        _MODELS[name or builder.__name__.lower()] = builder
        return builder

    return wrap


def _load_chapter_models() -> None:
    # The generated chapter modules register themselves when imported.
    from . import models  # noqa: F401


def list_models() -> list[str]:
    """Names of all registered models, sorted.

    Example:
        >>> list_models()[:3]
        ['alexnet', 'densenet', 'googlenet']
    """
    _load_chapter_models()
    return sorted(_MODELS)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` with keyword arguments (e.g. ``num_classes``).

    Example:
        >>> sum(p.numel() for p in get_model("lenet").parameters())
        61706
    """
    return _builder(name)(**kwargs)


def _builder(name: str) -> Callable[..., nn.Module]:
    _load_chapter_models()
    if name not in _MODELS:
        raise ValueError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(_MODELS))}"
        )
    return _MODELS[name]


def model_chapter(name: str) -> str:
    """The notebook that defines model ``name`` (from its generated module's header).

    Example:
        >>> model_chapter("alexnet")
        'notebooks/02_alexnet.ipynb'
    """
    module = _builder(name).__module__
    doc = sys.modules[module].__doc__ or ""
    found = re.search(r"^Defined in (\S+\.ipynb)$", doc, re.MULTILINE)
    if found is None:
        raise ValueError(
            f"model {name!r} is registered by {module}, which no "
            f"notebook generated (no 'Defined in' line); models from #@save cells have one"
        )
    return found.group(1)
