"""Build vectorized task-family environments from an :class:`~reptile_rl.config.EnvConfig`."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import mujoco
from gymnasium.envs.registration import load_env_creator
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

import envs
from envs.base import Task, TaskFamily


def family_class(env_id: str) -> type[TaskFamily[Any]]:
    """The environment class of a registered task family (raises ``ValueError`` if not one)."""
    if env_id not in gym.registry:
        families = [i for i in gym.registry if i.startswith("ReptileRL/")]
        raise ValueError(f"unknown env id {env_id!r}; task families: {', '.join(families)}")
    entry_point = gym.registry[env_id].entry_point
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
    steps = gym.registry[env_id].max_episode_steps
    if steps is None:
        raise ValueError(f"{env_id!r} has no max_episode_steps; a horizon is required")
    return steps


@contextlib.contextmanager
def _quiet_settotalmass_deprecation() -> Iterator[None]:
    """Drop MuJoCo 4's deprecation notice about Gymnasium's own half_cheetah.xml.

    It is printed once per env built (20 times per worker) and is not ours to fix; any other
    MuJoCo warning is passed on as a Python warning. The previous handler is restored.
    """

    def handler(message: str) -> None:
        if "settotalmass" not in message:
            warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


class FiniteHorizon(VecEnvWrapper):
    """Report the time limit as the end of the task, so that SB3 does not bootstrap there.

    SB3 adds ``gamma * V(terminal observation)`` to the last reward of an episode cut by the
    time limit (``info["TimeLimit.truncated"]``), treating the limit as artificial. In MAML's
    tasks the horizon is part of the task: nothing follows it.
    """

    def reset(self) -> VecEnvObs:
        """Reset the wrapped env."""
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        """Step, clearing ``TimeLimit.truncated``."""
        observations, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            info["TimeLimit.truncated"] = False
        return observations, rewards, dones, infos


def make_vec_env(
    env_id: str,
    kwargs: dict[str, Any],
    n_envs: int,
    oracle: bool = False,
    bootstrap_time_limit: bool = True,
) -> VecEnv:
    """Build ``n_envs`` copies of a task family as one monitored ``VecEnv``.

    Navigation2D uses its batched implementation (one NumPy operation for all envs); other
    families use a ``DummyVecEnv`` of ``gymnasium.make`` envs. Set tasks with
    ``env_method("set_task", task, indices=...)`` on the result.

    Args:
        env_id: A registered task family.
        kwargs: Keyword arguments for ``gymnasium.make``.
        n_envs: Number of sub-environments.
        oracle: Append the task to observations (:class:`envs.VecTaskInObservation`).
        bootstrap_time_limit: ``False`` wraps the env in :class:`FiniteHorizon`.
    """
    if family_class(env_id) is envs.Navigation2DEnv:
        if kwargs:
            raise ValueError(f"env.kwargs: Navigation2D takes no keyword arguments, got {kwargs}")
        vec_env: VecEnv = envs.Navigation2DVecEnv(n_envs, horizon=env_horizon(env_id))
    else:

        def make() -> gym.Env[Any, Any]:
            # The passive env checker adds a call layer to every step; the tests run the full
            # checker on every registered family instead.
            return gym.make(env_id, disable_env_checker=True, **kwargs)

        with _quiet_settotalmass_deprecation():
            vec_env = DummyVecEnv([make] * n_envs)
    if oracle:
        vec_env = envs.VecTaskInObservation(vec_env)
    if not bootstrap_time_limit:
        vec_env = FiniteHorizon(vec_env)
    return VecMonitor(vec_env)
