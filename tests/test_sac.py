"""SAC as the inner learner, on the continuous Navigation2D family."""

import json
import zipfile

import numpy as np
import pytest
import torch
from conftest import TINY, theta_on_ray, tiny_config
from stable_baselines3 import SAC

from reptile_rl import checkpoint, params
from reptile_rl.checkpoint import CheckpointError
from reptile_rl.cli import main
from reptile_rl.config import ConfigError, check_env_builds, load_config
from reptile_rl.envs.navigation import NavigationTask
from reptile_rl.learners import AdaptJob, SACLearner, initial_parameters
from reptile_rl.policies import read_policy_file
from reptile_rl.seeding import Stream, derive_seed
from reptile_rl.trainer import Trainer

SAC_TINY = [
    "inner.algorithm=sac",  # drops the preset's and TINY's on-policy settings given before it
    "inner.gradient_steps=10",
    "inner.batch_size=32",
    "outer.exclude=[]",
]
TASK = NavigationTask(0.3, -0.2)


def sac_config(*overrides: str):
    return tiny_config(*SAC_TINY, *overrides)


@pytest.fixture(scope="module")
def learner():
    return SACLearner(sac_config())


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_theta_is_actor_critics_and_entropy_coefficient_and_targets_copy_the_critics(learner):
    theta = initial_parameters(learner.config, 1)
    assert {n.split(".")[0] for n in theta} == {"actor", "critic", "log_ent_coef"}
    assert {n.split(".")[1] for n in theta if n.startswith("critic.")} == {"qf0", "qf1"}
    assert theta["log_ent_coef"].tolist() == [0.0]  # log of SAC's initial coefficient 1
    other = {name: value + 1.0 for name, value in theta.items()}
    learner.load(other)
    state = learner.model.policy.state_dict()
    for name, value in other.items():
        if name.startswith("critic."):
            target = state["critic_target." + name.removeprefix("critic.")]
            assert np.array_equal(target.numpy(), value), name
    assert learner.model.log_ent_coef is not None
    assert learner.model.log_ent_coef.item() == 1.0
    assert same(learner.parameters(), other)


def test_an_update_is_n_envs_episodes_into_a_fresh_buffer_then_its_gradient_steps(learner):
    theta = initial_parameters(learner.config, 1)
    rollout = 4 * 100  # TINY's 4 envs, one 100-step horizon each
    assert learner.rollout_size == rollout
    result = learner.adapt(theta, AdaptJob(TASK, seed=5, updates=2))
    buffer = learner.model.replay_buffer
    assert buffer is not None and buffer.pos * buffer.n_envs == 2 * rollout  # both updates'
    assert result.env_steps == 2 * rollout and len(result.returns) == 2
    assert [s["train/n_updates"] for s in result.train_stats] == [10, 20]  # 10 steps each
    learner.adapt(theta, AdaptJob(NavigationTask(-0.4, 0.1), seed=6, updates=1))
    assert buffer.pos * buffer.n_envs == rollout  # a new task: a new buffer
    moved = [n for n in theta if not np.array_equal(theta[n], result.params[n])]
    assert {n.split(".")[0] for n in moved} == {"actor", "critic", "log_ent_coef"}


def test_adaptation_is_a_pure_function_of_theta_and_job(learner):
    theta = initial_parameters(learner.config, 1)
    job = AdaptJob(TASK, seed=5, updates=2, measure_final=True, measure_mean_action=True)
    first = learner.adapt(theta, job)
    learner.adapt(theta, AdaptJob(NavigationTask(0.05, 0.45), seed=9, updates=1))  # disturb
    again = learner.adapt(theta, job)
    assert same(first.params, again.params) and first.returns == again.returns
    assert first.mean_action_returns == again.mean_action_returns
    assert len(first.returns) == 3 and len(first.mean_action_returns) == 3


def test_a_fixed_entropy_coefficient_is_not_part_of_theta():
    config = sac_config("inner.ent_coef=0.05")
    theta = initial_parameters(config, 1)
    assert "log_ent_coef" not in theta
    result = SACLearner(config).adapt(theta, AdaptJob(TASK, seed=5, updates=1))
    assert result.params.keys() == theta.keys()


def test_meta_training_interpolates_actor_critics_and_coefficient(tmp_path):
    config = sac_config("outer.meta_batch_size=1", "outer.iterations=1", "outer.eps_start=0.5")
    trainer = Trainer(config, tmp_path / "run").learn()
    theta0 = initial_parameters(config, derive_seed(config.seed, Stream.INITIAL_PARAMETERS))
    (task,) = NavigationTask.sample(1, seed=derive_seed(config.seed, Stream.TRAIN_TASKS, 0))
    job = AdaptJob(task, derive_seed(config.seed, Stream.ADAPTATION, 0, 0), config.inner.updates)
    phi = SACLearner(config).adapt(theta0, job).params
    expected, _ = params.reptile_update(theta0, [phi], 0.5)
    assert same(trainer.theta, expected)


