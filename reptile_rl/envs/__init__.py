"""Gymnasium task families for meta-RL, as defined in MAML (Finn et al. 2017).

Importing this package registers:

- ``ReptileRL/Navigation2D-v0``: 2D point navigation to an unobserved goal (horizon 100).
- ``ReptileRL/GridNavigation-v0``: the same on its 0.1 lattice with five discrete moves
  (horizon 100).
- ``ReptileRL/HalfCheetahVel-v0``: HalfCheetah-v5 running at an unobserved target velocity
  (horizon 200).
- ``ReptileRL/HalfCheetahDir-v0``: HalfCheetah-v5 running forward or backward (horizon 200).
- ``ReptileRL/AntVel-v0``: Ant-v5 running at an unobserved target velocity (MAML; horizon 200).
- ``ReptileRL/AntDir-v0``: Ant-v5 running forward or backward (MAML; horizon 200).
- ``ReptileRL/AntGoal-v0``: Ant-v5 walking to an unobserved goal position (ProMP, PEARL;
  horizon 200).
- ``ReptileRL/ML1-reach-v0``, ``ML1-push-v0``, ``ML1-pick-place-v0``: Meta-World's ML1
  benchmarks (horizon 500), and ``ReptileRL/ML1-v0`` for any ML1 skill by name
  (``env_name=...``). They need the optional extra ``.[metaworld]``; without it they are listed
  and say how to install it.

Every family declares its ``horizon``, an optional batched ``VecEnv`` and published reference
numbers (:class:`TaskFamily`). Every family env offers ``sample_tasks``, ``set_task``,
``get_task`` and ``task_split`` (on ``env.unwrapped`` after ``gym.make``).
"""

from typing import Any

from gymnasium.envs.registration import register, registry

from reptile_rl.envs.ant import (
    AntDirectionTask,
    AntDirEnv,
    AntGoalEnv,
    AntGoalTask,
    AntVelEnv,
    AntVelocityTask,
)
from reptile_rl.envs.base import SPLITS, Split, Task, TaskFamily, task_from_dict, task_from_json
from reptile_rl.envs.grid_navigation import GridGoalTask, GridNavigationEnv, GridNavigationVecEnv
from reptile_rl.envs.half_cheetah import (
    DirectionTask,
    HalfCheetahDirEnv,
    HalfCheetahVelEnv,
    VelocityTask,
)
from reptile_rl.envs.metaworld import (
    MetaWorldML1Env,
    MetaWorldML10Env,
    MetaWorldML45Env,
    ML1Task,
    ML10Task,
    ML45Task,
)
from reptile_rl.envs.navigation import Navigation2DEnv, Navigation2DVecEnv, NavigationTask
from reptile_rl.envs.wrappers import TaskInObservation, VecTaskInObservation

NAVIGATION_2D = "ReptileRL/Navigation2D-v0"
GRID_NAVIGATION = "ReptileRL/GridNavigation-v0"
HALF_CHEETAH_VEL = "ReptileRL/HalfCheetahVel-v0"
HALF_CHEETAH_DIR = "ReptileRL/HalfCheetahDir-v0"
ANT_VEL = "ReptileRL/AntVel-v0"
ANT_DIR = "ReptileRL/AntDir-v0"
ANT_GOAL = "ReptileRL/AntGoal-v0"
ML1 = "ReptileRL/ML1-v0"
ML1_REACH = "ReptileRL/ML1-reach-v0"
ML10 = "ReptileRL/ML10-v0"
ML45 = "ReptileRL/ML45-v0"

# A flat list of registrations, as Gymnasium's own; each horizon is the family's constant.
# Guarded so that reloading the package does not warn about re-registration.
_FAMILIES: list[tuple[str, type[TaskFamily[Any]], dict[str, Any]]] = [
    (NAVIGATION_2D, Navigation2DEnv, {}),
    (GRID_NAVIGATION, GridNavigationEnv, {}),
    (HALF_CHEETAH_VEL, HalfCheetahVelEnv, {}),
    (HALF_CHEETAH_DIR, HalfCheetahDirEnv, {}),
    (ANT_VEL, AntVelEnv, {}),
    (ANT_DIR, AntDirEnv, {}),
    (ANT_GOAL, AntGoalEnv, {}),
    (ML1, MetaWorldML1Env, {}),
    (ML1_REACH, MetaWorldML1Env, {"env_name": "reach-v3"}),
    ("ReptileRL/ML1-push-v0", MetaWorldML1Env, {"env_name": "push-v3"}),
    ("ReptileRL/ML1-pick-place-v0", MetaWorldML1Env, {"env_name": "pick-place-v3"}),
    (ML10, MetaWorldML10Env, {}),
    (ML45, MetaWorldML45Env, {}),
]
for _env_id, _family, _kwargs in _FAMILIES:
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point=f"{_family.__module__}:{_family.__name__}",
            max_episode_steps=_family.horizon,
            kwargs=_kwargs,
        )

__all__ = [
    "ANT_DIR",
    "ANT_GOAL",
    "ANT_VEL",
    "GRID_NAVIGATION",
    "HALF_CHEETAH_DIR",
    "HALF_CHEETAH_VEL",
    "ML1",
    "ML1_REACH",
    "ML10",
    "ML45",
    "NAVIGATION_2D",
    "SPLITS",
    "AntDirEnv",
    "AntDirectionTask",
    "AntGoalEnv",
    "AntGoalTask",
    "AntVelEnv",
    "AntVelocityTask",
    "DirectionTask",
    "GridGoalTask",
    "GridNavigationEnv",
    "GridNavigationVecEnv",
    "HalfCheetahDirEnv",
    "HalfCheetahVelEnv",
    "ML1Task",
    "ML10Task",
    "ML45Task",
    "MetaWorldML1Env",
    "MetaWorldML10Env",
    "MetaWorldML45Env",
    "Navigation2DEnv",
    "Navigation2DVecEnv",
    "NavigationTask",
    "Split",
    "Task",
    "TaskFamily",
    "TaskInObservation",
    "VecTaskInObservation",
    "VelocityTask",
    "task_from_dict",
    "task_from_json",
]
