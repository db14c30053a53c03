"""Meta-World's ML1 as a task family: the optional extra.

Without Meta-World (the core venv) only the first tests run: the ids are registered and
listed with the install hint, and building one says how to install it. The rest need the
extra and run in its own venv (``make test-metaworld``; Meta-World pins another MuJoCo).
"""

import csv
import importlib.util
import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from reptile_rl import envs
from reptile_rl.cli import main
from reptile_rl.envs import ML1Task, task_from_json
from reptile_rl.envs.metaworld import INSTALL_HINT

HAVE_METAWORLD = importlib.util.find_spec("metaworld") is not None
needs_metaworld = pytest.mark.skipif(
    not HAVE_METAWORLD, reason="Meta-World is not installed (make test-metaworld runs these)"
)
ML1_IDS = [i for i in gym.registry if i.startswith("ReptileRL/ML1-")]


def test_ml1_ids_are_registered_with_meta_worlds_horizon():
    assert {envs.ML1, envs.ML1_REACH, "ReptileRL/ML1-push-v0"} <= set(ML1_IDS)
    for env_id in ML1_IDS:
        assert gym.spec(env_id).max_episode_steps == 500


@pytest.mark.skipif(HAVE_METAWORLD, reason="checks the message shown without Meta-World")
def test_without_the_extra_building_says_how_to_install_it(capsys):
    with pytest.raises(ImportError, match=r"pip install -e '\.\[metaworld\]'"):
        gym.make(envs.ML1_REACH)
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"needs:   {INSTALL_HINT}") == len(ML1_IDS)


def test_ml1_tasks_are_goal_indices_with_meta_worlds_splits():
    assert ML1Task.split_list("train", 52) == [ML1Task(i % 50) for i in range(52)]
    assert ML1Task.split_list("test", 3) == [ML1Task(50), ML1Task(51), ML1Task(52)]
    assert {t.split for t in ML1Task.sample(200, seed=0, split="test")} == {"test"}
    assert all(t.goal >= 50 for t in ML1Task.sample(200, seed=0, split="test"))
    assert all(t.goal < 50 for t in ML1Task.sample(200, seed=0, split="train"))
    assert task_from_json('{"family": "metaworld_ml1", "goal": 7}') == ML1Task(7)
    with pytest.raises(ValueError, match=r"ML1Task.goal must be an integer in 0\.\.99, got 100"):
        ML1Task(100)


@needs_metaworld
def test_ml1_splits_are_meta_worlds_goal_lists():
    import metaworld

    benchmark = metaworld.ML1("reach-v3", seed=0)
    env = gym.make(envs.ML1_REACH)
    family = env.unwrapped
    goals = [*benchmark.train_tasks, *benchmark.test_tasks]
    for index in (0, 49, 50, 99):
        family.set_task(ML1Task(index))
        env.reset(seed=0)
        expected = metaworld.ML1("reach-v3", seed=0).train_classes["reach-v3"]()
        expected.set_task(goals[index])
        expected.reset()
        np.testing.assert_array_equal(family._env._target_pos, expected._target_pos)
    family.set_task(ML1Task(0))
    env.reset(seed=0)
    first = family._env._target_pos.copy()
    family.set_task(ML1Task(50))
    env.reset(seed=0)
    assert not np.array_equal(first, family._env._target_pos)


@needs_metaworld
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ml1_passes_the_gymnasium_env_checker():
    env = gym.make(envs.ML1_REACH)
    check_env(env.unwrapped, skip_render_check=True)


@needs_metaworld
def test_reaching_the_goal_is_a_success_that_lasts_the_episode():
    env = gym.make(envs.ML1_REACH, task=ML1Task(55))
    obs, _ = env.reset(seed=0)
    target = env.unwrapped._env._target_pos
    assert np.all(obs[36:39] == 0.0)  # ML1 hides the goal
    flags, rewards = [], []
    for _ in range(500):
        hand = obs[:3]
        action = np.append(np.clip((target - hand) * 20.0, -1.0, 1.0), 0.0).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        flags.append((info["success"], info["is_success"]))
        rewards.append(reward)
        assert not terminated
    assert truncated
    first = next(t for t, (success, _) in enumerate(flags) if success)
    assert all(is_success == 0.0 for _, is_success in flags[:first])
    assert all(is_success == 1.0 for _, is_success in flags[first:])
    assert min(rewards) >= 0.0 and max(rewards) <= 10.0
    # A policy that stays put fails, and is_success is reset with the episode.
    env.reset(seed=0)
    infos = [env.step(np.zeros(4, dtype=np.float32))[4] for _ in range(500)]
    assert infos[-1]["is_success"] == 0.0


@needs_metaworld
def test_ml1_task_persists_across_reset_and_any_skill_by_name():
    env = gym.make(envs.ML1, env_name="push-v3", task=ML1Task(60))
    for seed in (0, 1, None):
        env.reset(seed=seed)
        assert env.unwrapped.get_task() == ML1Task(60)
    assert env.unwrapped.env_name == "push-v3"
    with pytest.raises(ValueError, match="env_name must be a Meta-World v3 skill"):
        gym.make(envs.ML1, env_name="reach-v2")


@needs_metaworld
def test_ml1_reach_preset_trains_and_evaluate_reports_success(tmp_path):
    run, evaluation = tmp_path / "run", tmp_path / "eval"
    small = [
        "outer.iterations=1",
        "outer.meta_batch_size=2",
        "inner.n_envs=2",
        "inner.updates=1",
        "parallel.workers=1",
        "evaluation.tasks=2",
        "evaluation.episodes=2",
        "evaluation.updates=1",
    ]
    overrides = [arg for key in small for arg in ("--set", key)]
    assert main(["train", "ml1-reach", "--out", str(run), *overrides]) == 0
    assert main(["evaluate", str(run), "--inits", "meta", "--out", str(evaluation)]) == 0
    summary = json.loads((evaluation / "adaptation.json").read_text())
    curve = summary["inits_success"]["meta"]
    assert [point["update"] for point in curve] == [0, 1]
    assert all(point["n"] == 2 and 0.0 <= point["mean"] <= 1.0 for point in curve)
    with (evaluation / "adaptation.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 4  # 2 tasks x (before, after 1 update)
    # Two episodes per rollout: a task's success rate is 0, 0.5 or 1.
    assert {float(row["success_rate"]) for row in rows} <= {0.0, 0.5, 1.0}
    assert "success rate" in (evaluation / "adaptation.md").read_text()
