"""The MuJoCo families' direct stepping gives Gymnasium's envs' steps bit for bit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from reptile_rl.envs import (
    ANT_DIR,
    ANT_GOAL,
    ANT_VEL,
    HALF_CHEETAH_DIR,
    HALF_CHEETAH_VEL,
    AntDirectionTask,
    AntGoalTask,
    AntVelocityTask,
    DirectionTask,
    HalfCheetahVelEnv,
    VelocityTask,
)
from reptile_rl.envs.mujoco_batch import MujocoBatchVecEnv
from reptile_rl.families import family_class

FAMILIES = {
    HALF_CHEETAH_VEL: [VelocityTask(0.3), VelocityTask(1.7), VelocityTask(0.0)],
    HALF_CHEETAH_DIR: [DirectionTask(1), DirectionTask(-1), DirectionTask(1)],
    ANT_VEL: [AntVelocityTask(0.5), AntVelocityTask(2.5)],
    ANT_DIR: [AntDirectionTask(1), AntDirectionTask(-1)],
    ANT_GOAL: [AntGoalTask(1.0, -2.0), AntGoalTask(-0.5, 0.5)],
}


@pytest.mark.parametrize("env_id", list(FAMILIES))
def test_direct_stepping_is_gymnasiums_step_bit_for_bit(env_id: str) -> None:
    tasks = FAMILIES[env_id]
    horizon = 30  # short, so that the comparison crosses time limits and automatic resets
    family = family_class(env_id)
    batched = family.batched_vec_env(len(tasks), horizon)
    assert isinstance(batched, MujocoBatchVecEnv)
    reference = DummyVecEnv(
        [lambda: gym.make(env_id, max_episode_steps=horizon, disable_env_checker=True)] * len(tasks)
    )
    for env in (batched, reference):
        for index, task in enumerate(tasks):
            env.env_method("set_task", task, indices=index)
        env.seed(7)
    assert np.array_equal(batched.reset(), reference.reset())
    rng = np.random.default_rng(0)
    low, high = reference.action_space.low, reference.action_space.high  # type: ignore[attr-defined]
    dones_seen = 0
    for _ in range(2 * horizon + 5):
        shape = (len(tasks), *reference.action_space.shape)  # type: ignore[misc]
        actions = np.clip(rng.normal(0.0, 1.0, shape).astype(np.float32), low, high)
        ours = batched.step(actions)
        theirs = reference.step(actions)
        for mine, other in zip(ours[:3], theirs[:3], strict=True):
            assert mine.dtype == other.dtype
            assert np.array_equal(mine, other)
        for mine, other in zip(ours[3], theirs[3], strict=True):
            assert mine.keys() == other.keys()
            for key in mine:
                assert np.array_equal(mine[key], other[key]), key
        dones_seen += int(ours[2].sum())
    assert dones_seen >= 2 * len(tasks)  # two time limits each (or falls), all compared
    assert ours[1].std() > 0  # the rewards differ across tasks: not a trivial comparison


def test_the_presets_cheetah_envs_are_batched() -> None:
    from reptile_rl.vec_env import make_vec_env

    env = make_vec_env(HALF_CHEETAH_VEL, {}, 2)
    assert isinstance(env.unwrapped, MujocoBatchVecEnv)
    assert isinstance(env.unwrapped.bases[0], HalfCheetahVelEnv)
    env.close()
