"""The meta-RL literature's ant families on Gymnasium's Ant-v5 physics.

Only the reward (and, for the goal family, termination and observation options) changes: each
class subclasses Gymnasium's ``AntEnv`` and overrides its reward hook, so the physics, the
observation and the reset noise are Ant-v5's and the per-step overhead is a few operations.

- ``AntVelEnv`` and ``AntDirEnv``: MAML's goal-velocity and forward/backward ant (Finn et al.
  2017, section 5.3; the authors' ``rllab`` code, ``ant_env_rand.py`` and
  ``ant_env_rand_direc.py`` of cbfinn/maml_rl).
- ``AntGoalEnv``: the goal-position ant of ProMP (Rothfuss et al. 2019, ``ant_rand_goal.py`` of
  jonasrothfuss/ProMP), which PEARL (Rakelly et al. 2019) copied: goals uniform over the disk
  of radius 3, no survive bonus, no termination.

Why our returns differ from published ones: rllab's and ProMP's ants ran older MuJoCo models.
rllab's ant (MAML) stepped 0.02 s and rewarded the torso's centre-of-mass velocity; ProMP's
direction ant rewarded the torso's change of position over its step, ``dx/dt`` as Ant-v5 does,
and its goal ant the torso's position. Ant-v5 steps 0.05 s. We compare against our own oracle
and multi-task baselines instead.

The control cost is charged on the action as the env receives it. MAML's pipeline (rllab's
``normalize`` wrapper) clipped the action to its bounds before the env charged it; SB3's
learners clip a Box action to the action space before ``step`` as well, so the two agree in
training and evaluation here, and differ only for a caller who steps the env with an action
outside ``[-1, 1]`` (MuJoCo applies the clipped control either way).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.ant_v5 import AntEnv

from reptile_rl.envs.base import Task, TaskFamily, TaskT
from reptile_rl.envs.mujoco_batch import DirectStepping, simulate

HORIZON = 200
"""Episode length of MAML's ant experiments and of PEARL's ant-goal.

ProMP's run scripts default to 100 steps for its ant-goal; we keep 200 for every ant family,
PEARL's horizon for the same goal ant (one horizon for all three, and the longer walk lets
goals at the rim be reached).
"""
MAML_CTRL_COST_WEIGHT = 0.005
"""MAML's ``0.5 * 1e-2 * sum((a / scaling)^2)``; Ant-v5's actions already span [-1, 1]."""
MAML_SURVIVE_REWARD = 0.05
"""MAML's survive bonus per step (Ant-v5's default is 1.0)."""
GOAL_CTRL_COST_WEIGHT = 0.1
"""ProMP's ``0.1 * sum(a^2)`` for the goal ant."""
GOAL_RADIUS = 3.0
"""Goals lie in the disk of this radius around the start (ProMP, PEARL)."""


@dataclasses.dataclass(frozen=True)
class AntVelocityTask(Task):
    """A target forward velocity, drawn from U[0, 3] (MAML's ``ant_env_rand.py``).

    Attributes:
        target_velocity: Target velocity along x in m/s, in [0, 3].
    """

    family: ClassVar[str] = "ant_vel"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"target_velocity": (0.0, 3.0)}

    target_velocity: float


@dataclasses.dataclass(frozen=True)
class AntDirectionTask(Task):
    """A running direction along x: +1 forward, -1 backward (MAML's ``ant_env_rand_direc.py``).

    Two tasks, so the train and test splits are both the whole family (``disjoint_splits =
    False``), as in MAML's evaluation.

    Attributes:
        direction: +1 or -1.
    """

    family: ClassVar[str] = "ant_dir"
    choices: ClassVar[dict[str, tuple[int, ...]]] = {"direction": (-1, 1)}
    disjoint_splits: ClassVar[bool] = False

    direction: int


