"""Tests of the task families in ``envs``: registration, known answers, tasks, splits, the
batched navigation VecEnv, the half-cheetah rewards and the oracle wrappers.

Tests named ``test_regression_*`` guard defects found (and fixed) during review.
"""

import math
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

from reptile_rl import envs
from reptile_rl.envs import (
    AntDirectionTask,
    AntDirEnv,
    AntGoalEnv,
    AntGoalTask,
    AntVelEnv,
    AntVelocityTask,
    DirectionTask,
    HalfCheetahDirEnv,
    HalfCheetahVelEnv,
    Navigation2DEnv,
    Navigation2DVecEnv,
    NavigationTask,
    TaskInObservation,
    VecTaskInObservation,
    VelocityTask,
    task_from_json,
)

REPO = Path(__file__).resolve().parents[1]
IDS = [
    envs.NAVIGATION_2D,
    envs.GRID_NAVIGATION,
    envs.HALF_CHEETAH_VEL,
    envs.HALF_CHEETAH_DIR,
    envs.ANT_VEL,
    envs.ANT_DIR,
    envs.ANT_GOAL,
]


def ctrl(action: np.ndarray) -> float:
    """MAML's control cost 0.05 * sum(a^2), computed independently of the env."""
    return 0.05 * float(np.sum(np.asarray(action, dtype=np.float64) ** 2))


# -- 1. registration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "horizon"),
    [
        (envs.NAVIGATION_2D, 100),
        (envs.GRID_NAVIGATION, 100),
        (envs.HALF_CHEETAH_VEL, 200),
        (envs.HALF_CHEETAH_DIR, 200),
        (envs.ANT_VEL, 200),
        (envs.ANT_DIR, 200),
        (envs.ANT_GOAL, 200),
    ],
)
def test_ids_are_registered_with_their_horizon(env_id, horizon):
    assert env_id in gym.registry
    assert gym.spec(env_id).max_episode_steps == horizon
    env = gym.make(env_id)
    try:
        assert env.spec.max_episode_steps == horizon
        assert hasattr(env.unwrapped, "get_task")
        assert (
            type(env.unwrapped).horizon == horizon
        )  # the family declares it, registration reads it
    finally:
        env.close()


# Any checker warning fails, except its notice about unbounded observations: positions without
# walls (Navigation2D, whose unwrapped env has no step limit) and HalfCheetah-v5's own joint
# velocities are unbounded, and a finite bound would be false.
CHECKER_WARNINGS = [
    "error",
    "ignore:.*A Box observation space (minimum|maximum) value is .*infinity",
]


