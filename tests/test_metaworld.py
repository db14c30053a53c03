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
from reptile_rl.envs import ML1Task, ML10Task, ML45Task, task_from_json
from reptile_rl.envs.metaworld import INSTALL_HINT

HAVE_METAWORLD = importlib.util.find_spec("metaworld") is not None
needs_metaworld = pytest.mark.skipif(
    not HAVE_METAWORLD, reason="Meta-World is not installed (make test-metaworld runs these)"
)
ML1_IDS = [i for i in gym.registry if i.startswith("ReptileRL/ML1-")]
ML_IDS = [i for i in gym.registry if i.startswith("ReptileRL/ML")]  # ML1's, ML10, ML45


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
    assert out.count(f"needs:   {INSTALL_HINT}") == len(ML_IDS) == len(ML1_IDS) + 2


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


class _SlowReach:
    """A scripted reach policy, slow enough to miss some goals in 500 steps (gain 0.5).

    SB3's ``predict`` for ``evaluate_policy`` and Meta-World's ``Agent`` for its evaluation.
    """

    def __init__(self, target: np.ndarray):
        self.target = target

    def _act(self, observations: np.ndarray) -> np.ndarray:
        moves = np.clip((self.target - observations[:, :3]) * 0.5, -1.0, 1.0)
        return np.hstack([moves, np.zeros((len(observations), 1))]).astype(np.float32)

    def predict(self, observations, state=None, episode_start=None, deterministic=True):
        return self._act(observations), state

    def eval_action(self, observations):
        return self._act(observations)

    def reset(self, env_mask):
        pass


@needs_metaworld
def test_our_success_measurement_gives_meta_worlds_evaluation_number():
    # Meta-World's protocol scores the adapted policy with metaworld.evaluation.evaluation
    # (3 episodes, each a success if the success flag is set at any step: it ends the episode).
    # Ours: the mean-action measurement's path (SB3's evaluate_policy on our env, success read
    # from is_success at the episode's end). The same policy on the same goals scores the same.
    import metaworld
    from metaworld.evaluation import evaluation
    from stable_baselines3.common.evaluation import evaluate_policy

    from reptile_rl.learners.sb3_hooks import EpisodeSuccesses
    from reptile_rl.vec_env import make_vec_env

    benchmark = metaworld.ML1("reach-v3", seed=0)
    ours, theirs = [], []
    for index in range(6):
        ml1 = make_vec_env(envs.ML1_REACH, {}, 3)
        ml1.env_method("set_task", ML1Task(50 + index))
        ml1.reset()  # places the goal
        policy = _SlowReach(ml1.get_attr("unwrapped")[0]._env._target_pos.copy())
        successes = EpisodeSuccesses(3)
        evaluate_policy(policy, ml1, n_eval_episodes=3, callback=successes)  # type: ignore[arg-type]
        ours.append(successes.success_rate())
        package = gym.make_vec(
            "Meta-World/ML1-test", env_name="reach-v3", seed=0, meta_batch_size=1
        )
        package.set_attr("tasks", [[benchmark.test_tasks[index]]])  # one value per env
        package.call("sample_tasks")
        target = package.get_attr("unwrapped")[0]._target_pos.copy()
        assert np.array_equal(target, policy.target)  # the same goal
        theirs.append(evaluation(_SlowReach(target), package, num_episodes=3)[0])
    assert ours == theirs
    assert 0.0 in ours and 1.0 in ours  # the policy fails some goals: the test can tell