@dataclasses.dataclass(frozen=True)
class AntGoalTask(Task):
    """A goal position, uniform over the disk of radius 3 (ProMP's ``ant_rand_goal.py``).

    Drawn as ProMP draws it: angle ``U[0, 2 pi)``, radius ``3 * sqrt(U[0, 1])``.

    Attributes:
        goal_x: x coordinate of the goal, in [-3, 3].
        goal_y: y coordinate of the goal, in [-3, 3]; ``goal_x^2 + goal_y^2 <= 9``.
    """

    family: ClassVar[str] = "ant_goal"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "goal_x": (-GOAL_RADIUS, GOAL_RADIUS),
        "goal_y": (-GOAL_RADIUS, GOAL_RADIUS),
    }

    goal_x: float
    goal_y: float

    def _check_together(self) -> None:
        # The box bounds above hold the corners too; the family is the disk.
        if math.hypot(self.goal_x, self.goal_y) > GOAL_RADIUS:
            raise ValueError(
                f"AntGoalTask (goal_x, goal_y) must lie within {GOAL_RADIUS} of the origin, "
                f"got ({self.goal_x!r}, {self.goal_y!r})"
            )

    @classmethod
    def describe_space(cls) -> str:
        """The disk (the box bounds alone would also hold its corners)."""
        return f"(goal_x, goal_y) in the disk of radius {GOAL_RADIUS} around the start"

    @classmethod
    def _draw(cls, rng: np.random.Generator) -> Task:
        angle = rng.uniform(0.0, 2.0 * np.pi)
        radius = GOAL_RADIUS * math.sqrt(rng.uniform(0.0, 1.0))
        x, y = radius * math.cos(angle), radius * math.sin(angle)
        # Rounding can put a goal on the rim a hair outside the disk: pull it back onto it.
        norm = math.hypot(x, y)
        scale = GOAL_RADIUS / norm if norm > GOAL_RADIUS else 1.0
        return cls(goal_x=x * scale, goal_y=y * scale)


_ANT_DOC = """
    ## Action Space

    As Ant-v5: ``Box(-1, 1, (8,), float32)``, torques of the hip and ankle of each leg.

    ## Starting State

    As Ant-v5: the default pose plus U[-0.1, 0.1] position noise and N(0, 0.1^2) velocity
    noise, drawn from ``np_random``.

    ## Info

    As Ant-v5 (``x_position``, ``y_position``, ``x_velocity``, ``reward_forward``,
    ``reward_ctrl``, ``reward_contact``, ``reward_survive``, ...), plus the task parameter(s).

    ## Version History

    - v0: initial version, on Ant-v5.
"""

_MAML_ANT_DOC = """
    ## Observation Space

    As Ant-v5: ``Box(-inf, inf, (105,), float64)``: 13 joint positions (the torso's x and y
    are excluded), 14 velocities, and 78 contact forces clipped to [-1, 1]. The task is **not**
    observed; wrap the env in :class:`envs.TaskInObservation` for an oracle. (MAML's rllab ant
    also observed the torso's x, y, orientation matrix and centre of mass; none of them tells
    the task, and Ant-v5's observation is what SB3 users train on.)

    ## Episode End

    - Termination: when the ant is unhealthy, as in MAML: a non-finite state, or the torso's
      height outside [0.2, 1.0] (Ant-v5's ``is_healthy``).
    - Truncation: after 200 steps (``max_episode_steps`` of the registered id), MAML's horizon.

    ## Arguments

    | Argument | Type | Default | Meaning |
    |----------|------|---------|---------|
    | ``task`` | task or None | first task of the train split | the initial task |
    | ``ctrl_cost_weight`` | float | 0.005 | MAML's control weight (v5's default is 0.5) |
    | ``survive_reward`` | float | 0.05 | MAML's survive bonus per step (v5's default is 1.0) |
    | ``**kwargs`` | | | passed to Gymnasium's ``AntEnv`` (e.g. ``render_mode``) |

    ## Source

    Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks", ICML 2017, section 5.3, and the authors' code (github.com/cbfinn/maml_rl,
    ``rllab/envs/mujoco/{name}``). Deliberate differences: Ant-v5's physics and observation;
    the velocity is the torso's ``dx/dt`` over the 0.05 s step (rllab: the torso's
    centre-of-mass velocity, 0.02 s steps); the control cost is charged on the action as
    given (rllab's ``normalize`` clipped it first; SB3 clips before ``step`` too); the
    contact cost is Ant-v5's, ``5e-4 * sum(clip(cfrc_ext, -1, 1)^2)``, which is MAML's
    ``0.5 * 1e-3`` on the same clipped forces.
"""