@pytest.mark.filterwarnings(*CHECKER_WARNINGS)
@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_env_checker_passes(env_id):
    env = gym.make(env_id)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_importing_reptile_rl_alone_registers_the_ids():
    code = "\n".join(
        [
            "import sys",
            "import gymnasium as gym",
            f"ids = {IDS!r}",
            # Guard against a vacuous pass: nothing registers the ids before the import.
            "assert not any(i in gym.registry for i in ids), 'registered too early'",
            "assert 'reptile_rl' not in sys.modules",
            "import reptile_rl",
            "for i in ids:",
            "    gym.make(i).close()",
            "print('registered', len(ids))",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert f"registered {len(IDS)}" in result.stdout


# -- 2. Navigation2D known answers ------------------------------------------------------------


def nav(goal_x: float, goal_y: float) -> gym.Env:
    env = gym.make(envs.NAVIGATION_2D)
    env.unwrapped.set_task(NavigationTask(goal_x, goal_y))
    return env


def test_navigation_start_and_first_step_known_answer():
    env = nav(0.3, 0.4)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    assert info == {}
    obs, reward, terminated, truncated, _ = env.step(np.array([0.1, 0.1], dtype=np.float32))
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(obs, np.array([0.1, 0.1], dtype=np.float32))
    # delta = (0.1 - 0.3, 0.1 - 0.4) = (-0.2, -0.3); |delta| = sqrt(0.04 + 0.09) = sqrt(0.13)
    # = 0.36055512754639896, so reward = -0.360555...
    assert reward == pytest.approx(-math.hypot(0.2, 0.3), rel=1e-12)
    assert reward == pytest.approx(-0.36055512754639896, rel=1e-12)
    assert (terminated, truncated) == (False, False)
    # Second step (0.1, 0.1) -> position (0.2, 0.2): delta (-0.1, -0.2), reward -sqrt(0.05).
    obs, reward, *_ = env.step(np.array([0.1, 0.1]))
    np.testing.assert_allclose(obs, [0.2, 0.2], rtol=0, atol=1e-7)
    assert reward == pytest.approx(-math.sqrt(0.05), rel=1e-9)


@pytest.mark.parametrize(
    ("action", "move"),
    [
        ((1.0, -1.0), (0.1, -0.1)),
        ((-5.0, 0.05), (-0.1, 0.05)),
        ((0.1, -0.1), (0.1, -0.1)),
        ((0.0, 100.0), (0.0, 0.1)),
    ],
)
def test_navigation_actions_are_clipped_per_axis(action, move):
    env = nav(0.3, 0.4)
    env.reset()
    obs, reward, *_ = env.step(np.array(action))
    np.testing.assert_array_equal(obs, np.array(move, dtype=np.float32))
    assert reward == pytest.approx(-math.hypot(move[0] - 0.3, move[1] - 0.4), rel=1e-12)


@pytest.mark.parametrize(
    ("goal", "terminated"),
    [
        ((0.1, 0.1), True),  # exactly on the goal
        ((0.1095, 0.1), True),  # |dx| = 0.0095 < 0.01, dy = 0
        ((0.1, 0.0905), True),  # |dy| = 0.0095 < 0.01
        ((0.1095, 0.0905), True),  # both just inside
        ((0.1105, 0.1), False),  # |dx| = 0.0105 > 0.01
        ((0.1, 0.1105), False),  # x on target, |dy| just outside: both must hold
        ((0.1, 0.0895), False),  # |dy| = 0.0105 below the goal
    ],
)
def test_navigation_terminates_exactly_within_tolerance(goal, terminated):
    env = nav(*goal)
    env.reset()
    _, reward, term, trunc, _ = env.step(np.array([0.1, 0.1]))
    assert term is terminated
    assert trunc is False
    assert reward == pytest.approx(-math.hypot(0.1 - goal[0], 0.1 - goal[1]), abs=1e-12)


def test_navigation_truncates_at_step_100():
    env = nav(0.3, 0.4)
    env.reset()
    flags = [env.step(np.zeros(2))[2:4] for _ in range(100)]
    assert flags[:99] == [(False, False)] * 99
    assert flags[99] == (False, True)


def test_navigation_task_persists_across_reset():
    task = NavigationTask(-0.25, 0.45)
    env = gym.make(envs.NAVIGATION_2D, task=task)
    assert env.unwrapped.get_task() == task
    rewards = []
    for seed in (0, 1, None, 123):
        obs, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(obs, [0.0, 0.0])
        assert env.unwrapped.get_task() == task
        rewards.append(env.step(np.array([-0.1, 0.1]))[1])
    # From the origin, (-0.1, 0.1) leaves delta (0.15, -0.35): reward -hypot(0.15, 0.35).
    assert rewards == [pytest.approx(-math.hypot(0.15, 0.35), rel=1e-12)] * 4


def test_navigation_default_task_is_first_train_task():
    assert Navigation2DEnv().get_task() == NavigationTask.split_list("train", 1)[0]


# -- 3. tasks: JSON and validation -----------------------------------------------------------

TASKS = [
    NavigationTask(0.3, -0.4),
    NavigationTask(-0.5, 0.5),
    NavigationTask(0.1234567890123456, -1 / 3),
    VelocityTask(0.0),
    VelocityTask(2.0),
    VelocityTask(math.pi / 2),
    DirectionTask(1),
    DirectionTask(-1),
    AntVelocityTask(3.0),
    AntDirectionTask(-1),
    AntGoalTask(-3.0, 0.0),
    AntGoalTask(1.2345678901234567, -2.5),
]


@pytest.mark.parametrize("task", TASKS, ids=repr)
def test_task_json_round_trip(task):
    text = task.to_json()
    back = task_from_json(text)
    assert back == task
    assert type(back) is type(task)
    assert back.to_json() == text
    assert f'"family": "{task.family}"' in text


def test_task_values_are_coerced():
    assert VelocityTask(1).target_velocity == 1.0
    assert isinstance(VelocityTask(np.float32(0.5)).target_velocity, float)
    assert DirectionTask(np.int64(-1)).direction == -1
    assert type(DirectionTask(np.int64(-1)).direction) is int
    np.testing.assert_array_equal(NavigationTask(0.25, -0.5).as_array(), [0.25, -0.5])
    assert NavigationTask(0.25, -0.5).as_array().dtype == np.float32


RANGE_ERRORS = [
    (lambda: NavigationTask(0.6, 0.0), "NavigationTask.goal_x", "[-0.5, 0.5]"),
    (lambda: NavigationTask(0.0, -0.5000001), "NavigationTask.goal_y", "[-0.5, 0.5]"),
    (lambda: NavigationTask(0.0, float("nan")), "NavigationTask.goal_y", "[-0.5, 0.5]"),
    (lambda: NavigationTask(float("inf"), 0.0), "NavigationTask.goal_x", "[-0.5, 0.5]"),
    (lambda: NavigationTask(-float("inf"), 0.0), "NavigationTask.goal_x", "[-0.5, 0.5]"),
    (lambda: VelocityTask(-0.1), "VelocityTask.target_velocity", "[0.0, 2.0]"),
    (lambda: VelocityTask(2.01), "VelocityTask.target_velocity", "[0.0, 2.0]"),
    (lambda: VelocityTask(np.float64("nan")), "VelocityTask.target_velocity", "[0.0, 2.0]"),
    (lambda: VelocityTask(float("inf")), "VelocityTask.target_velocity", "[0.0, 2.0]"),
    (lambda: DirectionTask(0), "DirectionTask.direction", "[-1, 1]"),
    (lambda: DirectionTask(2), "DirectionTask.direction", "[-1, 1]"),
    (lambda: DirectionTask(0.5), "DirectionTask.direction", "[-1, 1]"),
    (lambda: DirectionTask(float("nan")), "DirectionTask.direction", "[-1, 1]"),
    (lambda: AntVelocityTask(3.01), "AntVelocityTask.target_velocity", "[0.0, 3.0]"),
    (lambda: AntDirectionTask(0), "AntDirectionTask.direction", "[-1, 1]"),
    (lambda: AntGoalTask(3.5, 0.0), "AntGoalTask.goal_x", "[-3.0, 3.0]"),
    # Inside the box, outside the disk: the message names both fields and the radius.
    (lambda: AntGoalTask(2.5, -2.5), "AntGoalTask (goal_x, goal_y)", "within 3.0 of the origin"),
]


@pytest.mark.parametrize(("make", "field", "allowed"), RANGE_ERRORS)
def test_task_range_errors_name_field_and_range(make, field, allowed):
    with pytest.raises(ValueError, match=re.escape(field)) as error:
        make()
    assert allowed in str(error.value)


# Wrong types: the message names the field, what is allowed, and the type given.
NUMBER = "must be a finite number in "
TYPE_ERRORS = [
    (lambda: NavigationTask("0.1", 0.0), "NavigationTask.goal_x " + NUMBER + "[-0.5, 0.5]", "str"),
    (lambda: NavigationTask(0.0, True), "NavigationTask.goal_y " + NUMBER + "[-0.5, 0.5]", "bool"),
    (lambda: VelocityTask("1.0"), "VelocityTask.target_velocity " + NUMBER + "[0.0, 2.0]", "str"),
    (lambda: VelocityTask(False), "VelocityTask.target_velocity " + NUMBER + "[0.0, 2.0]", "bool"),
    (lambda: VelocityTask(np.bool_(True)), "VelocityTask.target_velocity " + NUMBER, "bool"),
    (lambda: VelocityTask(None), "VelocityTask.target_velocity " + NUMBER, "NoneType"),
    (lambda: DirectionTask(True), "DirectionTask.direction must be one of [-1, 1]", "bool"),
    (lambda: DirectionTask("1"), "DirectionTask.direction must be one of [-1, 1]", "str"),
]


@pytest.mark.parametrize(("make", "message", "type_name"), TYPE_ERRORS)
def test_task_type_errors_name_field_and_range(make, message, type_name):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        make()
    assert f"({type_name})" in str(error.value)


@pytest.mark.parametrize(
    ("family_env", "wrong", "expected"),
    [
        (Navigation2DEnv, VelocityTask(1.0), "NavigationTask (family 'navigation2d')"),
        (Navigation2DEnv, DirectionTask(1), "NavigationTask (family 'navigation2d')"),
        (HalfCheetahVelEnv, NavigationTask(0.1, 0.1), "VelocityTask (family 'half_cheetah_vel')"),
        (HalfCheetahVelEnv, DirectionTask(1), "VelocityTask (family 'half_cheetah_vel')"),
        (HalfCheetahDirEnv, VelocityTask(1.0), "DirectionTask (family 'half_cheetah_dir')"),
        # Same fields, another family: an ant task is not a cheetah task, nor the reverse.
        (HalfCheetahDirEnv, AntDirectionTask(1), "DirectionTask (family 'half_cheetah_dir')"),
        (AntVelEnv, VelocityTask(1.0), "AntVelocityTask (family 'ant_vel')"),
        (Navigation2DEnv, None, "NavigationTask"),
        (Navigation2DEnv, {"goal_x": 0.1, "goal_y": 0.1}, "NavigationTask"),
    ],
)
def test_set_task_rejects_wrong_family(family_env, wrong, expected):
    env = family_env()
    before = env.get_task()
    with pytest.raises(ValueError, match=re.escape(expected)) as error:
        env.set_task(wrong)
    if getattr(wrong, "family", None):
        assert repr(wrong.family) in str(error.value)  # names the family it got
    assert env.get_task() == before  # a rejected task leaves the current one in place


def test_set_task_revalidates_forged_task():
    task = NavigationTask(0.1, 0.1)
    object.__setattr__(task, "goal_x", 3.0)
    with pytest.raises(ValueError, match=re.escape("NavigationTask.goal_x")):
        Navigation2DEnv().set_task(task)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"family": "nope", "goal_x": 0.1}', "task.family must be one of"),
        ('{"goal_x": 0.1, "goal_y": 0.2}', "task.family must be one of"),
        ('{"family": "navigation2d", "goal_x": 0.1}', "goal_y"),  # missing field
        ('{"family": "navigation2d", "goal_x": 0.1, "goal_y": 0.2, "goal_z": 0}', "goal_z"),
        ('{"family": "half_cheetah_vel"}', "target_velocity"),
        ('{"family": "half_cheetah_dir", "direction": 0}', "[-1, 1]"),
        ('{"family": "half_cheetah_vel", "target_velocity": NaN}', "[0.0, 2.0]"),
        ('{"family": "half_cheetah_vel", "target_velocity": "1"}', "must be a finite number"),
        ("not json", "must be JSON"),
        ('{"family": "navigation2d", "goal_x": 0.1,', "must be JSON"),
        ("", "must be JSON"),
        ("[1, 2]", "JSON object"),
        ("null", "JSON object"),
    ],
)
def test_task_from_json_rejects_bad_input(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        task_from_json(text)


def test_task_from_json_names_the_known_families():
    with pytest.raises(ValueError) as error:
        task_from_json('{"family": "nope"}')
    for family in ("half_cheetah_dir", "half_cheetah_vel", "navigation2d"):
        assert family in str(error.value)


# Regression: task_from_dict/task_from_json promise ValueError for an unknown family, but an
# unhashable "family" value makes `family not in Task._registry` raise TypeError.
@pytest.mark.parametrize("family", ["[1]", "{}"])
def test_regression_task_from_json_unhashable_family_raises_value_error(family):
    with pytest.raises(ValueError, match=re.escape("task.family")):
        task_from_json('{"family": ' + family + ', "goal_x": 0.1, "goal_y": 0.1}')


# Regression: Task._validated calls float(value) before the range check, so an integer too large for
# a float raises OverflowError instead of the promised ValueError (also through JSON).
def test_regression_huge_integer_raises_value_error():
    with pytest.raises(ValueError, match=re.escape("NavigationTask.goal_x")):
        NavigationTask(10**400, 0.0)
    with pytest.raises(ValueError, match=re.escape("VelocityTask.target_velocity")):
        task_from_json('{"family": "half_cheetah_vel", "target_velocity": 1' + "0" * 400 + "}")


# -- 4. sampling and splits ------------------------------------------------------------------


FAMILY_OF_TASK = {
    NavigationTask: Navigation2DEnv,
    VelocityTask: HalfCheetahVelEnv,
    DirectionTask: HalfCheetahDirEnv,
    AntVelocityTask: AntVelEnv,
    AntDirectionTask: AntDirEnv,
    AntGoalTask: AntGoalEnv,
}


@pytest.mark.parametrize("task_type", list(FAMILY_OF_TASK))
@pytest.mark.parametrize("split", ["train", "test"])
def test_sampling_is_deterministic_and_prefix_stable(task_type, split):
    family = FAMILY_OF_TASK[task_type]
    sample = family().sample_tasks
    first = sample(20, seed=3, split=split)
    assert len(first) == 20
    assert all(type(t) is task_type for t in first)
    assert sample(20, seed=3, split=split) == first
    assert sample(7, seed=3, split=split) == first[:7]
    assert sample(0, seed=3, split=split) == []
    if not task_type.choices:  # two tasks only: lists of 20 can coincide by chance
        assert sample(20, seed=4, split=split) != first
        assert len(set(first)) == 20


def test_sample_rejects_bad_arguments():
    with pytest.raises(ValueError, match="non-negative"):
        NavigationTask.sample(-1, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        NavigationTask.sample(True, seed=0)
    with pytest.raises(ValueError, match=re.escape("['train', 'test']")):
        NavigationTask.sample(1, seed=0, split="val")
    with pytest.raises(ValueError, match=re.escape("['train', 'test']")):
        Navigation2DEnv().task_split("validation", 1)


@pytest.mark.parametrize("family", list(FAMILY_OF_TASK.values()))
def test_task_split_lists_are_fixed_and_prefix_stable(family):
    env = family()
    for split in ("train", "test"):
        tasks = env.task_split(split, 12)
        assert len(tasks) == 12
        assert env.task_split(split, 12) == tasks
        assert env.task_split(split, 5) == tasks[:5]
        assert all(t.in_split(split) for t in tasks)
    if env.task_type.disjoint_splits:
        assert env.task_split("train", 12) != env.task_split("test", 12)


@pytest.mark.parametrize(
    ("family", "fields"),
    [
        (Navigation2DEnv, ["goal_x", "goal_y"]),
        (HalfCheetahVelEnv, ["target_velocity"]),
        (AntVelEnv, ["target_velocity"]),
    ],
)
def test_continuous_splits_are_disjoint_and_cover_the_range(family, fields):
    env = family()
    task_type = env.task_type
    assert task_type.disjoint_splits is True
    # The same seed for both splits: both draw from the same raw stream and keep different
    # subsets of it, so a split test that accepted everything would give identical lists.
    drawn = {split: env.sample_tasks(2000, seed=0, split=split) for split in ("train", "test")}
    assert not set(drawn["train"]) & set(drawn["test"])
    fixed = {split: env.task_split(split, 300) for split in ("train", "test")}
    assert not set(fixed["train"]) & set(fixed["test"])
    for split, tasks in [*drawn.items(), *fixed.items()]:
        other = "test" if split == "train" else "train"
        assert all(t.split == split for t in tasks)
        assert all(t.in_split(split) and not t.in_split(other) for t in tasks)
        round_tripped = [task_from_json(t.to_json()) for t in tasks]
        assert round_tripped == tasks
        assert all(t.split == split for t in round_tripped)
    for split, tasks in drawn.items():
        for name in fields:
            low, high = task_type.bounds[name]
            values = np.array([getattr(t, name) for t in tasks])
            assert np.all((values >= low) & (values <= high))
            width = high - low
            # Uniform on [low, high]: mean = centre, sd of the mean of 2000 = width / sqrt(12 *
            # 2000) ~= 0.0065 * width; allow 0.03 * width (> 4.5 sd).
            assert abs(values.mean() - (low + high) / 2) < 0.03 * width, (split, name)
            # Extremes of 2000 uniforms are within 0.01 * width of the bounds (p ~ 2e-9 miss).
            assert values.min() < low + 0.01 * width
            assert values.max() > high - 0.01 * width
            # Half the draws fall in each half of the range (sd of the count is ~22).
            assert 900 < np.sum(values < (low + high) / 2) < 1100


def test_continuous_splits_each_hold_about_half_the_family():
    # On a regular grid the hash split sends about half the tasks to each split, in every
    # region of the range: binomial sd of a count of m is sqrt(m) / 2.
    velocities = [VelocityTask(i / 1000) for i in range(2001)]  # sd ~22
    assert 900 < sum(t.split == "test" for t in velocities) < 1100
    low_half = velocities[:1000]  # sd ~16
    assert 430 < sum(t.split == "test" for t in low_half) < 570
    grid = np.linspace(-0.5, 0.5, 41)
    goals = [NavigationTask(float(x), float(y)) for x in grid for y in grid]  # 1681, sd ~20.5
    assert 760 < sum(t.split == "test" for t in goals) < 920


@pytest.mark.parametrize("family", [HalfCheetahDirEnv, AntDirEnv])
def test_direction_splits_are_the_whole_family(family):
    env = family()
    task_type = env.task_type
    assert task_type.disjoint_splits is False
    for split in ("train", "test"):
        assert {t.direction for t in env.task_split(split, 2)} == {-1, 1}
        assert {t.direction for t in env.sample_tasks(30, seed=0, split=split)} == {-1, 1}
        assert task_type(1).in_split(split) and task_type(-1).in_split(split)


# Regression: VelocityTask(0.0) == VelocityTask(-0.0) (equal and same hash) but they serialize to
# different JSON ("0.0" vs "-0.0"), so the hash-of-JSON split puts one in "train" and the other
# in "test": train and test share a task, against base.py's "they can never share a task".
# (Same for NavigationTask(0.5, 0.0) vs NavigationTask(0.5, -0.0).) Sampling never produces
# -0.0, but user-built tasks and JSON can.
def test_regression_equal_tasks_have_the_same_split():
    for a, b in [
        (VelocityTask(0.0), VelocityTask(-0.0)),
        (NavigationTask(0.5, 0.0), NavigationTask(0.5, -0.0)),
    ]:
        assert a == b and hash(a) == hash(b)
        assert a.split == b.split, (a.to_json(), b.to_json())


# -- 5. batched Navigation2DVecEnv -----------------------------------------------------------

VEC_TASKS = [
    NavigationTask(0.3, 0.4),
    NavigationTask(-0.45, 0.1),
    NavigationTask(0.05, -0.5),
    NavigationTask(-0.2, -0.35),
]


def test_vec_env_matches_dummy_vec_env_bit_for_bit():
    n = len(VEC_TASKS)
    vec = Navigation2DVecEnv(n, VEC_TASKS)
    dummy = DummyVecEnv([lambda: gym.make(envs.NAVIGATION_2D) for _ in range(n)])
    for i, task in enumerate(VEC_TASKS):
        dummy.env_method("set_task", task, indices=i)
    assert dummy.env_method("get_task") == VEC_TASKS == vec.get_tasks()

    obs_v, obs_d = vec.reset(), dummy.reset()
    assert obs_v.dtype == obs_d.dtype == np.float32
    assert np.array_equal(obs_v, obs_d)
    goals = np.array([[t.goal_x, t.goal_y] for t in VEC_TASKS])
    # Probability of heading straight at the goal: env 0 always (terminates every few steps),
    # env 1 half the time, envs 2 and 3 never (random walks truncated at 100 and 200).
    p_goal = np.array([1.0, 0.5, 0.0, 0.0])
    rng = np.random.default_rng(0)
    terminations = truncations = 0
    for _ in range(250):
        toward = np.clip(goals - obs_d, -0.1, 0.1)
        wander = rng.uniform(-0.3, 0.3, size=(n, 2))  # often beyond the clip range
        actions = np.where((rng.random(n) < p_goal)[:, None], toward, wander).astype(np.float32)
        obs_v, rew_v, done_v, infos_v = vec.step(actions)
        obs_d, rew_d, done_d, infos_d = dummy.step(actions)
        assert obs_v.dtype == obs_d.dtype and np.array_equal(obs_v, obs_d)
        assert rew_v.dtype == rew_d.dtype and np.array_equal(rew_v, rew_d)
        assert done_v.dtype == done_d.dtype and np.array_equal(done_v, done_d)
        for info_v, info_d in zip(infos_v, infos_d, strict=True):
            assert set(info_v) == set(info_d)
            assert info_v["TimeLimit.truncated"] == info_d["TimeLimit.truncated"]
            if "terminal_observation" in info_d:
                assert np.array_equal(
                    info_v["terminal_observation"], info_d["terminal_observation"]
                )
                truncated = info_d["TimeLimit.truncated"]
                truncations += truncated
                terminations += not truncated
    # The comparison covered both kinds of episode end.
    assert terminations >= 20
    assert truncations >= 4  # envs 2 and 3 at steps 100 and 200


def test_vec_env_known_answers_and_horizon():
    tasks = [NavigationTask(0.1, 0.1), NavigationTask(0.3, 0.4), NavigationTask(0.3, 0.3)]
    vec = Navigation2DVecEnv(3, tasks, horizon=3)
    np.testing.assert_array_equal(vec.reset(), np.zeros((3, 2), dtype=np.float32))
    obs, rew, done, infos = vec.step(np.full((3, 2), 0.1))
    # env 0 lands on its goal: terminated, reset to the origin; env 1 as in the single env.
    np.testing.assert_array_equal(
        obs, np.array([[0.0, 0.0], [0.1, 0.1], [0.1, 0.1]], dtype=np.float32)
    )
    assert rew.dtype == np.float32
    np.testing.assert_allclose(rew[:2], [0.0, -math.hypot(0.2, 0.3)], rtol=1e-6)
    np.testing.assert_array_equal(done, [True, False, False])
    np.testing.assert_array_equal(infos[0]["terminal_observation"], np.float32([0.1, 0.1]))
    assert infos[0]["TimeLimit.truncated"] is False
    assert "terminal_observation" not in infos[1]
    vec.step(np.array([[0.0, 0.0], [0.0, 0.0], [0.1, 0.1]]))
    obs, rew, done, infos = vec.step(np.array([[0.0, 0.0], [0.0, 0.0], [0.1, 0.1]]))
    # Step 3 = horizon. env 1 is truncated; env 2 reaches (0.3, 0.3) on that same step, and a
    # termination is not reported as a truncation (as DummyVecEnv: truncated and not
    # terminated); env 0 is at step 2 of its second episode.
    np.testing.assert_array_equal(done, [False, True, True])
    assert infos[1]["TimeLimit.truncated"] is True
    assert infos[2]["TimeLimit.truncated"] is False
    np.testing.assert_array_equal(infos[1]["terminal_observation"], np.float32([0.1, 0.1]))
    np.testing.assert_allclose(infos[2]["terminal_observation"], [0.3, 0.3], atol=1e-7)
    np.testing.assert_array_equal(obs[1:], np.zeros((2, 2), dtype=np.float32))
    # After the automatic reset a new 3-step episode starts for envs 1 and 2.
    assert not vec.step(np.zeros((3, 2)))[2][1:].any()


def test_vec_env_task_api():
    vec = Navigation2DVecEnv(3)
    default = NavigationTask.split_list("train", 1)[0]
    assert vec.get_tasks() == [default] * 3
    assert vec.get_task() == default

    shared = NavigationTask(0.2, -0.1)
    vec.set_task(shared)
    assert vec.get_tasks() == [shared] * 3
    assert vec.get_task() == shared

    per_env = VEC_TASKS[:3]
    vec.set_tasks(per_env)
    assert vec.get_tasks() == per_env
    with pytest.raises(ValueError, match="different tasks"):
        vec.get_task()
    assert vec.env_method("get_task", indices=[0, 2]) == [per_env[0], per_env[2]]
    assert vec.env_method("get_task", indices=1) == [per_env[1]]
    assert vec.get_attr("task", indices=[2]) == [per_env[2]]

    vec.env_method("set_task", shared, indices=[1])
    assert vec.get_tasks() == [per_env[0], shared, per_env[2]]
    with pytest.raises(ValueError, match="NavigationTask"):
        vec.env_method("set_task", VelocityTask(1.0), indices=0)
    with pytest.raises(ValueError, match="expected 3 tasks"):
        vec.set_tasks(per_env[:2])
    with pytest.raises(ValueError, match="NavigationTask"):
        vec.set_tasks([per_env[0], per_env[1], DirectionTask(1)])
    assert vec.get_tasks() == [per_env[0], shared, per_env[2]]  # unchanged by the failures
    assert vec.env_method("sample_tasks", 2, seed=5, indices=0) == [
        NavigationTask.sample(2, seed=5)
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_envs": 0},
        {"num_envs": -2},
        {"num_envs": True},
        {"num_envs": 2.0},
        {"num_envs": 2, "horizon": 0},
        {"num_envs": 2, "horizon": False},
        {"num_envs": 2, "horizon": 10.5},
    ],
)
def test_vec_env_rejects_bad_sizes(kwargs):
    name = "horizon" if "horizon" in kwargs else "num_envs"
    with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
        Navigation2DVecEnv(**kwargs)


def test_ppo_learns_on_the_vec_env():
    # One goal, 8 envs, 10 PPO updates: the greedy policy must get much closer to the goal.
    vec = VecMonitor(Navigation2DVecEnv(8, NavigationTask(0.4, -0.3)))
    model = PPO(
        "MlpPolicy",
        vec,
        n_steps=100,
        batch_size=200,
        n_epochs=5,
        learning_rate=3e-3,
        seed=0,
        device="cpu",
    )
    before, _ = evaluate_policy(model, vec, n_eval_episodes=8, deterministic=True)
    model.learn(8000)
    after, _ = evaluate_policy(model, vec, n_eval_episodes=8, deterministic=True)
    assert model.num_timesteps == 8000
    # Standing still at the origin scores -50; the goal is 0.5 away.
    assert before < -40 and after > -20, (before, after)


# -- 6. half cheetah --------------------------------------------------------------------------


def test_half_cheetah_vel_physics_are_half_cheetah_v5():
    target = 1.25
    ours = gym.make(envs.HALF_CHEETAH_VEL, task=VelocityTask(target))
    ref = gym.make("HalfCheetah-v5")
    assert ours.unwrapped.dt == ref.unwrapped.dt == 0.05
    obs, _ = ours.reset(seed=7)
    obs_ref, _ = ref.reset(seed=7)
    assert obs.shape == (17,)
    assert np.array_equal(obs, obs_ref)
    rng = np.random.default_rng(1)
    velocities = []
    for _ in range(50):
        action = rng.uniform(-1, 1, size=6)
        obs, reward, terminated, truncated, info = ours.step(action)
        obs_ref, reward_ref, *_, info_ref = ref.step(action)
        assert np.array_equal(obs, obs_ref)
        assert info["x_velocity"] == info_ref["x_velocity"]
        assert info["x_position"] == info_ref["x_position"]
        # Sanity of the reference: v5 rewards x_velocity - 0.1 * sum(a^2).
        assert reward_ref == pytest.approx(info_ref["x_velocity"] - 2 * ctrl(action), abs=1e-12)
        assert reward == -abs(info["x_velocity"] - target) - ctrl(action)
        assert (terminated, truncated) == (False, False)
        velocities.append(info["x_velocity"])
    assert np.ptp(velocities) > 0.1  # the cheetah moved, so the check was not on a constant


def test_half_cheetah_vel_info_is_consistent():
    target = 0.75
    env = gym.make(envs.HALF_CHEETAH_VEL, task=VelocityTask(target))
    env.reset(seed=3)
    x_before = float(env.unwrapped.data.qpos[0])
    rng = np.random.default_rng(2)
    for _ in range(10):
        action = rng.uniform(-1, 1, size=6)
        _, reward, _, _, info = env.step(action)
        assert set(info) >= {"reward_forward", "reward_ctrl", "x_velocity", "target_velocity"}
        assert info["target_velocity"] == target
        assert info["x_velocity"] == pytest.approx((info["x_position"] - x_before) / 0.05)
        assert info["reward_forward"] == -abs(info["x_velocity"] - target)
        assert info["reward_ctrl"] == pytest.approx(-ctrl(action), abs=1e-15)
        assert info["reward_ctrl"] < 0
        assert reward == pytest.approx(info["reward_forward"] + info["reward_ctrl"], abs=1e-15)
        x_before = info["x_position"]


def test_half_cheetah_vel_truncates_at_200_and_never_terminates():
    env = gym.make(envs.HALF_CHEETAH_VEL)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    flags = [env.step(rng.uniform(-1, 1, size=6))[2:4] for _ in range(200)]
    assert flags[:199] == [(False, False)] * 199
    assert flags[199] == (False, True)


def test_half_cheetah_task_persists_across_reset():
    env = gym.make(envs.HALF_CHEETAH_VEL)
    env.unwrapped.set_task(VelocityTask(1.9))
    for seed in (0, 1, None):
        env.reset(seed=seed)
        assert env.unwrapped.get_task() == VelocityTask(1.9)
        assert env.step(np.zeros(6))[4]["target_velocity"] == 1.9


def test_half_cheetah_dir_rewards_for_both_directions():
    actions = np.random.default_rng(4).uniform(-1, 1, size=(15, 6))
    rewards = {}
    for direction in (-1, 1):
        env = gym.make(envs.HALF_CHEETAH_DIR, task=DirectionTask(direction))
        env.reset(seed=11)
        rewards[direction] = []
        for action in actions:
            _, reward, terminated, _, info = env.step(action)
            assert not terminated
            assert info["direction"] == direction
            assert reward == direction * info["x_velocity"] - ctrl(action)
            assert info["reward_forward"] == direction * info["x_velocity"]
            rewards[direction].append(reward)
    # Same seed and actions give the same motion, so the forward terms cancel:
    # r(+1) + r(-1) = -2 * ctrl.
    expected = [-2 * ctrl(a) for a in actions]
    np.testing.assert_allclose(np.add(rewards[1], rewards[-1]), expected, rtol=0, atol=1e-12)
    assert rewards[1] != rewards[-1]


# -- 7. oracle wrappers ----------------------------------------------------------------------


def test_task_in_observation_navigation():
    env = TaskInObservation(nav(0.3, 0.4))
    space = env.observation_space
    assert space.shape == (4,) and space.dtype == np.float32
    np.testing.assert_array_equal(space.low, np.float32([-np.inf, -np.inf, -0.5, -0.5]))
    np.testing.assert_array_equal(space.high, np.float32([np.inf, np.inf, 0.5, 0.5]))
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.float32([0.0, 0.0, 0.3, 0.4]))
    assert obs.dtype == np.float32 and obs in space
    obs, reward, *_ = env.step(np.array([0.1, 0.1]))
    np.testing.assert_array_equal(obs, np.float32([0.1, 0.1, 0.3, 0.4]))
    assert reward == pytest.approx(-math.hypot(0.2, 0.3), rel=1e-12)  # reward unchanged
    env.unwrapped.set_task(NavigationTask(-0.2, 0.1))
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs, np.float32([0.0, 0.0, -0.2, 0.1]))
    obs, *_ = env.step(np.array([0.0, -0.1]))
    np.testing.assert_array_equal(obs, np.float32([0.0, -0.1, -0.2, 0.1]))


