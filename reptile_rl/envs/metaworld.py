"""Meta-World's ML1 benchmark as a task family (optional extra: ``pip install -e '.[metaworld]'``).

One ML1 benchmark is one Meta-World manipulation skill (``reach-v3``, ``push-v3``, ...) whose
tasks are goal (and object) positions. Meta-World draws 50 training and 50 test goals; they
are this family's train and test splits, in Meta-World's order, so a task is a goal index.

Meta-World pins its own MuJoCo version (3.3.0 for Meta-World 3.1.1), so install the extra in
a venv of its own (``make test-metaworld`` builds ``.venv-metaworld``): the core's MuJoCo, and
with it every cheetah and ant number, stays as it is. Without the extra the ids are still
registered and listed; building one raises an error that says how to install it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from reptile_rl.envs.base import Split, Task, TaskFamily

try:  # The optional extra: the family is listed without it, and says how to install it.
    metaworld: Any = importlib.import_module("metaworld")
except ImportError:
    metaworld = None

GOALS_PER_SPLIT = 50
"""Meta-World's ML1 draws 50 training and 50 test goals."""
ML1_SEED = 0
"""The seed of ``metaworld.ML1``: its train goals come from this seed, its test goals from
this seed + 1 (Meta-World's rule). Fixed, so a task index names the same goal everywhere."""
HORIZON = 500
"""Meta-World's ``max_path_length``: episodes end after 500 steps."""
INSTALL_HINT = (
    "Meta-World is not installed: pip install -e '.[metaworld]' (it pins MuJoCo 3.3.0, so use "
    "a venv of its own, e.g. `make test-metaworld`, which builds .venv-metaworld)"
)


@dataclasses.dataclass(frozen=True)
class ML1Task(Task):
    """One goal of an ML1 benchmark: 0-49 are Meta-World's train goals, 50-99 its test goals.

    The goal's position belongs to the benchmark the env was made with (``env_name``), as in
    Meta-World, where a task holds the goal of one skill.

    Attributes:
        goal: Index into Meta-World's train goals followed by its test goals.
    """

    family: ClassVar[str] = "metaworld_ml1"
    choices: ClassVar[dict[str, tuple[int, ...]]] = {"goal": tuple(range(2 * GOALS_PER_SPLIT))}

    goal: int

    @classmethod
    def describe_space(cls) -> str:
        """Goal indices and where they come from."""
        return (
            f"goal in 0..{GOALS_PER_SPLIT - 1} (Meta-World's train goals) or "
            f"{GOALS_PER_SPLIT}..{2 * GOALS_PER_SPLIT - 1} (its test goals)"
        )

    @property
    def split(self) -> Split:
        """Meta-World's own split of the goal."""
        return "train" if self.goal < GOALS_PER_SPLIT else "test"

    @classmethod
    def split_list(cls, split: Split, n: int) -> list[ML1Task]:
        """Meta-World's goals of ``split`` in its order (repeated if ``n`` is larger)."""
        super().split_list(split, 0)  # validates ``split``
        first = 0 if split == "train" else GOALS_PER_SPLIT
        return [cls(first + i % GOALS_PER_SPLIT) for i in range(n)]


@functools.lru_cache(maxsize=8)
def _ml1(env_name: str) -> Any:
    """Meta-World's ML1 benchmark (its env class and goal lists), built once per process."""
    if metaworld is None:
        raise ImportError(INSTALL_HINT)
    if env_name not in metaworld.ML1.ENV_NAMES:
        raise ValueError(
            f"env_name must be a Meta-World v3 skill such as 'reach-v3' (see "
            f"metaworld.ML1.ENV_NAMES), got {env_name!r}"
        )
    return metaworld.ML1(env_name, seed=ML1_SEED)


