"""Tasks and the task-family API shared by every environment family.

A *task* is one member of a family (one goal, one target velocity, one direction). It is a
frozen dataclass that validates itself on construction and round-trips through JSON. A *task
family* environment holds exactly one task at a time; the task persists across ``reset()`` and
changes only through :meth:`TaskFamily.set_task` -- resampling on reset would silently turn
meta-RL into a partially observed single task, a mistake found in the issue trackers of older
meta-RL toolkits.

Train / test split:
    Every family has a fixed, seed-independent partition of its task space into a ``"train"``
    and a ``"test"`` split. For continuous families a task belongs to the test split when a hash
    of its exact parameter values is odd. Both splits therefore cover the whole parameter range
    uniformly, they can never share a task, and the split of any task (including one read back
    from JSON) can be recomputed. Sampling draws uniformly from the range and rejects tasks of
    the other split. Families with only a handful of tasks (HalfCheetahDir has two) cannot be
    split without leaving part of the family unseen, so they declare ``disjoint_splits = False``
    and both splits are the whole family, as in MAML's evaluation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")

# Seeds of the canonical, seed-free task lists returned by ``task_split`` (one per split).
_SPLIT_LIST_SEEDS: dict[Split, int] = {"train": 20170309, "test": 20180308}


@dataclasses.dataclass(frozen=True)
class Task:
    """Base class of all tasks: validation, JSON round trip, sampling and split membership.

    Subclasses are frozen dataclasses whose fields are the task parameters. They declare
    ``family`` (a short name used in JSON) and either ``bounds`` (a closed interval per
    continuous field) or ``choices`` (the allowed values per discrete field).
    """

    family: ClassVar[str] = ""
    bounds: ClassVar[dict[str, tuple[float, float]]] = {}
    choices: ClassVar[dict[str, tuple[int, ...]]] = {}
    disjoint_splits: ClassVar[bool] = True

    _registry: ClassVar[dict[str, type[Task]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.family:
            Task._registry[cls.family] = cls

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            object.__setattr__(self, field.name, self._validated(field.name, value))
        self._check_together()

    def _check_together(self) -> None:
        """Rules over several fields at once (e.g. a disk), after each field's own check.

        Raises:
            ValueError: If the fields are valid one by one but not together.
        """

    @classmethod
    def _validated(cls, name: str, value: Any) -> float | int:
        """Return ``value`` checked (and coerced to the field's type) or raise ``ValueError``."""
        if name in cls.choices:
            values = cls.choices[name]
            run = _integer_run(values)
            allowed = f"an integer in {run}" if run else f"one of {list(values)}"
        else:
            allowed = "a finite number in [{}, {}]".format(*cls.bounds[name])
        wrong = ValueError(f"{cls.__name__}.{name} must be {allowed}, got {value!r}")
        is_number = isinstance(value, int | float | np.integer | np.floating)
        if isinstance(value, bool | np.bool_) or not is_number:
            raise ValueError(f"{wrong} ({type(value).__name__})")
        if name in cls.choices:
            if value not in cls.choices[name]:
                raise wrong
            return int(value)
        low, high = cls.bounds[name]
        try:
            number = float(value) + 0.0  # + 0.0 turns -0.0 into 0.0: equal tasks, equal JSON
        except OverflowError:
            raise wrong from None
        if not math.isfinite(number) or not low <= number <= high:
            raise wrong
        return number

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the task as a JSON-ready dict that names its family."""
        return {"family": self.family, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        """Return the task as a JSON string; :func:`task_from_json` reads it back exactly."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def describe_space(cls) -> str:
        """The task space in words, e.g. ``"target_velocity in [0.0, 2.0]"``."""
        parts = []
        for field in dataclasses.fields(cls):
            if field.name in cls.choices:
                values = cls.choices[field.name]
                listed = _integer_run(values) or "{" + ", ".join(str(v) for v in values) + "}"
                parts.append(f"{field.name} in {listed}")
            else:
                parts.append("{} in [{}, {}]".format(field.name, *cls.bounds[field.name]))
        return ", ".join(parts)

    def as_array(self) -> np.ndarray:
        """Return the task parameters as a float32 vector (used by the oracle wrapper)."""
        return np.array(dataclasses.astuple(self), dtype=np.float32)

    @classmethod
    def parameter_bounds(cls) -> tuple[np.ndarray, np.ndarray]:
        """Return the (low, high) float32 vectors bounding :meth:`as_array`."""
        lows: list[float] = []
        highs: list[float] = []
        for field in dataclasses.fields(cls):
            if field.name in cls.choices:
                lows.append(min(cls.choices[field.name]))
                highs.append(max(cls.choices[field.name]))
            else:
                lows.append(cls.bounds[field.name][0])
                highs.append(cls.bounds[field.name][1])
        return np.array(lows, dtype=np.float32), np.array(highs, dtype=np.float32)

    # -- splits and sampling ------------------------------------------------------------------
    @property
    def split(self) -> Split:
        """The split this task belongs to (for non-disjoint families: always ``"train"``)."""
        if not self.disjoint_splits:
            return "train"
        digest = hashlib.blake2b(self.to_json().encode(), digest_size=8).digest()
        return "test" if digest[-1] & 1 else "train"

    @property
    def group(self) -> str | None:
        """The group reports summarise the task in too (an ML10 task's skill); ``None``: none."""
        return None

    def in_split(self, split: Split) -> bool:
        """Whether the task belongs to ``split`` (non-disjoint families belong to both)."""
        return not self.disjoint_splits or self.split == split

    @classmethod
    def _draw(cls, rng: np.random.Generator) -> Task:
        """Draw one task uniformly from the whole family."""
        values: dict[str, float | int] = {}
        for field in dataclasses.fields(cls):
            if field.name in cls.choices:
                values[field.name] = int(rng.choice(cls.choices[field.name]))
            else:
                low, high = cls.bounds[field.name]
                values[field.name] = float(rng.uniform(low, high))
        return cls(**values)

    @classmethod
    def sample(
        cls: type[TaskT], n: int, seed: int | None = None, split: Split = "train"
    ) -> list[TaskT]:
        """Draw ``n`` tasks uniformly from one split.

        Args:
            n: Number of tasks (>= 0).
            seed: Seed of the draw; ``None`` draws fresh entropy.
            split: ``"train"`` or ``"test"``.

        Returns:
            The tasks, in draw order; the same seed always gives the same list, and a longer
            list starts with the shorter one.

        Raises:
            ValueError: If ``n`` is negative or ``split`` is unknown.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        rng = np.random.default_rng(seed)
        tasks: list[TaskT] = []
        while len(tasks) < n:
            task = cls._draw(rng)
            if task.in_split(split):
                tasks.append(task)  # type: ignore[arg-type]
        return tasks

    @classmethod
    def split_list(cls: type[TaskT], split: Split, n: int) -> list[TaskT]:
        """Return the first ``n`` tasks of the family's fixed, seed-free list for ``split``."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        if not cls.disjoint_splits and cls.choices:
            # A finite family: enumerate it in a fixed order, cycling (e.g. -1, +1, -1, ...).
            (name, allowed), *rest = cls.choices.items()
            if rest or cls.bounds:
                raise TypeError("cycling split lists support one discrete field")
            return [cls(**{name: allowed[i % len(allowed)]}) for i in range(n)]
        return cls.sample(n, seed=_SPLIT_LIST_SEEDS[split], split=split)


TaskT = TypeVar("TaskT", bound=Task)


def _integer_run(values: tuple[int, ...]) -> str | None:
    """``"-5..5"`` for a run of more than two consecutive integers (it reads better), else None."""
    if len(values) > 2 and values == tuple(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return None


def task_from_dict(data: dict[str, Any]) -> Task:
    """Build a task from :meth:`Task.to_dict` output.

    Raises:
        ValueError: If the family is unknown, a field is missing or extra, or a value is invalid.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a task must be a JSON object, got {type(data).__name__}")
    fields = dict(data)
    family = fields.pop("family", None)
    if not isinstance(family, str) or family not in Task._registry:
        raise ValueError(f"task.family must be one of {sorted(Task._registry)}, got {family!r}")
    cls = Task._registry[family]
    expected = {f.name for f in dataclasses.fields(cls)}
    if set(fields) != expected:
        raise ValueError(
            f"{cls.__name__} needs exactly the fields {sorted(expected)}, got {sorted(fields)}"
        )
    return cls(**fields)


def task_from_json(text: str) -> Task:
    """Inverse of :meth:`Task.to_json`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"a task must be JSON: {error}") from None
    return task_from_dict(data)


class TaskFamily(Generic[TaskT]):
    """Mixin giving an environment the task-family API.

    Subclasses set ``task_type`` and store the current task in ``self._task``. The API is the
    same on single environments and on the batched :class:`envs.Navigation2DVecEnv`.
    """

    task_type: type[TaskT]
    _task: TaskT

    horizon: int
    """Episode length; the registered id's ``max_episode_steps`` is the class's value."""

    reference_results: ClassVar[dict[str, list[float]]] = {}
    """Published mean returns after 0, 1, 2... adaptation steps, by method (e.g. MAML's table);
    empty if the literature gives none for this exact definition."""

    reference_source: ClassVar[str] = ""
    """Where :attr:`reference_results` come from."""

    metric: ClassVar[str] = "return"
    """What evaluation reports for the family (Meta-World's: ``"success rate and return"``)."""

    evaluation_protocols: ClassVar[tuple[str, ...]] = ("toolkit",)
    """The ``evaluation.protocol`` values the family can be evaluated with: the toolkit's
    (MAML's) everywhere, a benchmark's own where the family is that benchmark's."""

    source: ClassVar[str] = ""
    """Where the family's definition comes from, in one line (``reptile-rl envs`` prints it)."""

    @classmethod
    def batched_vec_env(cls, num_envs: int, horizon: int, **kwargs: Any) -> VecEnv | None:
        """A VecEnv that steps ``num_envs`` copies at once, or ``None`` to use a DummyVecEnv.

        Families with cheap NumPy dynamics override this (one array operation for all copies).

        Args:
            num_envs: Number of copies.
            horizon: Steps after which an episode is truncated (the registered id's).
            kwargs: The keyword arguments ``gymnasium.make`` would get.

        Raises:
            ValueError: If the family's batched env does not take ``kwargs``.
        """
        return None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why the family cannot be built here (and how to fix it), or ``None`` if it can."""
        return None

    def sample_tasks(self, n: int, seed: int | None = None, split: Split = "train") -> list[TaskT]:
        """Draw ``n`` tasks of this family from one split (see :meth:`Task.sample`)."""
        return self.task_type.sample(n, seed=seed, split=split)

    def task_split(self, split: Split, n: int) -> list[TaskT]:
        """Return the first ``n`` tasks of the family's fixed list for ``split``.

        The lists are deterministic and, for families with ``disjoint_splits``, no task of the
        ``"test"`` list can ever appear in the ``"train"`` split.
        """
        return self.task_type.split_list(split, n)

    def set_task(self, task: TaskT) -> None:
        """Make ``task`` the current task; it stays until the next ``set_task``.

        Raises:
            ValueError: If ``task`` is not a task of this family.
        """
        self._task = self.validate_task(task)

    def get_task(self) -> TaskT:
        """Return the current task."""
        return self._task

    @classmethod
    def validate_task(cls, task: Any) -> TaskT:
        """Return ``task`` if it is a valid task of this family, else raise ``ValueError``."""
        if not isinstance(task, cls.task_type):
            family = getattr(task, "family", None)
            got = f"a {family!r} task" if family else f"{type(task).__name__} {task!r}"
            raise ValueError(
                f"task must be a {cls.task_type.__name__} (family {cls.task_type.family!r}), "
                f"got {got}"
            )
        # Re-run validation: a frozen dataclass can still be forged with object.__setattr__.
        for field in dataclasses.fields(task):
            task._validated(field.name, getattr(task, field.name))
        task._check_together()
        return task


def as_task_list(tasks: TaskT | Sequence[TaskT], n: int) -> list[TaskT]:
    """Broadcast one task to ``n`` copies, or check that a sequence has ``n`` tasks."""
    if isinstance(tasks, Task):
        return [tasks] * n
    task_list = list(tasks)
    if len(task_list) != n:
        raise ValueError(f"expected {n} tasks (one per sub-environment), got {len(task_list)}")
    return task_list