def test_task_in_observation_half_cheetah():
    env = TaskInObservation(gym.make(envs.HALF_CHEETAH_VEL, task=VelocityTask(1.25)))
    plain = gym.make(envs.HALF_CHEETAH_VEL, task=VelocityTask(1.25))
    space = env.observation_space
    assert space.shape == (18,)
    assert space.dtype == plain.observation_space.dtype == np.float64
    np.testing.assert_array_equal(space.low[:17], plain.observation_space.low)
    assert (space.low[17], space.high[17]) == (0.0, 2.0)
    obs, _ = env.reset(seed=5)
    obs_plain, _ = plain.reset(seed=5)
    np.testing.assert_array_equal(obs[:17], obs_plain)
    assert obs[17] == 1.25
    env.unwrapped.set_task(VelocityTask(0.5))
    obs, *_ = env.step(np.zeros(6))
    assert obs.shape == (18,) and obs[17] == 0.5

    direction = TaskInObservation(gym.make(envs.HALF_CHEETAH_DIR, task=DirectionTask(-1)))
    assert direction.observation_space.shape == (18,)
    assert (direction.observation_space.low[17], direction.observation_space.high[17]) == (-1, 1)
    assert direction.reset(seed=0)[0][17] == -1.0


def test_task_in_observation_needs_a_family():
    with pytest.raises(ValueError, match="not a task family"):
        TaskInObservation(gym.make("HalfCheetah-v5"))


