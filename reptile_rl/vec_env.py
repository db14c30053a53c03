"""Build a task family as one monitored SB3 ``VecEnv`` (batched where the family offers it)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from reptile_rl.envs.wrappers import VecTaskInObservation
from reptile_rl.families import env_horizon, family_class


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

    A family's batched VecEnv is used where it declares one (Navigation2D: one NumPy operation
    for all envs); other families get a ``DummyVecEnv`` of ``gymnasium.make`` envs. Set tasks
    with ``env_method("set_task", task, indices=...)`` on the result.

    Args:
        env_id: A registered task family.
        kwargs: Keyword arguments for ``gymnasium.make``.
        n_envs: Number of sub-environments.
        oracle: Append the task to observations (:class:`~reptile_rl.envs.VecTaskInObservation`).
        bootstrap_time_limit: ``False`` wraps the env in :class:`FiniteHorizon`.

    Raises:
        ValueError: If the family rejects ``kwargs``.
    """
    vec_env = family_class(env_id).batched_vec_env(n_envs, env_horizon(env_id), **kwargs)
    if vec_env is None:

        def make() -> gym.Env[Any, Any]:
            # The passive env checker adds a call layer to every step; the tests run the full
            # checker on every registered family instead.
            return gym.make(env_id, disable_env_checker=True, **kwargs)

        vec_env = DummyVecEnv([make] * n_envs)
    if oracle:
        vec_env = VecTaskInObservation(vec_env)
    if not bootstrap_time_limit:
        vec_env = FiniteHorizon(vec_env)
    return VecMonitor(vec_env)
