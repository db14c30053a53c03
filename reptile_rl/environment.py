"""The software and machine a run was made with, and what differs from them here.

A run is a pure function of its configuration and seed on one install and one machine type;
another MuJoCo, torch or NumPy, or another CPU, can change its numbers in their last bits and,
over a long training, beyond. Every run directory (``environment.json``), policy file and
exported SB3 zip records :func:`describe`; ``resume`` and ``evaluate`` warn with
:func:`differences` when theirs is not this one.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import threadpoolctl
import torch

PACKAGES = (
    "reptile-rl",
    "torch",
    "numpy",
    "gymnasium",
    "mujoco",
    "stable-baselines3",
    "ray",
    "metaworld",
)
"""Distributions whose version can change a run's numbers (``None`` where not installed)."""

COMPARED = ("python", "cpu")
"""Besides the packages, what :func:`differences` compares."""


def describe() -> dict[str, Any]:
    """This process's software and machine, as JSON-ready data.

    Returns:
        ``python``; ``packages``, each distribution's version or ``None``; ``cpu``, the
        processor's model name; ``torch_threads`` and ``blas_threads``, the intra-op threads
        torch and the loaded BLAS libraries compute with now; ``commit``, the git commit of the
        checkout the package runs from (``None`` for an installed package), with ``+dirty``
        when tracked files differ from it.
    """
    blas = [
        lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"
    ]
    return {
        **_static(),
        "torch_threads": torch.get_num_threads(),
        "blas_threads": max(blas) if blas else None,
    }


@functools.cache
def _static() -> dict[str, Any]:
    """The part of :func:`describe` that cannot change while the process runs."""
    return {
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "cpu": _cpu_model(),
        "commit": _commit(),
    }


def differences(recorded: Mapping[str, Any], here: Mapping[str, Any] | None = None) -> list[str]:
    """What differs between a recorded environment and this one, in words.

    Args:
        recorded: A :func:`describe` of another run (an empty mapping: nothing is known).
        here: This environment (default :func:`describe`).

    Returns:
        One item per difference, e.g. ``"mujoco 3.3.0 (here 4.0.1)"``; empty if none is known.
    """
    here = describe() if here is None else here
    found = []
    for key in COMPARED:
        if key in recorded and recorded[key] != here.get(key):
            found.append(f"{key} {recorded[key]!r} (here {here.get(key)!r})")
    theirs, ours = recorded.get("packages", {}), here.get("packages", {})
    for name in sorted(set(theirs) | set(ours)):
        if name in theirs and name in ours and theirs[name] != ours[name]:
            found.append(
                f"{name} {theirs[name] or 'not installed'} (here {ours[name] or 'not installed'})"
            )
    return found


def difference_warning(what: str, recorded: Mapping[str, Any]) -> str | None:
    """One line saying what differs from ``recorded``, or ``None`` if nothing known does."""
    found = differences(recorded)
    if not found:
        return None
    return (
        f"{what} was made with other software or another CPU: {'; '.join(found)}; "
        "its numbers may differ from a run made here in their last bits"
    )


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str | None:
    checkout = Path(__file__).resolve().parents[1]
    if not (checkout / ".git").exists():
        return None
    try:
        head = _git(checkout, "rev-parse", "HEAD")
        dirty = _git(checkout, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def _git(checkout: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()
