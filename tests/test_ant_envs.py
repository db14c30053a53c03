"""Known answers for the ant families: each reward recomputed here from MAML's and
ProMP's formulas on Ant-v5's own state, the physics against plain Ant-v5, termination and the
goal distribution. Registration, JSON, splits and the env checker are in ``test_envs.py``.
"""

import pickle

import gymnasium as gym
import numpy as np
import pytest

from reptile_rl import envs
from reptile_rl.envs import (
    AntDirectionTask,
    AntGoalEnv,
    AntGoalTask,
    AntVelocityTask,
    TaskInObservation,
)


def contact(env: gym.Env) -> float:
    """MAML's and ProMP's contact cost ``0.5 * 1e-3 * sum(clip(cfrc_ext, -1, 1)^2)``."""
    forces = np.clip(env.unwrapped.data.cfrc_ext, -1.0, 1.0)
    return 0.5e-3 * float(np.sum(np.square(forces)))


def square(action: np.ndarray) -> float:
    return float(np.sum(np.square(np.asarray(action, dtype=np.float64))))


# Ant-v5 sums the squared float32 action in float32 (as SB3's actions are): up to ~5e-8 off a
# float64 sum for 8 entries in [-1, 1] and weight 0.1; a wrong weight or term is off by > 1e-4.
TOL = 1e-7


def run_beside_ant_v5(env_id: str, task, reference_kwargs: dict, steps: int = 40):
    """Step the family and plain Ant-v5 with the same seed and actions; yield both steps."""
    ours = gym.make(env_id, task=task)
    ref = gym.make("Ant-v5", **reference_kwargs)
    obs, _ = ours.reset(seed=7)
    obs_ref, _ = ref.reset(seed=7)
    assert np.array_equal(obs, obs_ref)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        action = rng.uniform(-1, 1, size=8).astype(np.float32)
        step = ours.step(action)
        step_ref = ref.step(action)
        yield ours, action, step, step_ref
        if step[2] or step_ref[2]:
            break


def test_ant_vel_reward_is_maml_on_ant_v5_physics():
    target = 1.7
    costs, velocities = [], []
    for env, action, step, step_ref in run_beside_ant_v5(envs.ANT_VEL, AntVelocityTask(target), {}):
        obs, reward, terminated, _, info = step
        obs_ref, _, terminated_ref, _, info_ref = step_ref
        assert np.array_equal(obs, obs_ref) and obs.shape == (105,)
        assert info["x_velocity"] == info_ref["x_velocity"]
        assert terminated == terminated_ref
        expected = -abs(info["x_velocity"] - target) + 1.0 - 0.005 * square(action)
        expected += -contact(env) + 0.05
        assert reward == pytest.approx(expected, abs=TOL)
        assert info["reward_forward"] == pytest.approx(-abs(info["x_velocity"] - target) + 1.0)
        assert info["target_velocity"] == target
        costs.append(contact(env))
        velocities.append(info["x_velocity"])
    # Not vacuous: the ant moved and touched the ground.
    assert np.ptp(velocities) > 0.1
    assert max(costs) > 0.0


def test_ant_dir_rewards_for_both_directions():
    rewards: dict[int, list[float]] = {}
    shared: list[float] = []
    for direction in (-1, 1):
        rewards[direction] = []
        shared.clear()
        for env, action, step, _ in run_beside_ant_v5(
            envs.ANT_DIR, AntDirectionTask(direction), {}, steps=15
        ):
            _, reward, _, _, info = step
            assert info["direction"] == direction
            assert info["reward_forward"] == direction * info["x_velocity"]
            expected = direction * info["x_velocity"] - 0.005 * square(action) - contact(env)
            assert reward == pytest.approx(expected + 0.05, abs=TOL)
            rewards[direction].append(reward)
            shared.append(-0.005 * square(action) - contact(env) + 0.05)
    # Same seed and actions give the same motion: the forward terms cancel.
    np.testing.assert_allclose(
        np.add(rewards[1], rewards[-1]), 2 * np.array(shared), rtol=0, atol=2 * TOL
    )
    assert rewards[1] != rewards[-1]


# Above 1.0 (lifted, falling 0.012 in one 0.05 s step): too low is not set up this way, as the
# contact solver pushes a sunk torso back up within the step.
@pytest.mark.parametrize("height", [1.05, 1.5])
def test_maml_ants_terminate_when_unhealthy_and_still_pay_the_survive_bonus(height):
    env = gym.make(envs.ANT_VEL, task=AntVelocityTask(0.0))
    env.reset(seed=0)
    ant = env.unwrapped
    qpos, qvel = ant.data.qpos.copy(), ant.data.qvel.copy()
    qpos[2] = height
    ant.set_state(qpos, np.zeros_like(qvel))
    _, reward, terminated, truncated, info = env.step(np.zeros(8, dtype=np.float32))
    assert terminated and not truncated
    # MAML pays 0.05 on the terminating step too (Ant-v5's healthy_reward would pay 0 here).
    assert info["reward_survive"] == 0.05
    expected = -abs(info["x_velocity"]) + 1.0 - contact(env) + 0.05
    assert reward == pytest.approx(expected, abs=TOL)


