"""A chapter's settings in one place, the profiles that pick them, and the model registry.

Profiles: ``full`` (the book's), ``cpu`` (minutes on a 2-core CPU), ``smoke`` (seconds on the
mini set); the notebook, CLI, panel and league all read ``settings_for`` and ``build_model``."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from types import SimpleNamespace

from torch import nn

from .utils import best_device, positive_int, positive_number

__all__ = ["PROFILES", "Settings", "build_model", "choose_profile", "get_model",
           "list_models", "profile_name", "register_model", "settings_for"]

PROFILES = ("full", "cpu", "smoke")
PROFILE_ENV = "D2LCNN_PROFILE"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """One profile's hyperparameters; a chapter subclasses it for its experiments.

    Example:
        >>> Settings(lr=0.9, num_epochs=10, batch_size=256).replace(lr=0.3).lr
        0.3
    """

    lr: float
    num_epochs: int
    batch_size: int
    resize: int | None = None  # None: the images' own 28 x 28
    subset: int | None = None  # training images (class-balanced); None: all
    test_subset: int | None = None
    precision: str = "fp32"  # "bf16" or "auto" (see train_ch6)
    recipe: dict | None = None  # d2lcnn.recipe.Recipe fields; None: the book's SGD
    source: str = "auto"  # the smoke profile reads the bundled "mini" set

    def __post_init__(self):
        positive_number("lr", self.lr)
        positive_int("num_epochs", self.num_epochs)
        positive_int("batch_size", self.batch_size)

    def replace(self, **changes) -> Settings:
        """A copy with ``changes`` (the settings are frozen: no cell changes them)."""
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self))


def profile_name() -> str:
    """The active profile: ``$D2LCNN_PROFILE`` if set, else ``full`` with a GPU, else ``cpu``.

    Example:
        >>> profile_name() in PROFILES
        True
    """
    name = os.environ.get(PROFILE_ENV, "").strip().lower()
    if name and name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r} is not a profile; use one of "
                         f"{', '.join(PROFILES)}, or unset it")
    return name or ("cpu" if best_device().type == "cpu" else "full")


def choose_profile(settings: dict | None = None, *, verbose: bool = True, **profiles):
    """The active profile's entry of ``settings`` (``{profile: Settings}``), printed.

    Or as keywords ``full=..., cpu=..., smoke=...``: plain dicts (same keys) become namespaces.

    Example:
        >>> SETTINGS = {p: Settings(lr=0.9, num_epochs=n, batch_size=256)
        ...             for p, n in (("full", 10), ("cpu", 10), ("smoke", 1))}
        >>> choose_profile(SETTINGS, verbose=False).lr
        0.9
    """
    table = dict(settings or {}, **profiles)
    if sorted(table) != sorted(PROFILES):
        raise ValueError(f"settings must give every profile {PROFILES}, got {sorted(table)}")
    if any(isinstance(v, dict) for v in table.values()):
        keys = set(table["full"])
        for name, values in table.items():
            if set(values) != keys:
                raise ValueError(f"profile {name!r} must set the same keys as 'full'; "
                                 f"differs in {sorted(keys ^ set(values))}")
        table = {name: SimpleNamespace(**values) for name, values in table.items()}
    name = profile_name()
    chosen = table[name]
    if verbose:
        how = "$" + PROFILE_ENV if os.environ.get(PROFILE_ENV) else f"device {best_device()}"
        values = chosen if isinstance(chosen, Settings) else ", ".join(
            f"{k}={v}" for k, v in vars(chosen).items())
        print(f"profile: {name} ({how}): {values}")
    return chosen


_MODELS: dict[str, tuple[Callable[..., nn.Module], dict | None]] = {}


def register_model(name: str | None = None, *, settings: dict | None = None, replace: bool = False):
    """Decorator: register a model builder under ``name``, with its chapter's settings.

    Another builder's name is refused unless ``replace=True`` (a learner's own "resnet18"
    must not silently stand in for the chapter's); the chapter's cell run again is allowed.

    Example:
        >>> @register_model("tiny")
        ... def tiny(num_classes=10):
        ...     return nn.Linear(4, num_classes)
        >>> get_model("tiny").out_features
        10
        >>> _ = _MODELS.pop("tiny")  # keep the example out of the real registry
    """

    def wrap(builder):
        key = name or builder.__name__.lower()
        old = _MODELS.get(key, (builder,))[0]
        if not replace and old is not builder and not _same_code(old, builder):
            raise ValueError(f"model name {key!r} is taken by {getattr(old, '__module__', '')}."
                             f"{getattr(old, '__qualname__', old)}; choose another name, or pass "
                             f"register_model({key!r}, replace=True) to replace it")
        _MODELS[key] = (builder, settings)
        return builder

    return wrap


def _same_code(a, b) -> bool:
    """Whether ``a`` and ``b`` are one builder: a cell run again compiles to the same code."""
    ca, cb = getattr(a, "__code__", None), getattr(b, "__code__", None)
    if ca is None or cb is None:  # classes, functools.partial, callable objects
        return all(getattr(a, k, a) == getattr(b, k, b) for k in ("__module__", "__qualname__"))
    return (ca.co_code, ca.co_consts, ca.co_names) == (cb.co_code, cb.co_consts, cb.co_names)


def list_models() -> list[str]:
    """Names of all registered models, sorted.

    Example:
        >>> list_models()[:3]
        ['alexnet', 'densenet', 'googlenet']
    """
    import d2lcnn.models  # noqa: F401  (the chapters' modules register their nets)

    return sorted(_MODELS)


def _entry(name: str):
    if name not in list_models():
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return _MODELS[name]


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` with keyword arguments (e.g. ``num_classes``).

    Example:
        >>> sum(p.numel() for p in get_model("lenet").parameters())
        61706
    """
    return _entry(name)[0](**kwargs)


def settings_for(name: str, profile: str | None = None) -> Settings:
    """The settings model ``name``'s chapter trains it with in ``profile`` (default: active).

    Example:
        >>> settings_for("alexnet", "full").lr, settings_for("lenet_modern", "full").lr
        (0.01, 0.3)
    """
    table = _entry(name)[1]
    if table is None:
        raise ValueError(f"model {name!r} was registered without settings; pass the "
                         "hyperparameters yourself, or register_model(..., settings=)")
    profile = profile or profile_name()
    if profile not in table:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    return table[profile]


def build_model(name: str, profile: str | None = None, resize: int | None = None) -> nn.Module:
    """Model ``name`` as its chapter trains it: with the builder arguments its settings name
    (VGG's ``ratio``) and a classifier for ``resize``-pixel images (default: the settings').

    Example:
        >>> build_model("vgg11", "cpu", 64).features[0][0].out_channels  # 64 / ratio 4
        16
    """
    builder, table = _entry(name)
    chosen = settings_for(name, profile) if table is not None else None
    takes = inspect.signature(builder).parameters
    kwargs = {key: getattr(chosen, key) for key in takes if hasattr(chosen, key)}
    size = resize or getattr(chosen, "resize", None)
    if "resolution" in takes and size:
        kwargs["resolution"] = size
    return builder(**kwargs)
