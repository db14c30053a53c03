"""Success rates next to returns: learner, evaluate's outputs and adapt's.

A tiny family defined here moves a point on a line towards an unobserved target and reports
SB3's ``info["is_success"]`` (within RADIUS of the target at any step so far), as Meta-World's
families do; its twin reports nothing. Every env logs each episode it completes, so the success
rates can be computed independently from the very episodes the learner scored.
"""

import csv
import dataclasses
import json
import struct
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from conftest import tiny_config

from reptile_rl import adaptation as adaptation_module
from reptile_rl import report
from reptile_rl.cli import main
from reptile_rl.envs import Task, TaskFamily
from reptile_rl.learners import AdaptJob, OnPolicyLearner, initial_parameters
from reptile_rl.learners.sb3_hooks import EpisodeReturns, EpisodeSuccesses
from reptile_rl.metrics import METRICS
from reptile_rl.policies import PolicyFile, save_policy
from reptile_rl.stats import summarize

RADIUS = 0.1
HORIZON = 25  # 4 envs x 25 steps: one rollout is TINY's batch of 100
EPISODES: list[tuple[float, float]] = []
"""(return, closest distance to the target) of every episode any env of this module completed."""


@dataclasses.dataclass(frozen=True)
class ReachTask(Task):
    family: ClassVar[str] = "reach1d"
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"target": (-0.5, 0.5)}
    target: float


class Reach1DEnv(TaskFamily[ReachTask], gym.Env[np.ndarray, np.ndarray]):
    task_type = ReachTask
    horizon = HORIZON
    metric: ClassVar[str] = "success rate and return"
    reports_success: ClassVar[bool] = True

    def __init__(self, task: ReachTask | None = None) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-0.1, 0.1, (1,), np.float32)
        self.set_task(task or ReachTask.split_list("train", 1)[0])
        self._reset_episode()

    def _reset_episode(self) -> None:
        self._x, self._steps, self._return, self._closest = 0.0, 0, 0.0, np.inf

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._reset_episode()
        return np.array([self._x], np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self._x += float(np.clip(action[0], -0.1, 0.1))
        distance = abs(self._x - self._task.target)
        self._steps += 1
        self._return += -distance
        self._closest = min(self._closest, distance)
        if self._steps == HORIZON:  # the registered time limit ends the episode here
            EPISODES.append((self._return, self._closest))
        info = {"is_success": float(self._closest < RADIUS)} if self.reports_success else {}
        return np.array([self._x], np.float32), -distance, False, False, info


class QuietReach1DEnv(Reach1DEnv):
    """The same env without ``is_success``, as every family but Meta-World's."""

    metric: ClassVar[str] = "return"
    reports_success: ClassVar[bool] = False


gym.register("Test/Reach1D-v0", entry_point=Reach1DEnv, max_episode_steps=HORIZON)
gym.register("Test/QuietReach1D-v0", entry_point=QuietReach1DEnv, max_episode_steps=HORIZON)
ENV_ID = f"{__name__}:Test/Reach1D-v0"
QUIET_ID = f"{__name__}:Test/QuietReach1D-v0"
TASKS = [ReachTask(0.15), ReachTask(-0.3)]
RETURNS = ["return", "mean_action_return"]  # the metrics every CSV has
EVAL = ["--tasks", "3", "--updates", "2", "--episodes", "4", "--seed", "1"]


def config_of(env_id: str):
    # log_std 0: actions spread over the whole action range, so that some episodes succeed.
    return tiny_config(f"env.id={env_id}", "policy.log_std_init=0.0")


def learner_of(env_id: str) -> OnPolicyLearner:
    config = config_of(env_id)
    return OnPolicyLearner(config, inner=config.evaluation_inner())


def adapt_and_log(env_id: str, task: ReachTask):
    learner = learner_of(env_id)
    try:
        theta = initial_parameters(learner.config, 3)
        job = AdaptJob(task, seed=7, updates=2, measure_final=True, measure_mean_action=True)
        EPISODES.clear()
        result = learner.adapt(theta, job)
        return result, list(EPISODES), learner.n_envs
    finally:
        learner.close()


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def logged_curves(episodes, n_envs: int, updates: int) -> dict[str, list[float]]:
    """Returns and success rates per update, from the episodes one adaptation logged.

    In time order: before each update and after the last, the mean-action episodes (one per
    env, on envs of their own), then the rollout's (one per env, as n_steps = horizon).
    """
    assert len(episodes) == 2 * (updates + 1) * n_envs
    chunks = [episodes[i : i + n_envs] for i in range(0, len(episodes), n_envs)]
    curves: dict[str, list[float]] = {}
    for name, measured in (("mean_action_", chunks[0::2]), ("", chunks[1::2])):
        curves[f"{name}returns"] = [float(np.mean([r for r, _ in c])) for c in measured]
        curves[f"{name}success_rates"] = [
            float(np.mean([d < RADIUS for _, d in c])) for c in measured
        ]
    return curves


def test_success_rates_are_the_fraction_of_the_scored_episodes_that_succeeded():
    rates, mean_action_rates = [], []
    for task in TASKS:
        result, episodes, n_envs = adapt_and_log(ENV_ID, task)
        logged = logged_curves(episodes, n_envs, updates=2)
        # The same episodes as the returns...
        assert result.returns == pytest.approx(logged["returns"], rel=1e-5)
        assert result.mean_action_returns == pytest.approx(logged["mean_action_returns"])
        # ... whose successes give the rates exactly.
        assert result.success_rates == logged["success_rates"]
        assert result.mean_action_success_rates == logged["mean_action_success_rates"]
        assert len(result.success_rates) == len(result.returns) == 3
        rates += result.success_rates
        mean_action_rates += result.mean_action_success_rates
    # Not a vacuous check: some rollouts partly succeeded.
    assert any(0 < rate < 1 for rate in rates), rates
    assert len(set(mean_action_rates)) > 1, mean_action_rates


def test_the_bookkeeping_changes_no_number_and_invents_no_success():
    reported, _, _ = adapt_and_log(ENV_ID, TASKS[0])
    quiet, _, _ = adapt_and_log(QUIET_ID, TASKS[0])
    assert quiet.returns == reported.returns and same(quiet.params, reported.params)
    assert quiet.mean_action_returns == reported.mean_action_returns
    assert quiet.success_rates == [] and quiet.mean_action_success_rates == []
    assert reported.success_rates and reported.mean_action_success_rates


def test_an_episode_without_is_success_makes_the_rate_unmeasured():
    successes = EpisodeSuccesses(2)
    successes({"i": 0, "done": True, "info": {"is_success": 1.0}}, {})
    successes({"i": 1, "done": False, "info": {"is_success": 1.0}}, {})
    assert successes.success_rate() is None  # env 1 finished no episode yet
    successes({"i": 1, "done": True, "info": {"is_success": False}}, {})
    successes({"i": 1, "done": True, "info": {"is_success": True}}, {})  # its second: ignored
    assert successes.success_rate() == 0.5
    quiet = EpisodeSuccesses(2)
    quiet({"i": 0, "done": True, "info": {"is_success": 1.0}}, {})
    quiet({"i": 1, "done": True, "info": {}}, {})
    assert quiet.success_rate() is None
    assert EpisodeReturns(stop_when_complete=True).success_rate() is None  # no rollout yet


def png_width(path) -> int:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">I", data[16:20])[0]


