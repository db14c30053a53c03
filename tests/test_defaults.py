"""Defaults fit any family: a tiny family of the user's own, configured with a minimal YAML.

A default must never be the reason a valid configuration is refused; an explicit value that
does not fit still is. The presets' resolved settings are pinned as literals here, so a new
default cannot change how a preset trains without this file changing too.
"""

import csv
import textwrap

import pytest

from reptile_rl.cli import main
from reptile_rl.config import ConfigError, load_config
from reptile_rl.learners.sb3_onpolicy import algorithm_kwargs

# A point on a line moves to an unobserved target; registered by this module, not the package.
TINY_FAMILY = """
import dataclasses
from typing import ClassVar

import gymnasium as gym
import numpy as np

from reptile_rl.envs import Task, TaskFamily


@dataclasses.dataclass(frozen=True)
class DotTask(Task):
    family: ClassVar[str] = "tiny-dot"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"target": (-1.0, 1.0)}
    target: float


class DotEnv(TaskFamily[DotTask], gym.Env):
    task_type = DotTask
    horizon = 5

    def __init__(self, task=None):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.set_task(task or DotTask.split_list("train", 1)[0])
        self._x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._x = 0.0
        return np.array([self._x], np.float32), {}

    def step(self, action):
        self._x += float(np.clip(action[0], -1.0, 1.0))
        return np.array([self._x], np.float32), -abs(self._x - self._task.target), False, False, {}


gym.register("Tiny/Dot5-v0", entry_point=DotEnv, max_episode_steps=5)
gym.register("Tiny/Dot30-v0", entry_point=DotEnv, max_episode_steps=30)
"""


def minimal_yaml(env_id: str, n_envs: int) -> str:
    """The keys a newcomer writes first, and nothing else."""
    return textwrap.dedent(
        f"""\
        env: {{id: "{env_id}"}}
        outer: {{iterations: 2, meta_batch_size: 2}}
        inner: {{updates: 1, n_envs: {n_envs}}}
        """
    )


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "tiny_dot.py").write_text(TINY_FAMILY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("env_id", "n_envs"), [("Tiny/Dot5-v0", 1), ("Tiny/Dot30-v0", 4)])
def test_a_minimal_yaml_is_accepted_for_small_rollouts(user_dir, env_id, n_envs):
    (user_dir / "mine.yaml").write_text(minimal_yaml(f"tiny_dot:{env_id}", n_envs))
    config = load_config(str(user_dir / "mine.yaml"))
    rollout = n_envs * {"Tiny/Dot5-v0": 5, "Tiny/Dot30-v0": 30}[env_id]
    assert algorithm_kwargs(config)["batch_size"] == rollout  # the whole rollout, not 500


def test_an_explicit_batch_size_that_does_not_fit_is_still_refused(user_dir):
    (user_dir / "mine.yaml").write_text(minimal_yaml("tiny_dot:Tiny/Dot30-v0", 4))
    with pytest.raises(ConfigError) as error:
        load_config(str(user_dir / "mine.yaml"), ["inner.batch_size=500"])
    assert str(error.value) == (
        "inner.batch_size: must be at most the rollout size n_envs * n_steps = 120, got 500"
    )


def test_the_default_minibatch_is_500_where_the_rollout_holds_it():
    config = load_config("cheetah-vel", ["inner.batch_size=auto"])
    assert algorithm_kwargs(config)["batch_size"] == 500


def test_a_word_other_than_auto_is_refused():
    with pytest.raises(ConfigError) as error:
        load_config("navigation", ["inner.batch_size=all"])
    assert str(error.value) == (
        "inner.batch_size: Input should be a valid integer, or Input should be 'auto', "
        "got str 'all'"
    )


# (rollout steps per env, envs, minibatch) of each preset's training, baseline and evaluation
# learners, as they resolved before ``batch_size: auto`` became the default.
PRESET_SETTINGS = {
    "navigation": [(100, 20, 2000), (100, 100, 2000), (100, 20, 2000)],
    "cheetah-vel": [(200, 20, 4000), (200, 20, 1000), (200, 20, 4000)],
    "cheetah-dir": [(200, 20, 4000), (200, 20, 1000), (200, 20, 4000)],
    "ant-dir": [(200, 20, 4000), (200, 20, 1000), (200, 20, 4000)],
}


@pytest.mark.parametrize("preset", sorted(PRESET_SETTINGS))
def test_every_preset_resolves_as_before(preset):
    config = load_config(preset)
    resolved = []
    for inner in (config.inner, config.baseline_inner(), config.evaluation_inner()):
        kwargs = algorithm_kwargs(config, inner)
        resolved.append((kwargs["n_steps"], inner.n_envs, kwargs["batch_size"]))
    assert resolved == PRESET_SETTINGS[preset]


def test_a_tiny_own_family_trains_and_evaluates_with_defaults_only(user_dir):
    (user_dir / "mine.yaml").write_text(minimal_yaml("tiny_dot:Tiny/Dot5-v0", 1))
    assert main(["train", "mine.yaml", "--out", "run", "--no-progress"]) == 0
    assert (user_dir / "run" / "meta_policy.safetensors").is_file()
    assert main(["evaluate", "run"]) == 0
    with (user_dir / "run" / "eval" / "adaptation.csv").open() as file:
        rows = list(csv.DictReader(file))
    # The default protocol: 40 held-out tasks, updates 0..3, for the meta-init and random.
    assert {row["init"] for row in rows} == {"meta", "random"}
    assert {int(row["update"]) for row in rows} == {0, 1, 2, 3}
    assert len({row["task_id"] for row in rows}) == 40
