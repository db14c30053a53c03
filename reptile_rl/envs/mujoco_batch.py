"""Copies of a Gymnasium MuJoCo task env stepped by calling MuJoCo directly, scored as a batch.

A family on Gymnasium's MuJoCo physics spends much of a step outside the physics: the env's
Python ``step`` (wrappers, reward terms, the info dict) and SB3's ``DummyVecEnv`` (which
deep-copies every info dict). :class:`MujocoBatchVecEnv` keeps the envs themselves (their
models, data, reset noise and seeds) but steps each one's ``MjData`` as Gymnasium's
``MujocoEnv.do_simulation`` does (the controls, ``mj_step`` over ``frame_skip`` frames, then
``mj_rnePostConstraint``), and lets the family compute observations and rewards for all copies
at once with the env's own arithmetic. It gives the observations, rewards, dones and SB3's
reset infos of ``DummyVecEnv`` over ``gymnasium.make``'d envs bit for bit
(``tests/test_mujoco_batch.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn


class BatchStep(Protocol):
    """A family's step of many copies: ``(observations, rewards, terminated, infos)``."""

    def __call__(
        self, envs: Sequence[Any], actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step the unwrapped ``envs`` with one action each; nothing is reset."""
        ...


def simulate(envs: Sequence[MujocoEnv], actions: np.ndarray) -> None:
    """Advance each env's physics by one env step, as ``MujocoEnv.do_simulation`` does."""
    for env, action in zip(envs, actions, strict=True):
        data = env.data
        data.ctrl[:] = action
        mujoco.mj_step(env.model, data, nstep=env.frame_skip)
        # Gymnasium's step computes the force-related quantities after the step.
        mujoco.mj_rnePostConstraint(env.model, data)


class MujocoBatchVecEnv(DummyVecEnv):
    """``num_envs`` copies of a MuJoCo task env, each stepped directly, scored by ``batch_step``.

    Args:
        make: Builds one unwrapped env (the family's class with its keyword arguments).
        num_envs: Number of copies.
        horizon: Steps after which an episode is truncated (the registered id's time limit).
        batch_step: The family's step of all copies (:class:`BatchStep`).
    """

    def __init__(
        self,
        make: Callable[[], gym.Env[Any, Any]],
        num_envs: int,
        horizon: int,
        batch_step: BatchStep,
    ) -> None:
        super().__init__([make] * num_envs)
        self.horizon = horizon
        self.batch_step = batch_step
        self.bases = [env.unwrapped for env in self.envs]
        self._elapsed = np.zeros(num_envs, dtype=np.int64)

    def reset(self) -> VecEnvObs:
        """Reset every copy (with the seeds given to :meth:`seed`, as ``DummyVecEnv`` does)."""
        self._elapsed[:] = 0
        return super().reset()

    def step_wait(self) -> VecEnvStepReturn:
        """Step every copy, resetting those whose episode ended (``DummyVecEnv``'s infos)."""
        actions = np.asarray(self.actions)
        observations, rewards, terminated, infos = self.batch_step(self.bases, actions)
        self._elapsed += 1
        truncated = (self._elapsed >= self.horizon) & ~terminated
        dones = terminated | truncated
        for index, info in enumerate(infos):
            info["TimeLimit.truncated"] = bool(truncated[index])
        for index in np.flatnonzero(dones).tolist():
            infos[index]["terminal_observation"] = observations[index].copy()
            observations[index], self.reset_infos[index] = self.envs[index].reset()
            self._elapsed[index] = 0
        # DummyVecEnv keeps rewards and observations in buffers of these dtypes.
        return (
            observations.astype(self.observation_space.dtype, copy=False),
            rewards.astype(np.float32),
            dones,
            infos,
        )


class DirectStepping:
    """Mixin of a MuJoCo task family whose copies step directly: its ``batched_vec_env``.

    The family provides ``_batch_step`` (a :class:`BatchStep`) and is built by ``cls(**kwargs)``.
    """

    _batch_step: BatchStep

    @classmethod
    def batched_vec_env(cls, num_envs: int, horizon: int, **kwargs: Any) -> MujocoBatchVecEnv:
        """The copies stepped directly on their MuJoCo data."""
        return MujocoBatchVecEnv(
            lambda: cls(**kwargs),  # type: ignore[arg-type,return-value]
            num_envs,
            horizon,
            cls._batch_step,
        )
