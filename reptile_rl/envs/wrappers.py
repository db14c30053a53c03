"""Oracle wrappers: append the current task's parameters to the observation."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvObs,
    VecEnvStepReturn,
    VecEnvWrapper,
)

from reptile_rl.envs.base import Task, TaskFamily


def _extended_space(space: gym.Space[Any], task_type: type[Task]) -> spaces.Box:
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"the oracle wrappers need a flat Box observation space, got {space}")
    task_low, task_high = task_type.parameter_bounds()
    return spaces.Box(
        low=np.concatenate([space.low, task_low]).astype(space.dtype),
        high=np.concatenate([space.high, task_high]).astype(space.dtype),
        dtype=space.dtype,
    )


class TaskInObservation(gym.ObservationWrapper[np.ndarray, Any, np.ndarray]):
    """Append the task parameters (``Task.as_array()``) to a family env's observation.

    This turns a task family into a fully observed multi-task problem: the *oracle* baseline of
    MAML's experiments, an upper reference for what adaptation can reach.

    Args:
        env: An environment whose ``unwrapped`` is a task family (has ``get_task``).

    Example:
        >>> import gymnasium as gym, envs
        >>> env = envs.TaskInObservation(gym.make("ReptileRL/Navigation2D-v0"))
        >>> env.observation_space.shape
        (4,)
    """

    def __init__(self, env: gym.Env[np.ndarray, Any]) -> None:
        super().__init__(env)
        family = env.unwrapped
        if not isinstance(family, TaskFamily):
            raise ValueError(f"{env} is not a task family: it has no get_task()")
        self._family: TaskFamily[Any] = family
        self.observation_space = _extended_space(env.observation_space, self._family.task_type)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Return ``observation`` followed by the current task's parameters."""
        task_array = self._family.get_task().as_array()
        return np.concatenate([observation, task_array]).astype(self.observation_space.dtype)


class VecTaskInObservation(VecEnvWrapper):
    """:class:`TaskInObservation` for a task-family ``VecEnv`` (one task per sub-environment).

    The task arrays are cached and rebuilt only when the sub-envs' tasks change, however they
    were changed (through this wrapper or on the wrapped env directly).

    Args:
        venv: A vectorized task family, e.g. :class:`envs.Navigation2DVecEnv` or a
            ``DummyVecEnv`` of family envs.
    """

    def __init__(self, venv: VecEnv) -> None:
        task_type: type[Task] = type(venv.env_method("get_task", indices=0)[0])
        super().__init__(venv, observation_space=_extended_space(venv.observation_space, task_type))
        self._tasks: list[Task] = []
        self._task_arrays = np.empty((0, 0), dtype=np.float32)

    def _current_task_arrays(self) -> np.ndarray:
        tasks = self.venv.env_method("get_task")
        if tasks != self._tasks:
            self._tasks = tasks
            self._task_arrays = np.stack([task.as_array() for task in tasks])
        return self._task_arrays

    def _with_tasks(self, observations: np.ndarray, task_arrays: np.ndarray) -> np.ndarray:
        dtype = self.observation_space.dtype
        return np.concatenate([observations, task_arrays], axis=-1).astype(dtype)

    def reset(self) -> VecEnvObs:
        """Reset and append the tasks."""
        observations = self.venv.reset()
        return self._with_tasks(observations, self._current_task_arrays())  # type: ignore[arg-type]

    def step_wait(self) -> VecEnvStepReturn:
        """Step and append the tasks (also to ``terminal_observation``)."""
        observations, rewards, dones, infos = self.venv.step_wait()
        task_arrays = self._current_task_arrays()
        for index in np.flatnonzero(dones):
            terminal = infos[index].get("terminal_observation")
            if terminal is not None:
                infos[index]["terminal_observation"] = self._with_tasks(
                    terminal, task_arrays[index]
                )
        return self._with_tasks(observations, task_arrays), rewards, dones, infos  # type: ignore[arg-type]