def test_vec_task_in_observation_matches_single_wrappers():
    tasks = [NavigationTask(0.1, 0.1), NavigationTask(-0.3, 0.2), NavigationTask(0.45, -0.05)]
    n = len(tasks)
    vec = VecTaskInObservation(Navigation2DVecEnv(n, tasks))
    singles = [TaskInObservation(gym.make(envs.NAVIGATION_2D, task=t)) for t in tasks]
    assert vec.observation_space == singles[0].observation_space
    obs = vec.reset()
    assert np.array_equal(obs, np.stack([s.reset()[0] for s in singles]))
    np.testing.assert_array_equal(obs[1], np.float32([0.0, 0.0, -0.3, 0.2]))
    rng = np.random.default_rng(0)
    for step in range(5):
        # Step 0 puts env 0 on its goal (0.1, 0.1): it terminates at once.
        actions = np.full((n, 2), 0.1) if step == 0 else rng.uniform(-0.1, 0.1, size=(n, 2))
        obs, _, dones, infos = vec.step(actions)
        expected = []
        for i, single in enumerate(singles):
            single_obs, _, terminated, truncated, _ = single.step(actions[i])
            if terminated or truncated:
                assert dones[i]
                assert np.array_equal(infos[i]["terminal_observation"], single_obs)
                single_obs, _ = single.reset()
            expected.append(single_obs)
        assert np.array_equal(obs, np.stack(expected))
        if step == 0:
            np.testing.assert_array_equal(dones, [True, False, False])
            np.testing.assert_array_equal(
                infos[0]["terminal_observation"], np.float32([0.1, 0.1, 0.1, 0.1])
            )
            np.testing.assert_array_equal(obs[0], np.float32([0.0, 0.0, 0.1, 0.1]))