def test_meta_training_on_ray_gives_the_serial_bits(tmp_path):
    serial = Trainer(sac_config(), tmp_path / "serial").learn()
    assert same(theta_on_ray(sac_config(), tmp_path / "ray"), serial.theta)


def _set(overrides):
    return [arg for item in overrides for arg in ("--set", item)]


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("sac") / "run"
    tiny = _set([*TINY, *SAC_TINY])
    assert main(["train", "navigation", "--out", str(run), "--no-progress", *tiny]) == 0
    return run


def test_a_run_exports_a_zip_that_plain_sac_loads_and_runs(sac_run):
    run = sac_run
    policy = read_policy_file(run / "meta_policy.safetensors")
    assert policy.config.inner.algorithm == "sac"
    model = SAC.load(run / "meta_policy.zip", device="cpu")
    state = {k: v.numpy() for k, v in model.policy.state_dict().items()}
    assert model.log_ent_coef is not None
    state["log_ent_coef"] = model.log_ent_coef.detach().numpy()
    assert same({k: state[k] for k in policy.params}, policy.params)
    action, _ = model.predict(np.zeros(2, dtype=np.float32), deterministic=True)
    assert action.shape == (2,) and np.all(np.abs(action) <= 0.1)
    from_zip = read_policy_file(run / "meta_policy.zip")  # read without unpickling
    assert from_zip.config == policy.config and same(from_zip.params, policy.params)
    tensors, _ = checkpoint.load(run / "checkpoints" / "latest.safetensors")
    assert same(checkpoint.split_prefixed(tensors, "theta/"), policy.params)


def test_a_plain_sac_zip_is_read_without_unpickling_as_its_twin(sac_run, tmp_path):
    policy = read_policy_file(sac_run / "meta_policy.safetensors")
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(sac_run / "meta_policy.zip") as ours, zipfile.ZipFile(plain, "w") as out:
        for item in ours.infolist():
            if item.filename != "reptile_rl.json":  # what plain SB3 writes
                out.writestr(item, ours.read(item.filename))
    read = read_policy_file(plain, policy.config)
    assert read.config.inner == policy.config.inner and same(read.params, policy.params)
    with pytest.raises(CheckpointError, match=r"lacks SAC's target_entropy and tau"):
        not_sac = tmp_path / "other.zip"
        with zipfile.ZipFile(plain) as source, zipfile.ZipFile(not_sac, "w") as out:
            for item in source.infolist():
                data = source.read(item.filename)
                if item.filename == "data":
                    values = json.loads(data)
                    del values["target_entropy"]
                    data = json.dumps(values).encode()
                out.writestr(item, data)
        read_policy_file(not_sac, policy.config)


def test_baselines_evaluate_and_adapt_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = _set([*TINY, *SAC_TINY, "baseline.env_steps=800"])
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
    adapted = SAC.load(tmp_path / "adapted" / "policy.zip", device="cpu")
    assert isinstance(adapted.policy.actor.mu, torch.nn.Linear)


def test_sac_on_a_discrete_family_is_refused_before_any_work():
    config = load_config("grid-navigation", ["inner.algorithm=sac"])
    with pytest.raises(ConfigError) as error:
        check_env_builds(config)
    assert str(error.value) == (
        "inner.algorithm: sac needs continuous (Box) actions; ReptileRL/GridNavigation-v0 has "
        "Discrete(5)"
    )


def test_settings_sac_does_not_have_are_refused_with_their_name():
    sac = ["inner.algorithm=sac", "outer.inner_rates=fixed"]
    with pytest.raises(ConfigError, match=r"^inner\.n_epochs: unknown key"):
        load_config("cheetah-vel", [*sac, "inner.n_epochs=5"])
    with pytest.raises(ConfigError, match=r"^inner\.clip_range: unknown key"):
        load_config("cheetah-vel", [*sac, "inner.clip_range=0.2"])
    with pytest.raises(ConfigError, match=r"^inner\.engine: unknown key"):
        load_config("cheetah-vel", [*sac, "inner.engine=lockstep"])
    with pytest.raises(ConfigError, match=r"^inner\.reset_optimizer: sac starts every task"):
        load_config("cheetah-vel", [*sac, "inner.reset_optimizer=false"])
    with pytest.raises(ConfigError, match=r"^inner\.ent_coef: "):
        load_config("cheetah-vel", [*sac, "inner.ent_coef=-1"])
    # The switch alone is a configuration SAC runs with (the preset's PPO settings dropped).
    assert load_config("cheetah-vel", ["inner.algorithm=sac"]).inner.algorithm == "sac"