def test_ant_goal_reward_is_promp_and_it_never_terminates():
    goal = AntGoalTask(-1.5, 2.0)
    steps = 0
    for env, action, step, step_ref in run_beside_ant_v5(
        envs.ANT_GOAL, goal, {"exclude_current_positions_from_observation": False}, steps=30
    ):
        steps += 1
        obs, reward, terminated, _, info = step
        assert np.array_equal(obs, step_ref[0]) and obs.shape == (107,)
        assert (obs[0], obs[1]) == (info["x_position"], info["y_position"])  # observed
        # ProMP's position: the torso's centre of mass as MuJoCo last computed it.
        x, y = env.unwrapped.data.body("torso").xipos[:2]
        distance = abs(x - goal.goal_x) + abs(y - goal.goal_y)
        expected = -distance - 0.1 * square(action) - contact(env)
        assert reward == pytest.approx(expected, abs=TOL)
        assert info["reward_forward"] == pytest.approx(-distance, abs=TOL)
        assert (info["goal_x"], info["goal_y"]) == (-1.5, 2.0)
        assert info["reward_survive"] == 0.0
        assert not terminated
    assert steps == 30
    # Flipped over (torso far below 0.2): Ant-v5 would terminate, ProMP's ant goes on to 200.
    env = gym.make(envs.ANT_GOAL)
    env.reset(seed=0)
    ant = env.unwrapped
    qpos = ant.data.qpos.copy()
    qpos[2] = 0.05
    ant.set_state(qpos, np.zeros_like(ant.data.qvel))
    flags = [env.step(np.zeros(8, dtype=np.float32))[2:4] for _ in range(200)]
    assert flags[:199] == [(False, False)] * 199 and flags[199] == (False, True)


def test_ant_goal_tasks_are_uniform_over_the_disk():
    tasks = AntGoalTask.sample(4000, seed=0)
    goals = np.array([[t.goal_x, t.goal_y] for t in tasks])
    radii = np.hypot(goals[:, 0], goals[:, 1])
    assert radii.max() <= 3.0
    assert radii.max() > 2.99
    # Uniform over the area: P(r < 1.5) = 1/4 (sd of the fraction ~0.007), P(r < 3/sqrt(2)) = 1/2.
    assert abs(np.mean(radii < 1.5) - 0.25) < 0.03
    assert abs(np.mean(radii < 3 / np.sqrt(2)) - 0.5) < 0.03
    # Every quadrant equally likely (sd ~0.007).
    for sx in (-1, 1):
        for sy in (-1, 1):
            share = np.mean((np.sign(goals[:, 0]) == sx) & (np.sign(goals[:, 1]) == sy))
            assert abs(share - 0.25) < 0.03
    # Train and test never share a goal.
    test = set(AntGoalTask.sample(1000, seed=0, split="test"))
    assert not test & set(tasks)


def test_ant_task_persists_across_reset_and_pickles():
    env = gym.make(envs.ANT_GOAL, task=AntGoalTask(0.5, 0.5))
    env.unwrapped.set_task(AntGoalTask(2.0, -1.0))
    for seed in (0, 1, None):
        env.reset(seed=seed)
        assert env.unwrapped.get_task() == AntGoalTask(2.0, -1.0)
    copy = pickle.loads(pickle.dumps(env.unwrapped))
    assert isinstance(copy, AntGoalEnv)
    assert copy.observation_space.shape == (107,)
    assert copy._terminate_when_unhealthy is False


@pytest.mark.parametrize("forged", [(2.5, 2.5), (5.0, 5.0)])
def test_set_task_refuses_a_forged_goal_outside_the_disk(forged):
    env = gym.make(envs.ANT_GOAL, task=AntGoalTask(0.5, 0.5))
    task = AntGoalTask(1.0, 1.0)
    # A frozen dataclass can still be changed behind its back; set_task checks it again.
    object.__setattr__(task, "goal_x", forged[0])
    object.__setattr__(task, "goal_y", forged[1])
    with pytest.raises(ValueError, match=r"^AntGoalTask.*goal_[xy]") as error:
        env.unwrapped.set_task(task)
    if forged == (2.5, 2.5):  # each coordinate in its box: only the disk refuses it
        assert str(error.value) == (
            "AntGoalTask (goal_x, goal_y) must lie within 3.0 of the origin, got (2.5, 2.5)"
        )
    assert env.unwrapped.get_task() == AntGoalTask(0.5, 0.5)


def test_task_in_observation_ant_goal():
    env = TaskInObservation(gym.make(envs.ANT_GOAL, task=AntGoalTask(-2.0, 1.0)))
    space = env.observation_space
    assert space.shape == (109,)
    np.testing.assert_array_equal(space.low[107:], [-3.0, -3.0])
    np.testing.assert_array_equal(space.high[107:], [3.0, 3.0])
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs[107:], [-2.0, 1.0])