def evaluate_with_cli(env_id: str, folder) -> tuple[list[dict[str, str]], dict, str, int]:
    config = config_of(env_id)
    policy = folder / "meta.safetensors"
    save_policy(policy, PolicyFile(initial_parameters(config, 0), config, "meta"))
    out = folder / "eval"
    EPISODES.clear()
    # The sb3 engine, job after job, so that the logged episodes come in jobs' order.
    args = [*EVAL, "--set", "inner.engine=sb3", "--out", str(out)]
    assert main(["evaluate", str(policy), *args]) == 0
    with (out / "adaptation.csv").open() as file:
        rows = list(csv.DictReader(file))
    summary = json.loads((out / "adaptation.json").read_text())
    return rows, summary, (out / "adaptation.md").read_text(), png_width(out / "adaptation.png")


def test_evaluate_reports_success_rates_in_csv_json_markdown_and_figure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows, summary, markdown, width = evaluate_with_cli(ENV_ID, tmp_path)
    assert list(rows[0]) == [
        *report.KEY_COLUMNS,
        *RETURNS,
        "success_rate",
        "mean_action_success_rate",
    ]
    assert {r["init"] for r in rows} == {"meta", "random"} and len(rows) == 2 * 3 * 3
    # The serial backend adapts init by init, task by task: 4 envs, 2 updates, 24 episodes each.
    per_job = 2 * 3 * 4
    assert len(EPISODES) == 2 * 3 * per_job
    for job, init_and_task in enumerate((i, t) for i in ("meta", "random") for t in range(3)):
        logged = logged_curves(EPISODES[job * per_job : (job + 1) * per_job], 4, updates=2)
        curve = [r for r in rows if (r["init"], int(r["task_id"])) == init_and_task]
        assert [float(r["success_rate"]) for r in curve] == logged["success_rates"]
        rates = [float(r["mean_action_success_rate"]) for r in curve]
        assert rates == logged["mean_action_success_rates"]
    assert set(summary["inits_success"]) == set(summary["inits_mean_action_success"])
    found = set()
    for column, key in (
        ("success_rate", "inits_success"),
        ("mean_action_success_rate", "inits_mean_action_success"),
    ):
        for init, curve in summary[key].items():
            for update, point in enumerate(curve):
                values = [
                    float(r[column])
                    for r in rows
                    if r["init"] == init and int(r["update"]) == update
                ]
                # Each a fraction of 4 episodes; the JSON summarises the CSV's 3 tasks.
                assert len(values) == 3 and all(4 * v == int(4 * v) for v in values)
                expected = summarize(values)
                assert point["update"] == update and point["n"] == 3
                assert point["mean"] == pytest.approx(expected.mean)
                if expected.std > 0:
                    assert point["ci95_low"] == pytest.approx(expected.low)
                    assert point["ci95_high"] == pytest.approx(expected.high)
                found.update(values)
    assert len(found) > 1, found  # the tables are not all zeros (or all ones)
    # The Markdown tables give the JSON's summaries.
    tables = markdown.split("Success rate over tasks", 1)[1]
    stochastic, mean_action = tables.split("Mean-action success rate", 1)
    for table, key in ((stochastic, "inits_success"), (mean_action, "inits_mean_action_success")):
        for init, curve in summary[key].items():
            line = next(x for x in table.splitlines() if x.startswith(f"| {init} |"))
            assert line.split(" | ")[1].startswith(f"{curve[0]['mean']:.2f}")
            assert f"{curve[-1]['mean']:.2f}" in line.split(" | ")[-1]
    # The figure gains a success-rate panel: one panel more than without success.
    quiet_width = evaluate_with_cli(QUIET_ID, tmp_path / "quiet")[3]
    assert width > quiet_width


