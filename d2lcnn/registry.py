"""A tiny model registry: chapters register their nets, tools look them up by name."""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable

from torch import nn

__all__ = ["register_model", "get_model", "list_models", "model_chapter",
           "model_settings", "chapter_model"]

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


def model_settings(name: str, profile: str) -> dict:
    """The chapter's training settings of model ``name`` in ``profile``.

    They are the ``SETTINGS`` of the chapter's profile cell (exported with its
    ``#@save`` cells), the same values the notebook, the CLI and the panel use. A
    chapter with several models may give one its own learning rate as
    ``lr_<variant>`` (``lr_modern`` for ``lenet_modern``).

    Example:
        >>> model_settings("alexnet", "full")["lr"], model_settings("lenet_modern", "full")["lr"]
        (0.01, 0.3)
    """
    module = sys.modules[_builder(name).__module__]
    table = getattr(module, "SETTINGS", None)
    if table is None:
        raise ValueError(f"model {name!r} has no chapter settings ({module.__name__} "
                         "defines no SETTINGS); pass the hyperparameters yourself")
    if profile not in table:
        raise ValueError(f"profile must be one of {sorted(table)}, got {profile!r}")
    settings = dict(table[profile])
    variant = name.split("_", 1)[1] if "_" in name else ""
    if f"lr_{variant}" in settings:
        settings["lr"] = settings[f"lr_{variant}"]
    return settings


def chapter_model(name: str, profile: str, resize: int) -> nn.Module:
    """Model ``name`` as its chapter trains it in ``profile``: the chapter's own builder
    arguments (VGG's ``ratio``, MobileNet's ``width_mult``) and, where the builder takes
    one, its classifier sized for ``resize``-pixel images.

    Example:
        >>> chapter_model("vgg11", "cpu", 64).features[0][0].out_channels  # 64 / ratio 4
        16
    """
    try:
        chapter = model_settings(name, profile)
    except ValueError:  # a model without a chapter: its builder's defaults
        chapter = {}
    takes = inspect.signature(_builder(name)).parameters
    kwargs = {key: chapter[key] for key in takes if key in chapter}
    if "resolution" in takes:
        kwargs["resolution"] = resize
    return get_model(name, **kwargs)
