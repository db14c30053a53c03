"""MAML's 2D navigation made discrete: the same goals, moves and rewards on a lattice.

A discrete-action family for discrete-action inner learners (DQN). It is MAML's 2D navigation
(:mod:`reptile_rl.envs.navigation`) restricted to its natural lattice: the goals are the points
of ``[-0.5, 0.5]^2`` on the 0.1 grid, and an action moves the agent by one step of 0.1 (MAML's
largest move per axis) along one axis, or keeps it in place. Positions, rewards and the
episode's end follow MAML's definition exactly on that lattice, so the returns compare with
Navigation2D's. Reptile has something to learn across these tasks as it has in the continuous
family: every goal lies within five steps of the start along each axis, so a good
initialisation moves and reads the reward's change; what it cannot know is the direction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from reptile_rl.envs.base import Task, TaskFamily
from reptile_rl.envs.navigation import HORIZON, MAX_STEP, Navigation2DVecEnv

CELLS = tuple(range(-5, 6))
"""Goal coordinates in lattice steps: -5..5, i.e. -0.5..0.5 in MAML's units."""
MOVES = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], dtype=np.int64)
"""Action -> move in lattice steps: stay, +x, -x, +y, -y."""


@dataclasses.dataclass(frozen=True)
class GridGoalTask(Task):
    """A goal on the lattice, uniform over its 121 points (MAML's goal box on the 0.1 grid).

    Attributes:
        goal_x: x of the goal in lattice steps of 0.1, an integer in -5..5.
        goal_y: y of the goal in lattice steps of 0.1, an integer in -5..5.
    """

    family: ClassVar[str] = "grid_navigation"
    choices: ClassVar[dict[str, tuple[int, ...]]] = {"goal_x": CELLS, "goal_y": CELLS}

    goal_x: int
    goal_y: int

    def goal(self) -> np.ndarray:
        """The goal in lattice steps (times 0.1: MAML's units)."""
        return np.array([self.goal_x, self.goal_y], dtype=np.int64)


def grid_step(
    cells: np.ndarray, actions: np.ndarray, goals: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move agent(s) on the lattice and score them: shared by the single and batched envs.

    Integer lattice coordinates keep positions exact; the reward is Navigation2D's on them.

    Args:
        cells: Current position(s) in lattice steps, shape ``(..., 2)``, integers.
        actions: Action index(es) in 0..4, shape ``(...)``.
        goals: Goal position(s) in lattice steps, shape ``(..., 2)``, integers.

    Returns:
        The new position(s), the reward(s) ``-||position - goal||_2`` in MAML's units (0.1
        per step), and the termination flag(s): at the goal.
    """
    new_cells = cells + MOVES[actions]
    delta = (new_cells - goals) * MAX_STEP
    rewards = -np.hypot(delta[..., 0], delta[..., 1])
    return new_cells, rewards, np.all(new_cells == goals, axis=-1)


def _action_space() -> spaces.Discrete:
    return spaces.Discrete(len(MOVES))


def _observation_space() -> spaces.Box:
    return spaces.Box(low=-np.inf, high=np.inf, shape=(2,), dtype=np.float32)


class GridNavigationEnv(TaskFamily[GridGoalTask], gym.Env[np.ndarray, np.int64]):
    """MAML's 2D navigation on its 0.1 lattice: five discrete moves to a goal it cannot see.

    ## Description

    MAML's 2D navigation (Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning for Fast
    Adaptation of Deep Networks", ICML 2017, section 5.3; ``point_env_randgoal.py`` of
    cbfinn/maml_rl) restricted to the lattice of step 0.1: the agent starts at the origin and
    must reach a goal it does not observe, moving one step of 0.1 along one axis per action.
    Goals are the 121 lattice points of MAML's goal box ``[-0.5, 0.5]^2``.

    ## Action Space

    ``Discrete(5)``:

    | Num | Action              |
    |-----|---------------------|
    | 0   | stay                |
    | 1   | move +0.1 along x   |
    | 2   | move -0.1 along x   |
    | 3   | move +0.1 along y   |
    | 4   | move -0.1 along y   |

    ## Observation Space

    ``Box(-inf, inf, (2,), float32)``: the agent's position in MAML's units, as Navigation2D's
    (the goal is *not* observed).

    | Num | Observation | Min  | Max |
    |-----|-------------|------|-----|
    | 0   | x position  | -Inf | Inf |
    | 1   | y position  | -Inf | Inf |

    ## Rewards

    ``reward = -||position - goal||_2`` after the move, in MAML's units, as in MAML's code (the
    plain distance). Staying at the origin scores ``-100 * ||goal||`` per episode; walking
    straight to the goal ends the episode on it, the last reward 0.

    ## Starting State

    The origin ``(0, 0)``; there is no randomness in this environment.

    ## Episode End

    - Termination: on the goal (positions are exact lattice points).
    - Truncation: after 100 steps (``max_episode_steps`` of the registered id), MAML's horizon.

    ## Arguments

    | Argument | Type | Default | Meaning |
    |----------|------|---------|---------|
    | ``task`` | ``GridGoalTask`` or None | first task of the train split | the initial goal |

    ## Tasks

    ``GridGoalTask(goal_x, goal_y)``, integers in -5..5 (lattice steps), drawn uniformly; the
    train and test splits partition the 121 goals by a hash (about half each). The task
    persists across ``reset()``.

    ## Source

    MAML's 2D navigation (above), discretised here: the lattice, the five moves and the
    integer goals are ours; the horizon, the start, the goal box, the step size, the reward and
    the goal tolerance (exact on the lattice) are MAML's.

    ## Version History

    - v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Env declares it so)
    task_type = GridGoalTask
    horizon = HORIZON
    source = "MAML's 2D navigation (Finn et al. 2017) on its 0.1 lattice, five discrete moves"

    @classmethod
    def batched_vec_env(cls, num_envs: int, horizon: int, **kwargs: Any) -> GridNavigationVecEnv:
        """:class:`GridNavigationVecEnv`: all copies in one NumPy operation per step."""
        if kwargs:
            raise ValueError(f"GridNavigation takes no keyword arguments, got {kwargs}")
        return GridNavigationVecEnv(num_envs, horizon=horizon)

    def __init__(self, task: GridGoalTask | None = None) -> None:
        self.action_space = _action_space()
        self.observation_space = _observation_space()
        self.set_task(task if task is not None else GridGoalTask.split_list("train", 1)[0])
        self._cells = np.zeros(2, dtype=np.int64)

    def set_task(self, task: GridGoalTask) -> None:  # noqa: D102 (documented in TaskFamily)
        super().set_task(task)
        self._goal = self._task.goal()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Return the agent to the origin; the task is kept."""
        super().reset(seed=seed)
        self._cells = np.zeros(2, dtype=np.int64)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move by the action's step and return ``-distance`` to the goal as reward."""
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an integer in 0..{len(MOVES) - 1}, got {action}")
        self._cells, reward, terminated = grid_step(self._cells, np.int64(action), self._goal)
        observation = (self._cells * MAX_STEP).astype(np.float32)
        return observation, float(reward), bool(terminated), False, {}