def test_families_without_success_report_none(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows, summary, markdown, _ = evaluate_with_cli(QUIET_ID, tmp_path)
    assert list(rows[0]) == [*report.KEY_COLUMNS, *RETURNS]
    assert "inits_success" not in summary and "inits_mean_action_success" not in summary
    assert "success rate" not in markdown.lower()  # (the module's name has success_rate)
    policy = tmp_path / "meta.safetensors"
    out = tmp_path / "adapted"
    task = TASKS[0].to_json()
    assert main(["adapt", str(policy), "--task", task, "--updates", "1", "--out", str(out)]) == 0
    assert "success (" not in capsys.readouterr().out
    header = (out / "adaptation.csv").read_text().splitlines()[0]
    assert header.split(",") == [*adaptation_module.KEY_COLUMNS, *RETURNS]


def test_adapt_reports_success_rates(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = config_of(ENV_ID)
    policy = tmp_path / "meta.safetensors"
    save_policy(policy, PolicyFile(initial_parameters(config, 0), config, "meta"))
    task = TASKS[0].to_json()
    out = tmp_path / "adapted"
    args = ["adapt", str(policy), "--task", task, "--updates", "2", "--seed", "4"]
    EPISODES.clear()
    assert main([*args, "--out", str(out)]) == 0
    logged = logged_curves(EPISODES, config.evaluation_inner().n_envs, updates=2)
    printed = capsys.readouterr().out
    with (out / "adaptation.csv").open() as file:
        rows = list(csv.DictReader(file))
    columns = [*adaptation_module.KEY_COLUMNS, *RETURNS, "success_rate", "mean_action_success_rate"]
    assert list(rows[0]) == columns and len(rows) == 3
    # The CSV's rates are those of the episodes the adaptation logged.
    assert [float(r["return"]) for r in rows] == pytest.approx(logged["returns"], rel=1e-5)
    assert [float(r["success_rate"]) for r in rows] == logged["success_rates"]
    assert [float(r["mean_action_success_rate"]) for r in rows] == (
        logged["mean_action_success_rates"]
    )
    # The Python API gives them too.
    adapted = adaptation_module.adapt(policy, TASKS[0], updates=2, seed=4)
    assert adapted.curves["success_rate"] == logged["success_rates"]
    assert adapted.curves["mean_action_success_rate"] == logged["mean_action_success_rates"]
    assert "success (stochastic)" in printed and "success (mean action)" in printed
    for row in rows:
        line = next(x for x in printed.splitlines() if x.split()[:1] == [row["update"]])
        assert line.split()[-2:] == [
            f"{float(row['success_rate']):.2f}",
            f"{float(row['mean_action_success_rate']):.2f}",
        ]


def test_the_lockstep_engine_measures_every_metric_as_the_sb3_engine_does():
    # The default engine measures the mean-action episodes of all its jobs together.
    from reptile_rl.evaluation import evaluate
    from reptile_rl.parallel import SerialBackend

    curves = {}
    for engine in ("lockstep", "sb3"):
        config = tiny_config(
            f"env.id={ENV_ID}",
            "policy.log_std_init=0.0",
            f"inner.engine={engine}",
            "evaluation.tasks=3",
            "evaluation.updates=1",
            "evaluation.episodes=4",
        )
        policy = PolicyFile(initial_parameters(config, 0), config, "meta")
        curves[engine] = evaluate(config, {"meta": policy}, SerialBackend()).curves
    assert curves["lockstep"] == curves["sb3"]
    assert set(curves["sb3"]) == {m.name for m in METRICS}  # success measured, both ways