@needs_metaworld
def test_meta_worlds_protocol_adapts_once_on_10_episodes_per_test_goal_in_order(tmp_path):
    run, out = tmp_path / "run", tmp_path / "run" / "eval-metaworld"
    small = ["outer.iterations=1", "outer.meta_batch_size=1", "inner.n_envs=2", "inner.updates=1"]
    overrides = [arg for key in [*small, "parallel.workers=1"] for arg in ("--set", key)]
    assert main(["train", "ml1-reach", "--out", str(run), *overrides]) == 0
    args = ["evaluate", str(run), "--protocol", "metaworld", "--tasks", "2", "--inits", "meta"]
    assert main(args) == 0
    summary = json.loads((out / "adaptation.json").read_text())
    assert summary["protocol"] == "metaworld"
    assert (summary["updates"], summary["episodes_per_update"], summary["tasks"]) == (1, 10, 2)
    with (out / "adaptation.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [task_from_json(row["task"]) for row in rows[::2]] == [ML1Task(50), ML1Task(51)]
    assert [int(row["env_steps"]) for row in rows[:2]] == [0, 10 * 500]
    assert {float(row["mean_action_success_rate"]) for row in rows} <= {0.0, 1.0}  # fixed start
    assert "Protocol: Meta-World's meta-learning evaluation" in (out / "adaptation.md").read_text()


def test_meta_worlds_protocol_is_refused_where_it_does_not_apply(capsys):
    from reptile_rl.config import ConfigError, load_config

    with pytest.raises(ConfigError) as error:
        load_config("navigation", ["evaluation.protocol=metaworld"])
    assert str(error.value) == (
        "evaluation.protocol: metaworld is not a protocol of ReptileRL/Navigation2D-v0 (it has "
        "toolkit)"
    )
    with pytest.raises(ConfigError, match=r"^evaluation\.episodes: Meta-World's protocol adapts"):
        protocol = ["evaluation.protocol=metaworld", "evaluation.updates=1"]
        load_config("ml1-reach", [*protocol, "evaluation.episodes=20"])
    protocol = ["evaluate", "ml1-reach", "--protocol", "metaworld"]
    assert main([*protocol, "--episodes", "20"]) == 2
    assert "--episodes: Meta-World's protocol fixes it" in capsys.readouterr().err


def test_ml10_and_ml45_tasks_are_skill_and_goal_indices_with_meta_worlds_split():
    assert ML10Task.split_list("train", 51)[49:] == [ML10Task(0, 49), ML10Task(1, 0)]
    assert ML10Task.split_list("test", 2) == [ML10Task(10, 0), ML10Task(10, 1)]
    assert len(set(ML10Task.split_list("test", 250))) == 250  # 5 skills x 50 goals
    assert {t.skill for t in ML10Task.sample(300, seed=0, split="test")} == set(range(10, 15))
    assert ML45Task.split_list("test", 1) == [ML45Task(45, 0)]
    assert task_from_json('{"family": "metaworld_ml10", "skill": 3, "goal": 7}') == ML10Task(3, 7)
    with pytest.raises(ValueError, match=r"ML10Task.skill must be an integer in 0\.\.14, got 15"):
        ML10Task(15, 0)
    assert gym.spec(envs.ML10).max_episode_steps == 500
    assert gym.spec(envs.ML45).max_episode_steps == 500


@needs_metaworld
def test_ml10_skills_and_goals_are_meta_worlds():
    import metaworld

    benchmark = metaworld.ML10(seed=0)
    skills = [*benchmark.train_classes, *benchmark.test_classes]
    env = gym.make(envs.ML10, task=ML10Task(12, 3))
    base = env.unwrapped
    assert base.skill_name == skills[12] == "shelf-place-v3"
    assert ML10Task(12, 3).group == "skill 12 (shelf-place-v3)"  # reports summarise per skill
    assert type(base._env) is benchmark.test_classes["shelf-place-v3"]
    goals = [task for task in benchmark.test_tasks if task.env_name == "shelf-place-v3"]
    expected = benchmark.test_classes["shelf-place-v3"]()
    expected.set_task(goals[3])
    expected_obs, _ = expected.reset()
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, expected_obs)  # the same goal and start
    assert obs.shape == (39,) and env.observation_space.contains(obs)
    assert np.all(obs[36:39] == 0.0)  # the goal is hidden, as in ML1
    # Another skill: its env, the same spaces (one policy serves all skills).
    base.set_task(ML10Task(0, 0))
    assert base.skill_name == "reach-v3" and env.reset(seed=0)[0].shape == (39,)
    obs, *_, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and "is_success" in info
    check_env(gym.make(envs.ML10).unwrapped, skip_render_check=True)


def test_meta_worlds_protocol_takes_the_first_goals_of_each_test_skill():
    from reptile_rl.config import load_config
    from reptile_rl.evaluation import held_out_tasks

    protocol = ["evaluation.protocol=metaworld", "evaluation.updates=1", "evaluation.tasks=2"]
    ml10 = held_out_tasks(load_config("ml10", protocol))
    assert ml10 == [ML10Task(skill, goal) for skill in range(10, 15) for goal in (0, 1)]
    ml1 = held_out_tasks(load_config("ml1-reach", [*protocol[:2], "evaluation.tasks=60"]))
    assert ml1 == [ML1Task(goal) for goal in range(50, 100)]  # all 50, not more


@needs_metaworld
def test_the_ml10_preset_trains(tmp_path):
    run = tmp_path / "run"
    small = ["outer.iterations=1", "outer.meta_batch_size=2", "inner.n_envs=2", "inner.updates=1"]
    overrides = [arg for key in [*small, "parallel.workers=1"] for arg in ("--set", key)]
    assert main(["train", "ml10", "--out", str(run), *overrides]) == 0
    assert (run / "meta_policy.zip").exists()
