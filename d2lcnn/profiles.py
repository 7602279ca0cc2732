"""Profiles: one visible set of hyperparameters per kind of machine.

``full`` is the book's settings (default with a CUDA or MPS device), ``cpu`` is reduced so
a chapter trains in a few minutes on a 2-core laptop (default without one), ``smoke`` is
for tests: seconds per notebook on the bundled mini set. ``D2LCNN_PROFILE`` overrides the
automatic choice.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from .devices import best_device

__all__ = ["PROFILES", "profile_name", "choose"]

PROFILES = ("full", "cpu", "smoke")
ENV_VAR = "D2LCNN_PROFILE"


def profile_name() -> str:
    """The active profile: ``$D2LCNN_PROFILE`` if set, else by device.

    Example:
        >>> profile_name() in PROFILES
        True
    """
    name = os.environ.get(ENV_VAR, "").strip().lower()
    if name:
        if name not in PROFILES:
            raise ValueError(
                f"{ENV_VAR}={name!r} is not a profile; use one of {', '.join(PROFILES)}"
            )
        return name
    return "cpu" if best_device().type == "cpu" else "full"


def choose(
    *, full: dict, cpu: dict, smoke: dict, verbose: bool = True
) -> SimpleNamespace:
    """Pick the settings of the active profile and print them.

    Returns a namespace whose attributes are the chosen settings plus ``profile``.

    Example:
        >>> hp = choose(full=dict(lr=0.9, num_epochs=10), cpu=dict(lr=0.9, num_epochs=3),
        ...             smoke=dict(lr=0.9, num_epochs=1), verbose=False)
        >>> hp.profile in PROFILES and hp.lr == 0.9
        True
    """
    table = {"full": full, "cpu": cpu, "smoke": smoke}
    keys = set(full)
    for name, values in table.items():
        if set(values) != keys:
            missing = sorted(keys ^ set(values))
            raise ValueError(
                f"profile {name!r} must set the same keys as 'full'; differs in {missing}"
            )
    name = profile_name()
    chosen = dict(table[name])
    if verbose:
        settings = ", ".join(f"{k}={v}" for k, v in chosen.items())
        how = (
            f"from ${ENV_VAR}"
            if os.environ.get(ENV_VAR)
            else f"auto, device {best_device()}"
        )
        print(f"profile: {name} ({how}): {settings}")
    return SimpleNamespace(profile=name, **chosen)