class _AntTaskEnv(DirectStepping, TaskFamily[TaskT], AntEnv):
    """Ant-v5 whose reward depends on the current task (MAML's cost terms)."""

    horizon = HORIZON

    def __init__(
        self,
        task: TaskT | None = None,
        ctrl_cost_weight: float = MAML_CTRL_COST_WEIGHT,
        survive_reward: float = MAML_SURVIVE_REWARD,
        **kwargs: Any,
    ) -> None:
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        # AntEnv recorded its own arguments for pickling; record ours instead.
        utils.EzPickle.__init__(self, task, ctrl_cost_weight, survive_reward, **kwargs)
        self._survive_reward = survive_reward
        self.set_task(task if task is not None else self.task_type.split_list("train", 1)[0])

    def _task_reward(self, x_velocity: float) -> tuple[float, dict[str, Any]]:
        """The task's term of the reward and the task's entries of ``info``."""
        raise NotImplementedError

    @staticmethod
    def _batch_step(
        envs: Sequence[Any], actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Ant-v5's ``step`` with this family's reward, for every copy: the same arithmetic."""
        first = envs[0]
        body = first._main_body
        before = np.stack([env.data.body(body).xpos[:2] for env in envs])
        simulate(envs, actions)
        after = np.stack([env.data.body(body).xpos[:2] for env in envs])
        xy_velocity = (after - before) / first.dt
        qpos = np.stack([env.data.qpos for env in envs])
        qvel = np.stack([env.data.qvel for env in envs])
        low, high = first._contact_force_range
        contact = np.clip(np.stack([env.data.cfrc_ext for env in envs]), low, high)
        parts = [qpos[:, 2:] if first._exclude_current_positions_from_observation else qpos, qvel]
        if first._include_cfrc_ext_in_observation:
            parts.append(contact[:, 1:].reshape(len(envs), -1))
        observations = np.concatenate(parts, axis=1)
        # control_cost and contact_cost as Ant-v5 computes them, then _get_rew's sum.
        ctrl = first._ctrl_cost_weight * np.sum(np.square(actions), axis=1)
        contact_cost = first._contact_cost_weight * np.sum(
            np.square(contact).reshape(len(envs), -1), axis=1
        )
        tasks = [env._task_reward(xy_velocity[i, 0]) for i, env in enumerate(envs)]
        task_rewards = np.array([reward for reward, _ in tasks])
        survive = first._survive_reward
        rewards = task_rewards - ctrl.astype(np.float64) - contact_cost + survive
        min_z, max_z = first._healthy_z_range
        finite = np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
        healthy = finite & (min_z <= qpos[:, 2]) & (qpos[:, 2] <= max_z)
        terminated = ~healthy & first._terminate_when_unhealthy
        infos = [
            {
                "x_position": qpos[i, 0],
                "y_position": qpos[i, 1],
                "distance_from_origin": np.linalg.norm(qpos[i, 0:2], ord=2),
                "x_velocity": xy_velocity[i, 0],
                "y_velocity": xy_velocity[i, 1],
                "reward_forward": tasks[i][0],
                "reward_ctrl": -float(ctrl[i]),
                "reward_contact": -float(contact_cost[i]),
                "reward_survive": survive,
                **tasks[i][1],
            }
            for i in range(len(envs))
        ]
        return observations, rewards, terminated, infos

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, Any]]:
        task_reward, task_info = self._task_reward(x_velocity)
        # On the action as given; MAML's rllab pipeline clipped it first (module docstring).
        ctrl_cost = float(self.control_cost(action))  # type: ignore[no-untyped-call]
        contact_cost = float(self.contact_cost)
        # MAML pays the survive bonus on every step, the terminating one included (Ant-v5
        # pays its healthy_reward only while healthy).
        survive = self._survive_reward
        info = {
            "reward_forward": task_reward,
            "reward_ctrl": -ctrl_cost,
            "reward_contact": -contact_cost,
            "reward_survive": survive,
            **task_info,
        }
        return task_reward - ctrl_cost - contact_cost + survive, info


class AntVelEnv(_AntTaskEnv[AntVelocityTask]):
    """MAML's goal-velocity ant on Ant-v5 physics.

    ## Description

    Run forward along x at a target velocity that is not observed.

    ## Tasks

    ``AntVelocityTask(target_velocity)`` with the target in ``[0, 3]`` m/s, sampled uniformly
    (MAML's ``sample_goals``). The task persists across ``reset()``.

    ## Rewards

    ``reward = -|x_velocity - target_velocity| + 1 - 0.005 * sum(action^2)
    - 5e-4 * sum(clip(cfrc_ext, -1, 1)^2) + 0.05``, where ``x_velocity = dx/dt`` of the torso
    over the 0.05 s step; the ``+ 1`` is MAML's ("make it happy, not suicidal"): a standing ant
    earns more than a fallen one. ``info["reward_forward"]`` is ``-|x_velocity - target| + 1``.
    """

    __doc__ = (__doc__ or "") + _MAML_ANT_DOC.format(name="ant_env_rand.py") + _ANT_DOC
    task_type = AntVelocityTask
    source = "MAML (Finn et al. 2017, section 5.3), ant_env_rand.py of cbfinn/maml_rl"

    def _task_reward(self, x_velocity: float) -> tuple[float, dict[str, Any]]:
        target = self._task.target_velocity
        return -abs(x_velocity - target) + 1.0, {"target_velocity": target}


class AntDirEnv(_AntTaskEnv[AntDirectionTask]):
    """MAML's forward/backward ant on Ant-v5 physics.

    ## Description

    Run as fast as possible along x, in the task's direction, which is not observed.

    ## Tasks

    ``AntDirectionTask(direction)`` with ``direction`` in ``{-1, +1}``. The family has two
    tasks, so its train and test splits both hold both directions (``disjoint_splits =
    False``). The task persists across ``reset()``.

    ## Rewards

    ``reward = direction * x_velocity - 0.005 * sum(action^2) - 5e-4 * sum(clip(cfrc_ext, -1,
    1)^2) + 0.05``. ``info["reward_forward"]`` is the first term, ``info["direction"]`` the
    direction.
    """

    __doc__ = (__doc__ or "") + _MAML_ANT_DOC.format(name="ant_env_rand_direc.py") + _ANT_DOC
    task_type = AntDirectionTask
    source = "MAML (Finn et al. 2017, section 5.3), ant_env_rand_direc.py of cbfinn/maml_rl"

    def _task_reward(self, x_velocity: float) -> tuple[float, dict[str, Any]]:
        direction = self._task.direction
        return direction * x_velocity, {"direction": direction}


class AntGoalEnv(_AntTaskEnv[AntGoalTask]):
    """ProMP's (and PEARL's) goal-position ant on Ant-v5 physics.

    ## Description

    Walk to a goal position in the plane that is not observed.

    ## Tasks

    ``AntGoalTask(goal_x, goal_y)``, uniform over the disk of radius 3 around the start. The
    task persists across ``reset()``.

    ## Rewards

    ``reward = -(|x - goal_x| + |y - goal_y|) - 0.1 * sum(action^2) - 5e-4 * sum(clip(cfrc_ext,
    -1, 1)^2)``, where ``(x, y)`` is the torso's centre of mass as ``get_body_com("torso")``
    reports it after the step (as in ProMP); no survive bonus.
    ``info["reward_forward"]`` is the first term (as ProMP names it), ``info["goal_x"]`` and
    ``info["goal_y"]`` the goal.

    ## Observation Space

    Ant-v5 with the torso's x and y included (``exclude_current_positions_from_observation=
    False``): ``Box(-inf, inf, (107,), float64)``, 15 positions, 14 velocities and 78 contact
    forces clipped to [-1, 1]. The ant must know where it is to reach a goal position; ProMP's
    observation held the same positions. The goal is **not** observed.

    ## Episode End

    - Termination: never (ProMP's ``done = False``; Ant-v5's health check is switched off).
    - Truncation: after 200 steps (``max_episode_steps`` of the registered id), PEARL's
      horizon (ProMP's run scripts default to 100).

    ## Arguments

    | Argument | Type | Default | Meaning |
    |----------|------|---------|---------|
    | ``task`` | task or None | first task of the train split | the initial task |
    | ``ctrl_cost_weight`` | float | 0.1 | ProMP's control weight |
    | ``survive_reward`` | float | 0.0 | ProMP's survive bonus (none) |
    | ``**kwargs`` | | | passed to Gymnasium's ``AntEnv`` |

    ## Source

    Rothfuss, Lee, Clavera, Asfour and Abbeel, "ProMP: Proximal Meta-Policy Search", ICLR
    2019, and its code (github.com/jonasrothfuss/ProMP,
    ``meta_policy_search/envs/mujoco_envs/ant_rand_goal.py``), which PEARL (Rakelly et al.
    2019) copied. MAML's repository holds an earlier goal ant (goals in the square [-3, 3]^2,
    ``+ 4`` and MAML's costs); we follow ProMP's, the one later papers report. Deliberate
    differences: Ant-v5's physics and its contact forces of the bodies (ProMP also observed
    the world body's, always zero).
    """

    __doc__ = (__doc__ or "") + _ANT_DOC
    task_type = AntGoalTask
    source = "ProMP (Rothfuss et al. 2019), ant_rand_goal.py of jonasrothfuss/ProMP; as PEARL"

    def __init__(
        self,
        task: AntGoalTask | None = None,
        ctrl_cost_weight: float = GOAL_CTRL_COST_WEIGHT,
        survive_reward: float = 0.0,
        terminate_when_unhealthy: bool = False,
        exclude_current_positions_from_observation: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            task,
            ctrl_cost_weight,
            survive_reward,
            terminate_when_unhealthy=terminate_when_unhealthy,
            exclude_current_positions_from_observation=exclude_current_positions_from_observation,
            **kwargs,
        )

    def _task_reward(self, x_velocity: float) -> tuple[float, dict[str, Any]]:
        # ProMP's get_body_com("torso"): MuJoCo computes it before the step's last substep.
        x, y = self.get_body_com("torso")[:2]  # type: ignore[no-untyped-call]
        goal = self._task
        distance = abs(float(x) - goal.goal_x) + abs(float(y) - goal.goal_y)
        return -distance, {"goal_x": goal.goal_x, "goal_y": goal.goal_y}
