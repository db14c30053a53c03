"""A task family written in the user's own module, exactly as the README shows it."""

import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import theta_on_ray, tiny_config
from gymnasium.utils.env_checker import check_env

from reptile_rl.cli import main
from reptile_rl.policies import read_policy_file
from reptile_rl.trainer import Trainer

README = Path(__file__).resolve().parents[1] / "README.md"
ENV_ID = "my_family:My/Target1D-v0"


def readme_family() -> str:
    section = README.read_text().split("## Your own task family", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.fixture(scope="module")
def family_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    (folder / "my_family.py").write_text(readme_family())
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        yield folder


def test_the_readme_family_is_complete_and_short():
    assert len(readme_family().splitlines()) < 40


@pytest.mark.filterwarnings(
    "error", "ignore:.*A Box observation space (minimum|maximum) value is .*infinity"
)
def test_the_family_passes_gymnasium_s_checker(family_dir):
    env = gym.make(ENV_ID)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        assert env.spec.max_episode_steps == 50
    finally:
        env.close()


def test_train_pretrain_evaluate_and_adapt_a_user_family(family_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(f"env.id={ENV_ID}")
    run = Trainer(config, tmp_path / "run").learn()
    assert read_policy_file(tmp_path / "run" / "meta_policy.safetensors").config.env.id == ENV_ID
    assert set(run.theta) >= {"log_std", "action_net.weight"}
    overrides = ["--set", f"env.id={ENV_ID}", "--set", "baseline.env_steps=400"]
    overrides += ["--set", "baseline.inner.batch_size=1000"]  # divides its 100 x 50 rollout
    pretrain = ["pretrain", "navigation", "--out", "pre", "--no-progress", *overrides]
    assert main([*pretrain, "--set", "policy.net_arch=[16, 16]"]) == 0
    args = ["evaluate", "run", "--pretrained", "pre", "--tasks", "3", "--updates", "1"]
    assert main([*args, "--episodes", "4"]) == 0
    table = (tmp_path / "run" / "eval" / "adaptation.md").read_text()
    assert f"3 held-out tasks of {ENV_ID}" in table and "| pretrained |" in table
    assert "target1d" in (tmp_path / "run" / "eval" / "adaptation.csv").read_text()
    task = '{"family": "target1d", "target": 0.5}'
    assert main(["adapt", "run", "--task", task, "--updates", "1", "--out", "adapted"]) == 0
    rows = (tmp_path / "adapted" / "adaptation.csv").read_text().splitlines()
    assert rows[0] == "update,env_steps,return,mean_action_return" and len(rows) == 3


def test_a_user_family_trains_alike_on_ray(family_dir, tmp_path):
    config = tiny_config(f"env.id={ENV_ID}")
    serial = Trainer(config, tmp_path / "serial").learn()
    distributed = theta_on_ray(config, tmp_path / "ray")
    for name, value in serial.theta.items():
        np.testing.assert_array_equal(distributed[name], value)


def test_a_user_family_without_a_batched_form_trains_alike_on_both_engines(family_dir, tmp_path):
    # The default engine (lockstep) steps the family's own Gymnasium envs, job by job.
    reference = Trainer(tiny_config(f"env.id={ENV_ID}", "inner.engine=sb3"), tmp_path / "sb3")
    theta = Trainer(tiny_config(f"env.id={ENV_ID}"), tmp_path / "ls").learn().theta
    for name, value in reference.learn().theta.items():
        np.testing.assert_array_equal(theta[name], value)
