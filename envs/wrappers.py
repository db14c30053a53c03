"""Oracle wrappers: append the current task's parameters to the observation."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
    VecEnvWrapper,
)

from envs.base import Task, TaskFamily


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

    The tasks are cached and refreshed whenever ``set_task``/``set_tasks`` go through this
    wrapper, so a step costs one concatenation.

    Args:
        venv: A vectorized task family, e.g. :class:`envs.Navigation2DVecEnv` or a
            ``DummyVecEnv`` of family envs.
    """

    def __init__(self, venv: VecEnv) -> None:
        task_type: type[Task] = type(venv.env_method("get_task", indices=0)[0])
        super().__init__(venv, observation_space=_extended_space(venv.observation_space, task_type))
        self._refresh()

    def _refresh(self) -> None:
        tasks = self.venv.env_method("get_task")
        self._task_arrays = np.stack([task.as_array() for task in tasks])

    def _with_tasks(self, observations: np.ndarray) -> np.ndarray:
        dtype = self.observation_space.dtype
        return np.concatenate([observations, self._task_arrays], axis=1).astype(dtype)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Forward to the wrapped env, refreshing the cached tasks after ``set_task``."""
        result = self.venv.env_method(method_name, *method_args, indices=indices, **method_kwargs)
        if method_name == "set_task":
            self._refresh()
        return result

    def reset(self) -> VecEnvObs:
        """Reset and append the tasks."""
        return self._with_tasks(self.venv.reset())  # type: ignore[arg-type]

    def step_wait(self) -> VecEnvStepReturn:
        """Step and append the tasks (also to ``terminal_observation``)."""
        observations, rewards, dones, infos = self.venv.step_wait()
        for index in np.flatnonzero(dones):
            terminal = infos[index].get("terminal_observation")
            if terminal is not None:
                infos[index]["terminal_observation"] = np.concatenate(
                    [terminal, self._task_arrays[index]]
                ).astype(self.observation_space.dtype)
        return self._with_tasks(observations), rewards, dones, infos  # type: ignore[arg-type]
