"""GridNavigation: MAML's 2D navigation on its 0.1 lattice, with five discrete moves."""

import math

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from reptile_rl import envs
from reptile_rl.cli import main
from reptile_rl.config import ConfigError, check_env_builds, load_config
from reptile_rl.envs import (
    GridGoalTask,
    GridNavigationEnv,
    GridNavigationVecEnv,
    TaskInObservation,
    task_from_json,
)
from reptile_rl.vec_env import make_vec_env


def test_a_walk_scores_minus_the_distance_after_each_move_and_ends_on_the_goal():
    env = gym.make(envs.GRID_NAVIGATION, task=GridGoalTask(2, -1))
    observation, _ = env.reset(seed=0)
    assert observation.tolist() == [0.0, 0.0]
    steps = []
    for action in (1, 0, 1, 4):  # +x, stay, +x, -y: onto the goal (0.2, -0.1)
        steps.append(env.step(action))
    # Distances after each move, by hand: (0.1,0)->(0.2,-0.1) is sqrt(0.01+0.01), then the
    # same again (stay), then (0.2,0)->goal is 0.1, then 0 on the goal.
    expected = [-math.sqrt(0.02), -math.sqrt(0.02), -0.1, 0.0]
    assert [s[1] for s in steps] == pytest.approx(expected, abs=1e-12)
    assert [s[2] for s in steps] == [False, False, False, True]
    assert steps[-1][0] == pytest.approx([0.2, -0.1]) and steps[-1][0].dtype == np.float32


def test_staying_put_scores_minus_100_times_the_goal_distance_and_truncates_at_100():
    env = gym.make(envs.GRID_NAVIGATION, task=GridGoalTask(3, 4))
    env.reset()
    total, steps, truncated = 0.0, 0, False
    while not truncated:
        _, reward, terminated, truncated, _ = env.step(0)
        total, steps = total + reward, steps + 1
        assert not terminated
    assert steps == 100 and total == pytest.approx(-100 * 0.5)


def test_actions_outside_the_five_moves_are_refused():
    env = GridNavigationEnv()
    env.reset()
    with pytest.raises(ValueError, match=r"action must be an integer in 0\.\.4, got 5"):
        env.step(np.int64(5))
    with pytest.raises(ValueError, match=r"actions must be integers in 0\.\.4"):
        GridNavigationVecEnv(2).step_async(np.array([0, -1]))


def test_tasks_are_lattice_points_of_the_goal_box_split_in_two():
    train = set(GridGoalTask.sample(2000, seed=0))
    test = set(GridGoalTask.sample(2000, seed=0, split="test"))
    assert len(train) + len(test) == 121 and not train & test
    assert {t.goal_x for t in train | test} == set(range(-5, 6))
    task = GridGoalTask(-5, 5)
    assert task_from_json(task.to_json()) == task
    for bad in ((6, 0), (0, -6)):
        with pytest.raises(
            ValueError, match=r"GridGoalTask\.goal_[xy] must be an integer in -5\.\.5"
        ):
            GridGoalTask(*bad)
    with pytest.raises(ValueError, match=r"must be an integer in -5\.\.5, got 1\.5"):
        GridGoalTask(1.5, 0)  # type: ignore[arg-type]


def test_set_task_refuses_a_forged_goal():
    env = GridNavigationEnv(GridGoalTask(0, 1))
    forged = GridGoalTask(1, 1)
    object.__setattr__(forged, "goal_x", 9)
    with pytest.raises(ValueError, match=r"goal_x must be an integer in -5\.\.5, got 9"):
        env.set_task(forged)
    assert env.get_task() == GridGoalTask(0, 1)


def test_the_oracle_observes_the_goal_in_lattice_steps():
    env = TaskInObservation(gym.make(envs.GRID_NAVIGATION, task=GridGoalTask(-2, 3)))
    observation, _ = env.reset()
    assert observation.tolist() == [0.0, 0.0, -2.0, 3.0]


def test_the_batched_env_steps_as_single_envs_in_a_dummy_vec_env():
    tasks = [GridGoalTask(1, 0), GridGoalTask(-3, 2), GridGoalTask(0, 0), GridGoalTask(5, -5)]
    batched = GridNavigationVecEnv(4, tasks, horizon=30)
    single = DummyVecEnv(
        [lambda t=t: gym.wrappers.TimeLimit(GridNavigationEnv(t), 30) for t in tasks]
    )
    rng = np.random.default_rng(0)
    assert np.array_equal(batched.reset(), single.reset())
    for _ in range(200):
        actions = rng.integers(0, 5, size=4)
        b_obs, b_rew, b_done, b_info = batched.step(actions)
        s_obs, s_rew, s_done, s_info = single.step(actions)
        assert np.array_equal(b_obs, s_obs) and np.array_equal(b_rew, s_rew)
        assert np.array_equal(b_done, s_done)
        for b, s in zip(b_info, s_info, strict=True):
            assert b["TimeLimit.truncated"] == s.get("TimeLimit.truncated", False)
            if "terminal_observation" in s:
                assert np.array_equal(b["terminal_observation"], s["terminal_observation"])
    assert batched.get_tasks() == tasks


def test_the_family_builds_its_batched_vec_env():
    vec = make_vec_env(envs.GRID_NAVIGATION, {}, 3)
    assert vec.num_envs == 3 and vec.action_space == gym.spaces.Discrete(5)
    assert isinstance(vec.unwrapped, GridNavigationVecEnv)


def test_a_gaussian_noise_setting_on_discrete_actions_is_refused_before_any_work(tmp_path):
    grid = ["env.id=ReptileRL/GridNavigation-v0"]
    with pytest.raises(ConfigError) as error:
        check_env_builds(load_config("navigation", grid))  # its baseline.log_std_init is -3.0
    assert str(error.value) == (
        "baseline.log_std_init: ReptileRL/GridNavigation-v0's actions (Discrete(5)) have no "
        "Gaussian noise to set; give null, got -3.0"
    )
    out = tmp_path / "pre"
    assert main(["pretrain", "navigation", "--set", grid[0], "--out", str(out)]) == 2
    assert not out.exists()
    check_env_builds(load_config("navigation", [*grid, "baseline.log_std_init=null"]))