class MetaWorldML1Env(TaskFamily[ML1Task], gym.Env[np.ndarray, np.ndarray]):
    """A Meta-World ML1 benchmark: one manipulation skill, its goal not observed.

    ## Description

    A Sawyer arm must perform one skill (``env_name``: reach, push, pick-place, ...) for a
    goal position it does not observe (Meta-World's ML benchmarks zero the goal in the
    observation). The env is Meta-World's own, wrapped: physics, reward and observation are
    Meta-World's.

    ## Tasks

    ``ML1Task(goal)``: goals 0-49 are Meta-World's 50 training goals, 50-99 its 50 test goals,
    of ``metaworld.ML1(env_name, seed=0)``. The task persists across ``reset()``.

    ## Action Space

    ``Box(-1, 1, (4,), float32)``: the hand's x, y, z displacement and the gripper.

    ## Observation Space

    Meta-World's ``Box((39,), float64)``: hand position, gripper opening, object positions and
    orientations, the same for the previous step, and a goal slot that ML1 zeroes.

    ## Rewards

    Meta-World's v2 reward of the skill, in [0, 10] per step. ``info["success"]`` is Meta-World's
    success flag of the step; ``info["is_success"]`` (SB3's convention) is 1.0 once the
    episode has succeeded at any step, so the episode's success is its value at the last step,
    as in Meta-World's evaluation.

    ## Episode End

    - Termination: never (Meta-World's ``terminate_on_success`` off, as in its training).
    - Truncation: after 500 steps, Meta-World's ``max_path_length``.

    ## Arguments

    | Argument | Type | Default | Meaning |
    |----------|------|---------|---------|
    | ``task`` | ML1Task or None | goal 0 | the initial task |
    | ``env_name`` | str | ``"reach-v3"`` | the skill, any of ``metaworld.ML1.ENV_NAMES`` |
    | ``render_mode`` | str or None | None | passed to Meta-World's env |

    ## Source

    Yu, Quillen, He, Julian, Hausman, Finn and Levine, "Meta-World: A Benchmark and Evaluation
    for Multi-Task and Meta Reinforcement Learning", CoRL 2019; the ``metaworld`` package 3.1.1
    (its ML1 benchmark and v3 envs).
    """

    task_type = ML1Task
    horizon = HORIZON
    metric = "success rate and return"
    evaluation_protocols = ("toolkit", "metaworld")
    source = "Meta-World (Yu et al. 2019), ML1 of the metaworld package 3.1.1"
    metadata = {"render_modes": ["human", "rgb_array", "depth_array"]}  # noqa: RUF012

    def __init__(
        self,
        task: ML1Task | None = None,
        env_name: str = "reach-v3",
        render_mode: str | None = None,
    ) -> None:
        benchmark = _ml1(env_name)
        self.env_name = env_name
        self._goals = [*benchmark.train_tasks, *benchmark.test_tasks]
        self._env = benchmark.train_classes[env_name](render_mode=render_mode)
        self.observation_space = self._env.observation_space
        self.action_space = self._env.action_space
        self.render_mode = render_mode
        self._succeeded = False
        self.set_task(task if task is not None else ML1Task(0))

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """The install hint when Meta-World is missing, else ``None``."""
        return INSTALL_HINT if metaworld is None else None

    def set_task(self, task: ML1Task) -> None:
        """Make ``task`` the current goal (Meta-World's ``set_task``); it stays until changed."""
        super().set_task(task)
        self._env.set_task(self._goals[self._task.goal])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset Meta-World's env (seeded through its ``seed``, as it ignores reset seeds)."""
        super().reset(seed=seed)
        if seed is not None:
            self._env.seed(seed)
        self._succeeded = False
        obs, info = self._env.reset()
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One Meta-World step; adds ``is_success`` (success at any step of the episode)."""
        obs, reward, terminated, truncated, info = self._env.step(action)
        self._succeeded = self._succeeded or bool(info["success"])
        info = {**info, "is_success": float(self._succeeded)}
        return obs, float(reward), terminated, truncated, info

    def render(self) -> Any:
        """Meta-World's rendering."""
        return self._env.render()

    def close(self) -> None:
        """Close Meta-World's env."""
        self._env.close()