class GridNavigationVecEnv(Navigation2DVecEnv):
    """``num_envs`` GridNavigation environments stepped in one NumPy operation.

    Navigation2DVecEnv's VecEnv (automatic reset, ``terminal_observation`` and
    ``TimeLimit.truncated`` infos, per-env tasks) with the lattice's moves: the same
    observations, rewards and dones as ``num_envs`` :class:`GridNavigationEnv` in a
    ``DummyVecEnv`` given the same actions.
    """

    task_type = GridGoalTask  # type: ignore[assignment]

    def __init__(
        self,
        num_envs: int,
        tasks: GridGoalTask | Sequence[GridGoalTask] | None = None,
        horizon: int = HORIZON,
    ) -> None:
        default = GridGoalTask.split_list("train", 1)[0]
        super().__init__(num_envs, tasks if tasks is not None else default, horizon)  # type: ignore[arg-type]
        self.action_space = _action_space()
        self._cells = np.zeros((num_envs, 2), dtype=np.int64)
        self._action_indices = np.zeros(num_envs, dtype=np.int64)

    def set_tasks(self, tasks: Any) -> None:
        """Set one task for every sub-environment, or one task each."""
        super().set_tasks(tasks)
        self._goals = np.array([[t.goal_x, t.goal_y] for t in self._tasks], dtype=np.int64)

    def reset(self) -> Any:
        """Move every agent back to the origin (tasks are kept)."""
        self._cells = np.zeros((self.num_envs, 2), dtype=np.int64)
        return super().reset()

    def step_async(self, actions: np.ndarray) -> None:
        """Store the action indices for :meth:`step_wait`."""
        indices = np.asarray(actions).reshape(self.num_envs)
        if not np.all((indices >= 0) & (indices < len(MOVES))):
            raise ValueError(f"actions must be integers in 0..{len(MOVES) - 1}, got {indices}")
        self._action_indices = indices.astype(np.int64)

    def step_wait(self) -> Any:
        """Step all sub-environments at once, resetting the ones whose episode ended."""
        self._cells, rewards, terminated = grid_step(self._cells, self._action_indices, self._goals)
        self._elapsed += 1
        truncated = (self._elapsed >= self.horizon) & ~terminated
        dones = terminated | truncated
        observations = (self._cells * MAX_STEP).astype(np.float32)
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": flag} for flag in truncated.tolist()]
        for index in np.flatnonzero(dones):
            infos[index]["terminal_observation"] = observations[index].copy()
        if dones.any():
            self._cells[dones] = 0
            self._elapsed[dones] = 0
            observations[dones] = 0.0
        return observations, rewards.astype(np.float32), dones, infos
