"""DQN as the inner learner, on the discrete GridNavigation family."""

import numpy as np
import pytest
import torch
from conftest import TINY, theta_on_ray, tiny_config
from stable_baselines3 import DQN

from reptile_rl import checkpoint, params
from reptile_rl.cli import main
from reptile_rl.config import ConfigError, check_env_builds, load_config
from reptile_rl.envs import GridGoalTask
from reptile_rl.learners import AdaptJob, DQNLearner, initial_parameters
from reptile_rl.policies import read_policy_file
from reptile_rl.seeding import Stream, derive_seed
from reptile_rl.trainer import Trainer

DQN_TINY = [
    "env.id=ReptileRL/GridNavigation-v0",
    "inner.algorithm=dqn",  # drops the preset's and TINY's on-policy settings given before it
    "baseline.log_std_init=null",
    "inner.gradient_steps=10",
    "inner.batch_size=32",
]
TASK = GridGoalTask(2, -1)


def dqn_config(*overrides: str):
    return tiny_config(*DQN_TINY, *overrides)


@pytest.fixture(scope="module")
def learner():
    return DQNLearner(dqn_config())


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_theta_is_the_q_network_and_the_target_starts_as_its_copy(learner):
    theta = initial_parameters(learner.config, 1)
    assert set(theta) == {f"q_net.q_net.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
    other = {name: value + 1.0 for name, value in theta.items()}
    learner.load(other)
    state = learner.model.policy.state_dict()
    for name, value in other.items():
        target = state["q_net_target." + name.removeprefix("q_net.")]
        assert np.array_equal(target.numpy(), value), name


def test_an_update_is_n_envs_episodes_into_a_fresh_buffer_then_its_gradient_steps(learner):
    theta = initial_parameters(learner.config, 1)
    rollout = 4 * 100  # TINY's 4 envs, one 100-step horizon each
    assert learner.rollout_size == rollout
    result = learner.adapt(theta, AdaptJob(TASK, seed=5, updates=2))
    buffer = learner.model.replay_buffer
    assert buffer is not None and buffer.pos * buffer.n_envs == 2 * rollout  # both updates'
    assert result.env_steps == 2 * rollout and len(result.returns) == 2
    assert [s["train/n_updates"] for s in result.train_stats] == [10, 20]  # 10 steps each
    learner.adapt(theta, AdaptJob(GridGoalTask(-3, 0), seed=6, updates=1))
    assert buffer.pos * buffer.n_envs == rollout  # a new task: a new buffer
    assert not same(result.params, theta)


def test_adaptation_is_a_pure_function_of_theta_and_job(learner):
    theta = initial_parameters(learner.config, 1)
    job = AdaptJob(TASK, seed=5, updates=2, measure_final=True, measure_mean_action=True)
    first = learner.adapt(theta, job)
    learner.adapt(theta, AdaptJob(GridGoalTask(0, 3), seed=9, updates=1))  # disturb
    again = learner.adapt(theta, job)
    assert same(first.params, again.params) and first.returns == again.returns
    assert first.mean_action_returns == again.mean_action_returns
    assert len(first.returns) == 3 and len(first.mean_action_returns) == 3


def test_exploration_follows_the_per_update_rates(learner):
    config = dqn_config("inner.exploration_rates=[1.0, 0.0]")
    greedy_then = DQNLearner(config)
    theta = initial_parameters(config, 1)
    seen = []
    original = greedy_then.update

    def recording(rate=None, index=0):
        rollout = original(rate, index)
        seen.append(greedy_then.model.exploration_rate)
        return rollout

    greedy_then.update = recording  # type: ignore[method-assign]
    greedy_then.adapt(theta, AdaptJob(TASK, seed=5, updates=3))
    assert seen == [1.0, 0.0, 0.0]  # the last rate repeats


def test_meta_training_interpolates_the_q_network(tmp_path):
    config = dqn_config("outer.meta_batch_size=1", "outer.iterations=1", "outer.eps_start=0.5")
    trainer = Trainer(config, tmp_path / "run").learn()
    theta0 = initial_parameters(config, derive_seed(config.seed, Stream.INITIAL_PARAMETERS))
    (task,) = GridGoalTask.sample(1, seed=derive_seed(config.seed, Stream.TRAIN_TASKS, 0))
    job = AdaptJob(task, derive_seed(config.seed, Stream.ADAPTATION, 0, 0), config.inner.updates)
    phi = DQNLearner(config).adapt(theta0, job).params
    expected, _ = params.reptile_update(theta0, [phi], 0.5)
    assert same(trainer.theta, expected)


def test_a_run_exports_a_zip_that_plain_dqn_loads_and_runs(tmp_path):
    run = tmp_path / "run"
    tiny = _set([*TINY, *DQN_TINY])
    assert main(["train", "navigation", "--out", str(run), "--no-progress", *tiny]) == 0
    policy = read_policy_file(run / "meta_policy.safetensors")
    assert policy.config.inner.algorithm == "dqn"
    model = DQN.load(run / "meta_policy.zip", device="cpu")
    state = {k: v.numpy() for k, v in model.policy.state_dict().items()}
    assert same({k: state[k] for k in policy.params}, policy.params)
    action, _ = model.predict(np.zeros(2, dtype=np.float32), deterministic=True)
    assert 0 <= int(action) < 5
    from_zip = read_policy_file(run / "meta_policy.zip")  # read without unpickling
    assert from_zip.config == policy.config and same(from_zip.params, policy.params)
    tensors, _ = checkpoint.load(run / "checkpoints" / "latest.safetensors")
    assert same(checkpoint.split_prefixed(tensors, "theta/"), policy.params)


def _set(overrides):
    return [arg for item in overrides for arg in ("--set", item)]


def test_baselines_evaluate_and_adapt_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = _set([*TINY, *DQN_TINY, "baseline.env_steps=800"])
    assert main(["train", "navigation", "--out", "meta", "--no-progress", *tiny]) == 0
    assert main(["pretrain", "navigation", "--out", "pre", "--no-progress", *tiny]) == 0
    args = ["pretrain", "navigation", "--oracle", "--out", "orc", "--no-progress", *tiny]
    assert main(args) == 0
    evaluate = ["evaluate", "meta", "--pretrained", "pre", "--oracle", "orc", "--tasks", "2"]
    assert main([*evaluate, "--updates", "1", "--episodes", "4"]) == 0
    table = (tmp_path / "meta" / "eval" / "adaptation.md").read_text()
    assert all(f"| {init} |" in table for init in ("meta", "pretrained", "random", "oracle"))
    task = TASK.to_json()
    assert main(["adapt", "meta", "--task", task, "--updates", "1", "--out", "adapted"]) == 0
    adapted = DQN.load(tmp_path / "adapted" / "policy.zip", device="cpu")
    assert isinstance(adapted.policy.q_net.q_net[0], torch.nn.Linear)


def test_dqn_on_a_continuous_family_is_refused_before_any_work(tmp_path):
    continuous = ["inner.algorithm=dqn", "baseline.log_std_init=null", "outer.inner_rates=fixed"]
    config = load_config("navigation", continuous)
    with pytest.raises(ConfigError) as error:
        check_env_builds(config)
    assert str(error.value) == (
        "inner.algorithm: dqn needs discrete actions; ReptileRL/Navigation2D-v0 has "
        "Box(-0.1, 0.1, (2,), float32)"
    )
    assert main(["train", "navigation", *_set(continuous), "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_settings_dqn_does_not_have_are_refused_with_their_name():
    with pytest.raises(ConfigError, match=r"^outer\.inner_rates: tensor .*algorithm dqn does"):
        load_config("navigation", ["inner.algorithm=dqn", "baseline.log_std_init=null"])
    with pytest.raises(ConfigError, match=r"^inner\.gae_lambda: unknown key"):
        load_config("navigation", ["inner.algorithm=dqn", "inner.gae_lambda=0.9"])
    # The switch drops the preset's baseline log_std; given after it, it is refused.
    grid = ["env.id=ReptileRL/GridNavigation-v0", "inner.algorithm=dqn", "outer.inner_rates=fixed"]
    assert load_config("navigation", grid).baseline.log_std_init is None
    with pytest.raises(ConfigError, match=r"^baseline\.log_std_init: dqn's policy has no log_std"):
        load_config("navigation", [*grid, "baseline.log_std_init=-1"])
    with pytest.raises(ConfigError, match=r"^inner\.exploration_rates\[0\]: .* less than or"):
        load_config("navigation", [*DQN_TINY, "inner.exploration_rates=[1.5]"])


def test_meta_training_on_ray_gives_the_serial_bits(tmp_path):
    serial = Trainer(dqn_config(), tmp_path / "serial").learn()
    assert same(theta_on_ray(dqn_config(), tmp_path / "ray"), serial.theta)
