"""A tiny model registry: chapters register their nets, tools look them up by name."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["register_model", "get_model", "list_models"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str | None = None):
    """Decorator registering a model builder or class under ``name`` (default: lowercased).

    Example:
        >>> @register_model("tiny")
        ... def tiny(num_classes=10):
        ...     return nn.Linear(4, num_classes)
        >>> "tiny" in list_models()
        True
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
        >>> isinstance(list_models(), list)
        True
    """
    _load_chapter_models()
    return sorted(_MODELS)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` with keyword arguments (e.g. ``num_classes``).

    Example:
        >>> sum(p.numel() for p in get_model("lenet").parameters())
        61706
    """
    _load_chapter_models()
    if name not in _MODELS:
        raise ValueError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(_MODELS))}"
        )
    return _MODELS[name](**kwargs)
