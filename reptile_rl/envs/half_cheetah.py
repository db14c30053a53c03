"""MAML's half-cheetah families on Gymnasium's HalfCheetah-v5 physics.

Only the reward changes: both classes subclass Gymnasium's ``HalfCheetahEnv`` and override its
reward hook, so the physics, observation and reset noise are exactly HalfCheetah-v5's and the
per-step overhead is one subtraction.

Why our returns differ from MAML's tables: MAML's cheetah ran on rllab's model with a 0.01 s
time step and rewarded the centre-of-mass velocity. HalfCheetah-v5 steps 0.05 s (``frame_skip``
5 of 0.01 s) and rewards ``dx/dt`` of the root body. Published returns are therefore not
comparable; we compare against our own oracle and multi-task baselines instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import mujoco
import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from reptile_rl.envs.base import Task, TaskFamily, TaskT
from reptile_rl.envs.mujoco_batch import DirectStepping, simulate

CTRL_COST_WEIGHT = 0.05
"""MAML's control cost ``0.5 * 1e-1 * sum(a^2)``; Gymnasium's default weight is 0.1."""
HORIZON = 200
"""Episode length in MAML's cheetah experiments (some reimplementations use 100)."""


@dataclasses.dataclass(frozen=True)
class VelocityTask(Task):
    """A target forward velocity, drawn from U[0, 2] (Finn et al. 2017, section 5.3).

    PEARL, VariBAD and ProMP use U[0, 3]; we keep MAML's range.

    Attributes:
        target_velocity: Target velocity along x in m/s, in [0, 2].
    """

    family: ClassVar[str] = "half_cheetah_vel"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"target_velocity": (0.0, 2.0)}

    target_velocity: float


@dataclasses.dataclass(frozen=True)
class DirectionTask(Task):
    """A running direction: +1 forward, -1 backward (Finn et al. 2017, section 5.3).

    The family has only two tasks, so its train and test splits are both the whole family
    (``disjoint_splits = False``), as in MAML's evaluation.

    Attributes:
        direction: +1 or -1.
    """

    family: ClassVar[str] = "half_cheetah_dir"
    choices: ClassVar[dict[str, tuple[int, ...]]] = {"direction": (-1, 1)}
    disjoint_splits: ClassVar[bool] = False

    direction: int


_HALF_CHEETAH_DOC = """
    ## Action Space

    As HalfCheetah-v5: ``Box(-1, 1, (6,), float32)``, torques of the back thigh, shin and foot
    and the front thigh, shin and foot.

    ## Observation Space

    As HalfCheetah-v5: ``Box(-inf, inf, (17,), float64)``: 8 joint positions (root z, root
    angle, six joint angles; the root x is excluded) then 9 velocities. The task is **not**
    observed; wrap the env in :class:`envs.TaskInObservation` for an oracle.

    ## Starting State

    As HalfCheetah-v5: the default pose plus U[-0.1, 0.1] position noise and N(0, 0.1^2)
    velocity noise, drawn from ``np_random``.

    ## Episode End

    - Termination: never.
    - Truncation: after 200 steps (``max_episode_steps`` of the registered id), MAML's horizon.

    ## Arguments

    | Argument | Type | Default | Meaning |
    |----------|------|---------|---------|
    | ``task`` | task or None | first task of the train split | the initial task |
    | ``ctrl_cost_weight`` | float | 0.05 | MAML's control weight (v5's default is 0.1) |
    | ``**kwargs`` | | | passed to Gymnasium's ``HalfCheetahEnv`` (e.g. ``render_mode``) |

    ## Info

    As HalfCheetah-v5 (``x_position``, ``x_velocity``, ``reward_forward``, ``reward_ctrl``), plus
    the task parameter.

    ## Source

    Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks", ICML 2017, section 5.3 and the authors' ``rllab`` code. MAML used rllab's cheetah
    (dt 0.01, centre-of-mass velocity); this env uses Gymnasium's HalfCheetah-v5 physics (dt
    0.05, root ``dx/dt``), so MAML's published returns are not directly comparable.

    ## Version History

    - v0: initial version, on HalfCheetah-v5.
"""


