"""Gymnasium task families for meta-RL, as defined in MAML (Finn et al. 2017).

Importing this package registers:

- ``ReptileRL/Navigation2D-v0``: 2D point navigation to an unobserved goal (horizon 100).
- ``ReptileRL/HalfCheetahVel-v0``: HalfCheetah-v5 running at an unobserved target velocity
  (horizon 200).
- ``ReptileRL/HalfCheetahDir-v0``: HalfCheetah-v5 running forward or backward (horizon 200).

Every family env offers ``sample_tasks``, ``set_task``, ``get_task`` and ``task_split`` (on
``env.unwrapped`` after ``gym.make``).
"""

from gymnasium.envs.registration import register, registry

from envs.base import SPLITS, Split, Task, TaskFamily, task_from_dict, task_from_json
from envs.half_cheetah import DirectionTask, HalfCheetahDirEnv, HalfCheetahVelEnv, VelocityTask
from envs.navigation import Navigation2DEnv, Navigation2DVecEnv, NavigationTask
from envs.wrappers import TaskInObservation, VecTaskInObservation

NAVIGATION_2D = "ReptileRL/Navigation2D-v0"
HALF_CHEETAH_VEL = "ReptileRL/HalfCheetahVel-v0"
HALF_CHEETAH_DIR = "ReptileRL/HalfCheetahDir-v0"

# Guarded so that reloading the package does not warn about re-registration.
if NAVIGATION_2D not in registry:
    register(id=NAVIGATION_2D, entry_point="envs.navigation:Navigation2DEnv", max_episode_steps=100)
if HALF_CHEETAH_VEL not in registry:
    register(
        id=HALF_CHEETAH_VEL,
        entry_point="envs.half_cheetah:HalfCheetahVelEnv",
        max_episode_steps=200,
    )
if HALF_CHEETAH_DIR not in registry:
    register(
        id=HALF_CHEETAH_DIR,
        entry_point="envs.half_cheetah:HalfCheetahDirEnv",
        max_episode_steps=200,
    )

__all__ = [
    "HALF_CHEETAH_DIR",
    "HALF_CHEETAH_VEL",
    "NAVIGATION_2D",
    "SPLITS",
    "DirectionTask",
    "HalfCheetahDirEnv",
    "HalfCheetahVelEnv",
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