def test_vec_task_in_observation_refreshes_after_env_method_set_task():
    new = NavigationTask(-0.5, 0.25)
    for venv in (
        Navigation2DVecEnv(2, VEC_TASKS[:2]),
        DummyVecEnv([lambda t=t: gym.make(envs.NAVIGATION_2D, task=t) for t in VEC_TASKS[:2]]),
    ):
        vec = VecTaskInObservation(venv)
        vec.env_method("set_task", new, indices=1)
        obs = vec.reset()
        np.testing.assert_array_equal(obs[0], np.float32([0.0, 0.0, 0.3, 0.4]))
        np.testing.assert_array_equal(obs[1], np.float32([0.0, 0.0, -0.5, 0.25]))
        obs, *_ = vec.step(np.zeros((2, 2), dtype=np.float32))
        np.testing.assert_array_equal(obs[1, 2:], np.float32([-0.5, 0.25]))


# Regression: VecTaskInObservation's docstring says the cached tasks are "refreshed whenever
# set_task/set_tasks go through this wrapper", but only env_method("set_task", ...) refreshes.
# wrapper.set_tasks(...) and wrapper.set_task(...) reach Navigation2DVecEnv through
# VecEnvWrapper.__getattr__ and change the tasks, while the observations keep the old ones (so
# does wrapper.set_attr("task", ...)).
def test_regression_vec_task_in_observation_refreshes_after_set_tasks():
    new = NavigationTask(-0.5, 0.25)
    vec = VecTaskInObservation(Navigation2DVecEnv(2, VEC_TASKS[:2]))
    vec.set_tasks([new, new])
    assert vec.venv.get_tasks() == [new, new]  # the tasks did change underneath
    np.testing.assert_array_equal(vec.reset()[:, 2:], np.float32([[-0.5, 0.25]] * 2))
    vec.set_task(VEC_TASKS[0])
    np.testing.assert_array_equal(vec.reset()[:, 2:], np.float32([[0.3, 0.4]] * 2))


def test_the_batched_vec_env_follows_the_registered_horizon():
    vec = envs.Navigation2DEnv.batched_vec_env(2, 7)
    assert vec is not None and vec.get_attr("horizon") == [7, 7]
    vec.reset()
    for _ in range(7):
        _, _, dones, infos = vec.step(np.zeros((2, 2), dtype=np.float32))
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    with pytest.raises(ValueError, match="takes no keyword arguments"):
        envs.Navigation2DEnv.batched_vec_env(2, 100, task=None)


def test_making_a_cheetah_family_prints_no_mujoco_deprecation(capfd):
    # Gymnasium's half_cheetah.xml uses MuJoCo's deprecated settotalmass; MuJoCo prints a
    # notice for every model it compiles, which is not ours to fix.
    capfd.readouterr()
    gym.make(envs.HALF_CHEETAH_VEL).close()
    gym.make(envs.HALF_CHEETAH_DIR).close()
    captured = capfd.readouterr()
    assert "settotalmass" not in captured.out + captured.err
