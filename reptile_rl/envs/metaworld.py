"""Meta-World's ML benchmarks as task families (optional extra: ``pip install -e '.[metaworld]'``).

One ML1 benchmark is one Meta-World manipulation skill (``reach-v3``, ``push-v3``, ...) whose
tasks are goal (and object) positions. Meta-World draws 50 training and 50 test goals; they
are this family's train and test splits, in Meta-World's order, so a task is a goal index.

ML10 (and ML45, by the same code) holds many skills: 10 (45) train skills and 5 held-out test
skills, 50 goals each, Meta-World's own split; a task is a skill index and a goal index.

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

    @classmethod
    def test_goals(cls, per_skill: int) -> list[ML1Task]:
        """The first ``per_skill`` test goals (Meta-World's protocol: all 50)."""
        return cls.split_list("test", min(per_skill, GOALS_PER_SPLIT))


@dataclasses.dataclass(frozen=True)
class MLTask(Task):
    """One task of a many-skill ML benchmark: a skill and one of its 50 goals.

    Skills ``0..train_skills-1`` are the benchmark's train skills, the rest its 5 test skills,
    in the order of Meta-World's ``train_classes`` and ``test_classes``; the split is
    Meta-World's own (held-out skills). Goals are the 50 of each skill in
    ``metaworld.<benchmark>(seed=0)``. :class:`ML10Task` and :class:`ML45Task` are the two.

    Attributes:
        skill: Index into the benchmark's train skills followed by its test skills.
        goal: Index into that skill's 50 goals.
    """

    benchmark: ClassVar[str] = ""
    train_skills: ClassVar[int] = 0

    skill: int
    goal: int

    @classmethod
    def describe_space(cls) -> str:
        """Skill and goal indices and where they come from."""
        skills = len(cls.choices["skill"])
        return (
            f"skill in 0..{cls.train_skills - 1} (Meta-World's {cls.benchmark} train skills) or "
            f"{cls.train_skills}..{skills - 1} (its test skills), goal in "
            f"0..{GOALS_PER_SPLIT - 1}"
        )

    @property
    def split(self) -> Split:
        """Meta-World's own split: train skills and held-out test skills."""
        return "train" if self.skill < self.train_skills else "test"

    @property
    def group(self) -> str:
        """The skill: reports give every metric per skill too (Meta-World reports per skill)."""
        if metaworld is None:
            return f"skill {self.skill}"
        return f"skill {self.skill} ({_ml_skills(self.benchmark)[self.skill][0]})"

    @classmethod
    def split_list(cls, split: Split, n: int) -> list[Any]:
        """Every goal of every skill of ``split``, skill by skill in Meta-World's order."""
        super().split_list(split, 0)  # validates ``split``
        skills = len(cls.choices["skill"])
        first, last = (0, cls.train_skills) if split == "train" else (cls.train_skills, skills)
        pairs = [(s, g) for s in range(first, last) for g in range(GOALS_PER_SPLIT)]
        return [cls(*pairs[i % len(pairs)]) for i in range(n)]

    @classmethod
    def test_goals(cls, per_skill: int) -> list[Any]:
        """The first ``per_skill`` goals of every test skill (Meta-World's protocol: all 50)."""
        skills = range(cls.train_skills, len(cls.choices["skill"]))
        return [cls(s, g) for s in skills for g in range(min(per_skill, GOALS_PER_SPLIT))]


@dataclasses.dataclass(frozen=True)
class ML10Task(MLTask):
    """One task of ML10: skills 0-9 are its train skills, 10-14 its test skills."""

    family: ClassVar[str] = "metaworld_ml10"
    benchmark: ClassVar[str] = "ML10"
    train_skills: ClassVar[int] = 10
    choices: ClassVar[dict[str, tuple[int, ...]]] = {
        "skill": tuple(range(15)),
        "goal": tuple(range(GOALS_PER_SPLIT)),
    }


@dataclasses.dataclass(frozen=True)
class ML45Task(MLTask):
    """One task of ML45: skills 0-44 are its train skills, 45-49 its test skills."""

    family: ClassVar[str] = "metaworld_ml45"
    benchmark: ClassVar[str] = "ML45"
    train_skills: ClassVar[int] = 45
    choices: ClassVar[dict[str, tuple[int, ...]]] = {
        "skill": tuple(range(50)),
        "goal": tuple(range(GOALS_PER_SPLIT)),
    }


@functools.lru_cache(maxsize=2)
def _ml_benchmark(name: str) -> Any:
    """Meta-World's ML10 or ML45 benchmark (skills and goals), built once per process."""
    if metaworld is None:
        raise ImportError(INSTALL_HINT)
    return getattr(metaworld, name)(seed=ML1_SEED)


def _ml_skills(name: str) -> list[tuple[str, type[Any]]]:
    """The benchmark's skills in task-index order: its train skills, then its test skills."""
    benchmark = _ml_benchmark(name)
    return [*benchmark.train_classes.items(), *benchmark.test_classes.items()]


@functools.lru_cache(maxsize=2)
def _ml_observation_space(name: str) -> gym.spaces.Box:
    """One observation space for every skill of the benchmark: the union of their boxes.

    Every Meta-World v3 skill observes the same 39 numbers in the same layout (hand, gripper,
    two object slots padded with zeros, the same for the previous step, and the goal, which ML
    benchmarks zero); only the bounds differ between skills.
    """
    spaces = []
    for _, env_class in _ml_skills(name):
        env = env_class()
        spaces.append(env.observation_space)
        env.close()
    low = np.min([space.low for space in spaces], axis=0)
    high = np.max([space.high for space in spaces], axis=0)
    return gym.spaces.Box(low, high, dtype=np.float64)


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


class _MetaWorldEnv(gym.Env[np.ndarray, np.ndarray]):
    """What the ML families share: a Meta-World env (``_env``) stepped as it is, and success.

    ``info["is_success"]`` (SB3's convention) is 1.0 once the episode has succeeded at any
    step, so the episode's success is its value at the last step, as in Meta-World's
    evaluation (where success ends the episode).
    """

    _env: Any
    _succeeded: bool

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """The install hint when Meta-World is missing, else ``None``."""
        return INSTALL_HINT if metaworld is None else None

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


class MetaWorldML1Env(_MetaWorldEnv, TaskFamily[ML1Task]):
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

    def set_task(self, task: ML1Task) -> None:
        """Make ``task`` the current goal (Meta-World's ``set_task``); it stays until changed."""
        super().set_task(task)
        self._env.set_task(self._goals[self._task.goal])


_ML_DOC = """

    ## Description

    Meta-World's {benchmark}: a Sawyer arm performs one of {skills} manipulation skills (reach,
    push, door-open, ...) for a goal it does not observe; Reptile samples a skill and a goal per
    task. Meta-World holds out {tests} test skills, which meta-training never sees. The envs are
    Meta-World's own: physics, reward and observation are Meta-World's.

    ## Tasks

    ``{task}(skill, goal)``: skills 0-{last_train} are Meta-World's {benchmark} train skills and
    {first_test}-{last} its test skills (``metaworld.{benchmark}(seed=0)``'s ``train_classes``
    then ``test_classes``), goals 0-49 each skill's goals. The task persists across ``reset()``;
    setting a task of another skill builds that skill's env.

    ## Action Space

    ``Box(-1, 1, (4,), float32)``, every skill's: the hand's x, y, z displacement and the gripper.

    ## Observation Space

    ``Box((39,), float64)``: every Meta-World v3 skill observes the same 39 numbers in the same
    layout (hand position, gripper opening, two object slots of position and quaternion, padded
    with zeros where a skill has one object, the same for the previous step, and a goal slot
    that ML benchmarks zero), so one policy serves all; the bounds are the union of the skills'.
    Meta-World's ML benchmarks add no skill id (its MT benchmarks add a one-hot).

    ## Rewards

    The skill's Meta-World v2 reward, in [0, 10] per step; ``info["success"]`` and
    ``info["is_success"]`` as in the ML1 family.

    ## Episode End

    - Termination: never (``terminate_on_success`` off, as in Meta-World's training).
    - Truncation: after 500 steps, Meta-World's ``max_path_length``.

    ## Arguments

    | Argument | Type | Default | Meaning |
    |----------|------|---------|---------|
    | ``task`` | {task} or None | skill 0, goal 0 | the initial task |
    | ``render_mode`` | str or None | None | passed to Meta-World's env |

    ## Source

    Yu et al., "Meta-World", CoRL 2019; the ``metaworld`` package 3.1.1 (its {benchmark}
    benchmark and v3 envs).
"""


class _MetaWorldMLEnv(_MetaWorldEnv, TaskFamily[Any]):
    """A many-skill ML benchmark (ML10, ML45): one Meta-World env, of the current task's skill."""

    horizon = HORIZON
    metric = "success rate and return"
    evaluation_protocols = ("toolkit", "metaworld")
    metadata = {"render_modes": ["human", "rgb_array", "depth_array"]}  # noqa: RUF012

    def __init__(self, task: MLTask | None = None, render_mode: str | None = None) -> None:
        name = self.task_type.benchmark
        benchmark = _ml_benchmark(name)
        self._skills = _ml_skills(name)
        self._goals = [*benchmark.train_tasks, *benchmark.test_tasks]
        self.observation_space = _ml_observation_space(name)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
        self.render_mode = render_mode
        self._succeeded = False
        self._skill: int | None = None
        self.set_task(task if task is not None else self.task_type(0, 0))

    def set_task(self, task: MLTask) -> None:
        """Make ``task`` current: its skill's env (built if the skill changes) at its goal."""
        super().set_task(task)
        skill = self._task.skill
        if skill != self._skill:
            if self._skill is not None:
                self._env.close()
            name, env_class = self._skills[skill]
            self._env = env_class(render_mode=self.render_mode)
            self._skill = skill
        name = self._skills[skill][0]
        goals = [goal for goal in self._goals if goal.env_name == name]
        self._env.set_task(goals[self._task.goal])

    @property
    def skill_name(self) -> str:
        """The current skill's Meta-World name (``"reach-v3"``...)."""
        assert self._skill is not None
        return str(self._skills[self._skill][0])

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One step of the skill's env, its observation cast to the family's dtype."""
        obs, reward, terminated, truncated, info = super().step(action)
        return obs.astype(np.float64, copy=False), reward, terminated, truncated, info


class MetaWorldML10Env(_MetaWorldMLEnv):
    """Meta-World's ML10: 10 train skills, 5 held-out test skills, 50 goals each."""

    __doc__ = (__doc__ or "") + _ML_DOC.format(
        benchmark="ML10", skills=15, tests=5, task="ML10Task", last_train=9, first_test=10, last=14
    )
    task_type = ML10Task
    source = "Meta-World (Yu et al. 2019), ML10 of the metaworld package 3.1.1"


class MetaWorldML45Env(_MetaWorldMLEnv):
    """Meta-World's ML45: 45 train skills, 5 held-out test skills, 50 goals each."""

    __doc__ = (__doc__ or "") + _ML_DOC.format(
        benchmark="ML45", skills=50, tests=5, task="ML45Task", last_train=44, first_test=45, last=49
    )
    task_type = ML45Task
    source = "Meta-World (Yu et al. 2019), ML45 of the metaworld package 3.1.1"
