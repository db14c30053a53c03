"""Look up registered task families: their class, task type, horizon and accepted arguments.

Works for any Gymnasium id whose entry point is a :class:`~reptile_rl.envs.TaskFamily`, the
bundled ``ReptileRL/...`` ids as well as a family a user registers from their own module.
Nothing here builds an environment.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from reptile_rl.envs.base import Task, TaskFamily


def registry_id(env_id: str) -> str:
    """The id under which ``env_id`` is registered, importing its module first.

    Gymnasium's ``module:id`` form (``gymnasium.make("my_module:My/Family-v0")``) names the
    module whose import registers the id: a family in a user's own module.

    Raises:
        ValueError: If the module cannot be imported.
    """
    module, separator, name = env_id.partition(":")
    if not separator:
        return env_id
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise ValueError(f"cannot import the module of {env_id!r}: {error}") from None
    return name


def family_class(env_id: str) -> type[TaskFamily[Any]]:
    """The environment class of a registered task family (raises ``ValueError`` if not one)."""
    name = registry_id(env_id)
    if name not in gym.registry:
        families = [i for i in gym.registry if i.startswith("ReptileRL/")]
        raise ValueError(
            f"unknown env id {env_id!r}; task families: {', '.join(families)}, or your own "
            "registered in a module as 'module:id'"
        )
    entry_point = gym.registry[name].entry_point
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    if not (isinstance(creator, type) and issubclass(creator, TaskFamily)):
        raise ValueError(f"{env_id!r} is not a task family (no sample_tasks/set_task API)")
    return creator


def family_task_type(env_id: str) -> type[Task]:
    """Return the task class of a registered task family.

    Raises:
        ValueError: If the id is unknown or not a task family.
    """
    return family_class(env_id).task_type


def env_horizon(env_id: str) -> int:
    """Return the episode length (``max_episode_steps``) of a registered task family."""
    steps = gym.registry[registry_id(env_id)].max_episode_steps
    if steps is None:
        raise ValueError(f"{env_id!r} has no max_episode_steps; a horizon is required")
    return steps


def check_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """Raise ``ValueError`` if the family's constructors accept no such keyword arguments.

    Follows ``**kwargs`` up the class hierarchy (e.g. HalfCheetahVel -> HalfCheetah-v5 ->
    MujocoEnv), so a misspelt name is caught without building the env. Values are checked when
    the env is first built.
    """
    cls = family_class(env_id)
    remaining = dict(kwargs)
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or not remaining:
            continue
        parameters = list(inspect.signature(vars(klass)["__init__"]).parameters.values())[1:]
        named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        remaining = {name: value for name, value in remaining.items() if name not in named}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    if remaining:
        raise ValueError(f"{env_id} takes no keyword argument {sorted(remaining)[0]!r}")
