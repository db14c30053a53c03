"""MAML's 2D navigation family: a point mass that must find a goal it cannot see."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from reptile_rl.envs.base import Task, TaskFamily, as_task_list

MAX_STEP = 0.1
"""Largest move per step along each axis (MAML's ``point_env``: actions clipped to +-0.1)."""
GOAL_TOLERANCE = 0.01
"""The episode ends when both coordinates are closer than this to the goal."""
HORIZON = 100
"""Episode length in MAML's 2D navigation experiments."""


@dataclasses.dataclass(frozen=True)
class NavigationTask(Task):
    """A goal position, drawn from U[-0.5, 0.5]^2 (Finn et al. 2017, section 5.3).

    Attributes:
        goal_x: x coordinate of the goal, in [-0.5, 0.5].
        goal_y: y coordinate of the goal, in [-0.5, 0.5].
    """

    family: ClassVar[str] = "navigation2d"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "goal_x": (-0.5, 0.5),
        "goal_y": (-0.5, 0.5),
    }

    goal_x: float
    goal_y: float


def navigation_step(
    position: np.ndarray, action: np.ndarray, goal: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move point(s) and score them: the dynamics shared by the single and batched envs.

    Both environments call this one function, so they produce the same numbers bit for bit.

    Args:
        position: Current position(s), shape ``(..., 2)``, float64.
        action: Requested move(s), shape ``(..., 2)``; clipped to ``[-0.1, 0.1]``.
        goal: Goal position(s), shape ``(..., 2)``, float64.

    Returns:
        The new position(s), the reward(s) ``-||new_position - goal||_2`` and the termination
        flag(s) ``|dx| < 0.01 and |dy| < 0.01``.
    """
    new_position = position + np.clip(action, -MAX_STEP, MAX_STEP)
    delta = new_position - goal
    reward = -np.hypot(delta[..., 0], delta[..., 1])
    terminated = np.all(np.abs(delta) < GOAL_TOLERANCE, axis=-1)
    return new_position, reward, terminated


def _action_space() -> spaces.Box:
    return spaces.Box(low=-MAX_STEP, high=MAX_STEP, shape=(2,), dtype=np.float32)


def _observation_space() -> spaces.Box:
    return spaces.Box(low=-np.inf, high=np.inf, shape=(2,), dtype=np.float32)


class Navigation2DEnv(TaskFamily[NavigationTask], gym.Env[np.ndarray, np.ndarray]):
    """MAML's 2D navigation: move a point from the origin to a goal it cannot see.

    ## Description

    MAML's 2D navigation task family (Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning
    for Fast Adaptation of Deep Networks", ICML 2017, section 5.3; the definitions follow the
    authors' code, ``maml_examples/point_env_randgoal.py``). A point agent starts at the origin
    and must move to a goal position. The goal is the task: it is not observed, so the agent has
    to infer it from rewards.

    ## Action Space

    ``Box(-0.1, 0.1, (2,), float32)``. Actions outside the box are clipped, as in MAML's code.

    | Num | Action       | Min  | Max |
    |-----|--------------|------|-----|
    | 0   | move along x | -0.1 | 0.1 |
    | 1   | move along y | -0.1 | 0.1 |

    ## Observation Space

    ``Box(-inf, inf, (2,), float32)``: the agent's position (the goal is *not* observed).

    | Num | Observation | Min  | Max |
    |-----|-------------|------|-----|
    | 0   | x position  | -Inf | Inf |
    | 1   | y position  | -Inf | Inf |

    ## Rewards

    ``reward = -||position - goal||_2``, measured *after* the move. MAML's paper says "negative
    squared distance"; its code uses the plain distance, and so do we. Rewards lie in
    ``[-(sqrt(2) * (0.5 + 0.1 * t)), 0]`` at step ``t``. A policy that stays at the origin scores
    about -40 per episode; MAML reports -2.29 for an oracle that observes the goal.

    ## Starting State

    The position starts at ``(0, 0)``; there is no randomness in this environment.

    ## Episode End

    - Termination: ``|x - goal_x| < 0.01`` and ``|y - goal_y| < 0.01``.
    - Truncation: after 100 steps (``max_episode_steps`` of the registered id).

    ## Arguments

    | Argument | Type             | Default                  | Meaning          |
    |----------|------------------|--------------------------|------------------|
    | ``task`` | ``NavigationTask`` or None | first task of the train split | the initial goal |

    ```python
    import gymnasium as gym
    import envs

    env = gym.make("ReptileRL/Navigation2D-v0")
    task = env.unwrapped.sample_tasks(1, seed=0)[0]
    env.unwrapped.set_task(task)
    ```

    ## Tasks

    ``NavigationTask(goal_x, goal_y)`` with both coordinates in ``[-0.5, 0.5]``, sampled
    uniformly. The task persists across ``reset()``.

    ## Version History

    - v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Env declares it so)
    task_type = NavigationTask
    horizon = HORIZON
    reference_results: ClassVar[dict[str, list[float]]] = {
        "MAML": [-40.41, -11.68, -3.33, -3.23],
        "pretrained": [-40.81, -19.73, -11.72, -8.47],
        "random": [-82.66, -57.96, -53.84, -46.81],
        "oracle": [-2.29],
    }
    # Finn et al. 2017, section 5.3: returns after 0-3 gradient steps.
    reference_source = "MAML's published numbers (Finn et al. 2017; 40 tasks, 20 trajectories)"
    source = "MAML (Finn et al. 2017, section 5.3), point_env_randgoal.py of cbfinn/maml_rl"

    @classmethod
    def batched_vec_env(cls, num_envs: int, horizon: int, **kwargs: Any) -> Navigation2DVecEnv:
        """:class:`Navigation2DVecEnv`: all copies in one NumPy operation per step."""
        if kwargs:
            raise ValueError(f"Navigation2D takes no keyword arguments, got {kwargs}")
        return Navigation2DVecEnv(num_envs, horizon=horizon)

    def __init__(self, task: NavigationTask | None = None) -> None:
        self.action_space = _action_space()
        self.observation_space = _observation_space()
        self.set_task(task if task is not None else NavigationTask.split_list("train", 1)[0])
        self._position = np.zeros(2)

    def set_task(self, task: NavigationTask) -> None:  # noqa: D102 (documented in TaskFamily)
        super().set_task(task)
        self._goal = np.array([task.goal_x, task.goal_y])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Return the agent to the origin; the task is kept."""
        super().reset(seed=seed)
        self._position = np.zeros(2)
        return self._position.astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move by the clipped action and return ``-distance`` to the goal as reward."""
        self._position, reward, terminated = navigation_step(
            self._position, np.asarray(action, dtype=np.float64), self._goal
        )
        return self._position.astype(np.float32), float(reward), bool(terminated), False, {}