@contextlib.contextmanager
def _quiet_settotalmass_deprecation() -> Iterator[None]:
    """Drop MuJoCo 4's deprecation notice about Gymnasium's own half_cheetah.xml.

    It is printed for every env built (20 times per worker, and on each ``gymnasium.make`` a
    user writes) and is not ours to fix; any other MuJoCo warning is passed on as a Python
    warning. The previous handler is restored.
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


class _HalfCheetahTaskEnv(DirectStepping, TaskFamily[TaskT], HalfCheetahEnv):
    """HalfCheetah-v5 whose forward reward depends on the current task."""

    task_key: str
    horizon = HORIZON

    def __init__(
        self, task: TaskT | None = None, ctrl_cost_weight: float = CTRL_COST_WEIGHT, **kwargs: Any
    ) -> None:
        with _quiet_settotalmass_deprecation():
            super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        # HalfCheetahEnv recorded its own arguments for pickling; record ours instead.
        utils.EzPickle.__init__(self, task, ctrl_cost_weight, **kwargs)
        self.set_task(task if task is not None else self.task_type.split_list("train", 1)[0])

    def _forward_reward(self, x_velocity: float) -> float:
        raise NotImplementedError

    @classmethod
    def _forward_rewards(cls, envs: Sequence[Any], x_velocity: np.ndarray) -> np.ndarray:
        """:meth:`_forward_reward` of each env at once (the same float64 arithmetic)."""
        raise NotImplementedError

    @classmethod
    def _batch_step(
        cls, envs: Sequence[Any], actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """HalfCheetah-v5's ``step`` and this family's reward, for every copy at once."""
        before = np.array([env.data.qpos[0] for env in envs])
        simulate(envs, actions)
        qpos = np.stack([env.data.qpos for env in envs])
        after = qpos[:, 0]
        x_velocity = (after - before) / envs[0].dt
        first = 1 if envs[0]._exclude_current_positions_from_observation else 0
        observations = np.concatenate([qpos[:, first:], np.stack([e.data.qvel for e in envs])], 1)
        forward = cls._forward_rewards(envs, x_velocity)
        # control_cost's arithmetic: a Python float times the actions' dtype (float32 from SB3).
        ctrl = envs[0]._ctrl_cost_weight * np.sum(np.square(actions), axis=1)
        infos = [
            {
                "x_position": after[i],
                "x_velocity": x_velocity[i],
                "reward_forward": forward[i],
                "reward_ctrl": -ctrl[i],
                cls.task_key: getattr(env._task, cls.task_key),
            }
            for i, env in enumerate(envs)
        ]
        return observations, forward - ctrl, np.zeros(len(envs), dtype=bool), infos

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, Any]]:
        forward_reward = self._forward_reward(x_velocity)
        ctrl_cost = float(self.control_cost(action))  # type: ignore[no-untyped-call]
        info = {
            "reward_forward": forward_reward,
            "reward_ctrl": -ctrl_cost,
            self.task_key: getattr(self._task, self.task_key),
        }
        return forward_reward - ctrl_cost, info


class HalfCheetahVelEnv(_HalfCheetahTaskEnv[VelocityTask]):
    """MAML's goal-velocity half-cheetah on HalfCheetah-v5 physics.

    ## Description

    MAML's goal-velocity half-cheetah: run forward at a target velocity that is not observed.

    ## Tasks

    ``VelocityTask(target_velocity)`` with the target in ``[0, 2]`` m/s, sampled uniformly.
    The task persists across ``reset()``.

    ## Rewards

    ``reward = -|x_velocity - target_velocity| - 0.05 * sum(action^2)`` where
    ``x_velocity = dx/dt`` of the root over the 0.05 s step. ``info["reward_forward"]`` is the
    first term, ``info["reward_ctrl"]`` the second (negative), ``info["target_velocity"]`` the
    target. A cheetah standing still scores about ``-200 * target`` per episode.
    """

    __doc__ = (__doc__ or "") + _HALF_CHEETAH_DOC
    task_type = VelocityTask
    task_key = "target_velocity"
    source = "MAML (Finn et al. 2017, section 5.3), half_cheetah_env_rand.py of cbfinn/maml_rl"

    def _forward_reward(self, x_velocity: float) -> float:
        return -abs(x_velocity - self._task.target_velocity)

    @classmethod
    def _forward_rewards(cls, envs: Sequence[Any], x_velocity: np.ndarray) -> np.ndarray:
        targets = np.array([env._task.target_velocity for env in envs])
        rewards: np.ndarray = -np.abs(x_velocity - targets)
        return rewards


class HalfCheetahDirEnv(_HalfCheetahTaskEnv[DirectionTask]):
    """MAML's forward/backward half-cheetah on HalfCheetah-v5 physics.

    ## Description

    MAML's forward/backward half-cheetah: run as fast as possible in the task's direction.

    ## Tasks

    ``DirectionTask(direction)`` with ``direction`` in ``{-1, +1}``. The family has two tasks,
    so its train and test splits both contain both directions (``disjoint_splits = False``).
    The task persists across ``reset()``.

    ## Rewards

    ``reward = direction * x_velocity - 0.05 * sum(action^2)``. ``info["reward_forward"]`` is
    the first term, ``info["reward_ctrl"]`` the second (negative), ``info["direction"]`` the
    direction.
    """

    __doc__ = (__doc__ or "") + _HALF_CHEETAH_DOC
    task_type = DirectionTask
    task_key = "direction"
    source = (
        "MAML (Finn et al. 2017, section 5.3), half_cheetah_env_rand_direc.py of cbfinn/maml_rl"
    )

    def _forward_reward(self, x_velocity: float) -> float:
        return self._task.direction * x_velocity

    @classmethod
    def _forward_rewards(cls, envs: Sequence[Any], x_velocity: np.ndarray) -> np.ndarray:
        rewards: np.ndarray = np.array([env._task.direction for env in envs]) * x_velocity
        return rewards