class Navigation2DVecEnv(TaskFamily[NavigationTask], VecEnv):
    """``num_envs`` Navigation2D environments stepped in one NumPy operation.

    A stable-baselines3 :class:`~stable_baselines3.common.vec_env.VecEnv`: pass it straight to
    ``PPO``. Each sub-environment has its own task (or all share one); with the same actions it
    gives the same observations, rewards and dones as ``num_envs`` single
    :class:`Navigation2DEnv` wrapped in ``TimeLimit(100)`` and a ``DummyVecEnv``, including
    SB3's automatic reset, ``terminal_observation`` and ``TimeLimit.truncated`` infos.

    Args:
        num_envs: Number of sub-environments.
        tasks: One task for all sub-environments, one per sub-environment, or ``None`` for the
            first task of the train split.
        horizon: Steps after which an episode is truncated (MAML: 100).

    The family API (``set_task``/``get_task``) acts on *all* sub-environments; use
    ``set_tasks`` / ``get_tasks`` or ``env_method("set_task", task, indices=...)`` for
    individual ones.
    """

    task_type = NavigationTask

    def __init__(
        self,
        num_envs: int,
        tasks: NavigationTask | Sequence[NavigationTask] | None = None,
        horizon: int = HORIZON,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
        super().__init__(num_envs, _observation_space(), _action_space())
        self.horizon = horizon
        self._positions = np.zeros((num_envs, 2))
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        self._actions = np.zeros((num_envs, 2))
        default = NavigationTask.split_list("train", 1)[0]
        self.set_tasks(tasks if tasks is not None else default)

    # -- tasks --------------------------------------------------------------------------------
    def set_tasks(self, tasks: NavigationTask | Sequence[NavigationTask]) -> None:
        """Set one task for every sub-environment, or one task each."""
        task_list = [self.validate_task(t) for t in as_task_list(tasks, self.num_envs)]
        self._tasks = task_list
        self._goals = np.array([[t.goal_x, t.goal_y] for t in task_list])

    def get_tasks(self) -> list[NavigationTask]:
        """Return the task of each sub-environment."""
        return list(self._tasks)

    def set_task(self, task: NavigationTask) -> None:
        """Give every sub-environment the same task."""
        self.set_tasks(task)

    def get_task(self) -> NavigationTask:
        """Return the shared task; raises ``ValueError`` if sub-environments differ."""
        first = self._tasks[0]
        if any(task != first for task in self._tasks):
            raise ValueError("sub-environments have different tasks; use get_tasks()")
        return first

    # -- VecEnv -------------------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        """Move every agent back to the origin (tasks are kept)."""
        self._positions[:] = 0.0
        self._elapsed[:] = 0
        self._reset_seeds()
        self._reset_options()
        return self._positions.astype(np.float32)

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 2)

    def step_wait(self) -> VecEnvStepReturn:
        """Step all sub-environments at once, resetting the ones whose episode ended."""
        self._positions, rewards, terminated = navigation_step(
            self._positions, self._actions, self._goals
        )
        self._elapsed += 1
        truncated = (self._elapsed >= self.horizon) & ~terminated
        dones = terminated | truncated
        observations = self._positions.astype(np.float32)
        # The same info keys as DummyVecEnv: TimeLimit.truncated on every step.
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": flag} for flag in truncated.tolist()]
        for index in np.flatnonzero(dones):
            infos[index]["terminal_observation"] = observations[index].copy()
        if dones.any():
            self._positions[dones] = 0.0
            self._elapsed[dones] = 0
            observations[dones] = 0.0
        return observations, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        """Nothing to release."""

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Accepted for API compatibility: the dynamics have no randomness."""
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Return ``task``, ``horizon`` or a space, once per requested sub-environment."""
        chosen = self._indices(indices)
        if attr_name == "task":
            return [self._tasks[i] for i in chosen]
        if attr_name == "render_mode":
            return [None for _ in chosen]  # no rendering
        if attr_name in ("horizon", "observation_space", "action_space"):
            return [getattr(self, attr_name) for _ in chosen]
        raise AttributeError(f"Navigation2DVecEnv sub-environments have no attribute {attr_name!r}")

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Only ``task`` can be set per sub-environment."""
        if attr_name != "task":
            raise AttributeError(f"cannot set {attr_name!r} on Navigation2DVecEnv sub-environments")
        self.env_method("set_task", value, indices=indices)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a sub-environment's family method (``set_task``, ``get_task``, ``sample_tasks``)."""
        chosen = self._indices(indices)
        if method_name == "set_task":
            (task,) = method_args
            task = self.validate_task(task)
            tasks = list(self._tasks)
            for i in chosen:
                tasks[i] = task
            self.set_tasks(tasks)
            return [None for _ in chosen]
        if method_name == "get_task":
            return [self._tasks[i] for i in chosen]
        if method_name in ("sample_tasks", "task_split"):
            method = getattr(self, method_name)
            return [method(*method_args, **method_kwargs) for _ in chosen]
        raise AttributeError(f"Navigation2DVecEnv sub-environments have no method {method_name!r}")

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Sub-environments are never wrapped."""
        return [False for _ in self._indices(indices)]
