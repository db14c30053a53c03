"""Evaluation end to end: baselines, adaptation curves, outputs and bad input."""

import csv
import json
import struct
import zlib

import numpy as np
import pytest
from conftest import mean_action_navigation_return, tiny_config

from reptile_rl.cli import main
from reptile_rl.envs import NavigationTask
from reptile_rl.evaluation import Evaluation
from reptile_rl.policies import read_policy_file
from reptile_rl.pretrain import Pretrainer
from reptile_rl.report import to_markdown
from reptile_rl.trainer import Trainer

EVAL = ["--tasks", "3", "--updates", "2", "--episodes", "4"]
TEST_TASKS = NavigationTask.split_list("test", 2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny meta-training run with its pretrained and oracle baselines."""
    root = tmp_path_factory.mktemp("runs")
    Trainer(tiny_config(), root / "meta").learn()
    Pretrainer(tiny_config("baseline.env_steps=1200"), False, root / "pre").learn()
    Pretrainer(tiny_config("baseline.env_steps=1200"), True, root / "orc").learn()
    return root


def assert_valid_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert width > 400 and height > 300
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]  # header intact
    assert data[-8:-4] == b"IEND"


def test_baseline_log_std_init_is_the_policy_built_with_that_noise(tmp_path):
    # One rollout of 400 steps: 8 Adam steps of 0.003 move log_std by at most about 0.03.
    budget, inherit = "baseline.env_steps=400", "baseline.log_std_init=null"
    inheriting = tiny_config(budget, inherit)  # null: the policy's own log_std_init
    own = Pretrainer(inheriting, False, tmp_path / "own").learn().params
    assert abs(own["log_std"] - inheriting.policy.log_std_init).max() < 0.1
    wider = tiny_config(budget, "baseline.log_std_init=-1.0")
    params = Pretrainer(wider, False, tmp_path / "wider").learn().params
    assert abs(params["log_std"] + 1.0).max() < 0.1
    # The same training as a policy whose own log_std_init is -1.0: bit for bit.
    built = tiny_config(budget, inherit, "policy.log_std_init=-1.0")
    reference = Pretrainer(built, False, tmp_path / "built").learn().params
    assert all(np.array_equal(params[name], reference[name]) for name in reference)


def test_baseline_runs(runs):
    for folder, role, obs in (("pre", "pretrained", 2), ("orc", "oracle", 4)):
        policy = read_policy_file(runs / folder / f"{role}_policy.safetensors")
        assert policy.role == role and policy.oracle == (role == "oracle")
        assert policy.params["mlp_extractor.policy_net.0.weight"].shape == (16, obs)
        with (runs / folder / "progress.csv").open() as file:
            rows = list(csv.DictReader(file))
        # 1200 steps in rollouts of 4 envs x 100 steps.
        assert [int(r["rollout"]) for r in rows] == [0, 1, 2]
        assert int(rows[-1]["env_steps"]) == 1200
        assert (runs / folder / f"{role}_policy.zip").is_file()


def test_evaluate_writes_csv_json_md_png(runs, tmp_path, capsys):
    out = tmp_path / "eval"
    args = [
        "evaluate",
        str(runs / "meta"),
        "--pretrained",
        str(runs / "pre"),
        "--oracle",
        str(runs / "orc"),
        "--out",
        str(out),
        *EVAL,
    ]
    assert main(args) == 0
    assert "| meta |" in capsys.readouterr().out

    with (out / "adaptation.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == [
        "init",
        "task_id",
        "task",
        "update",
        "env_steps",
        "return",
        "mean_action_return",
    ]
    counts = {init: sum(r["init"] == init for r in rows) for init in {r["init"] for r in rows}}
    # 3 tasks x updates 0..2 per adapted init; the oracle is measured once per task.
    assert counts == {"meta": 9, "pretrained": 9, "random": 9, "oracle": 3}
    meta_rows = [r for r in rows if r["init"] == "meta"]
    assert [int(r["env_steps"]) for r in meta_rows[:3]] == [0, 400, 800]
    assert json.loads(meta_rows[0]["task"])["family"] == "navigation2d"
    assert len({r["task"] for r in rows}) == 3  # every init saw the same held-out tasks
    # Known answers: before adapting, each init's mean-action return is its policy's
    # episode on that task, recomputed by hand from the policy file.
    for init, policy_file in (
        ("meta", runs / "meta" / "meta_policy.safetensors"),
        ("pretrained", runs / "pre" / "pretrained_policy.safetensors"),
    ):
        params = read_policy_file(policy_file).params
        before = [r for r in rows if r["init"] == init and r["update"] == "0"]
        assert len(before) == 3
        for row in before:
            task = json.loads(row["task"])
            expected = mean_action_navigation_return(params, (task["goal_x"], task["goal_y"]))
            assert float(row["mean_action_return"]) == pytest.approx(expected, rel=1e-5)
    assert any(r["mean_action_return"] != r["return"] for r in rows)

    summary = json.loads((out / "adaptation.json").read_text())
    assert summary["tasks"] == 3 and summary["episodes_per_update"] == 4
    meta = summary["inits"]["meta"]
    assert [p["update"] for p in meta] == [0, 1, 2]
    first = [float(r["return"]) for r in meta_rows if r["update"] == "0"]
    assert meta[0]["mean"] == pytest.approx(sum(first) / 3)
    assert meta[0]["n"] == 3 and meta[0]["ci95_low"] < meta[0]["mean"] < meta[0]["ci95_high"]
    assert set(summary["normalized_scores"]) == {"meta", "pretrained", "random"}
    assert summary["normalized_scores"]["pretrained"][0] == pytest.approx(0.0, abs=1e-9)

    mean_action = summary["inits_mean_action"]["meta"]
    firsts = [float(r["mean_action_return"]) for r in meta_rows if r["update"] == "0"]
    assert mean_action[0]["mean"] == pytest.approx(sum(firsts) / 3)

    markdown = (out / "adaptation.md").read_text()
    assert "MAML" in markdown and "-11.68" in markdown and "Mean-action return" in markdown
    assert_valid_png(out / "adaptation.png")


def test_evaluation_is_deterministic_and_seed_dependent(runs, tmp_path):
    base = ["evaluate", str(runs / "meta"), "--inits", "meta", *EVAL]
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        assert main([*base, "--seed", seed, "--out", str(tmp_path / name)]) == 0
    read = lambda name: (tmp_path / name / "adaptation.csv").read_text()  # noqa: E731
    assert read("a") == read("b")
    assert read("a") != read("c")


def test_evaluate_accepts_a_checkpoint_file(runs, tmp_path):
    latest = runs / "meta" / "checkpoints" / "latest.safetensors"
    args = ["evaluate", str(latest), "--inits", "meta", "--out", str(tmp_path / "e"), *EVAL]
    assert main(args) == 0
    assert (tmp_path / "e" / "adaptation.json").is_file()


def test_plot_command(runs, tmp_path):
    assert main(["plot", str(runs / "meta"), "--out", str(tmp_path / "t.png")]) == 0
    assert_valid_png(tmp_path / "t.png")
    assert main(["plot", str(tmp_path)]) == 2


def bad_cases(runs, tmp_path):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes((runs / "meta" / "meta_policy.safetensors").read_bytes()[:300])
    other_arch = tmp_path / "other"
    Trainer(tiny_config("policy.net_arch=[8]", "outer.iterations=1"), other_arch).learn()
    return {
        "missing run": [str(tmp_path / "nope")],
        "truncated checkpoint": [str(truncated)],
        "unknown init": [str(runs / "meta"), "--inits", "meta,best"],
        "zero tasks": [str(runs / "meta"), "--tasks", "0"],
        "other architecture": [
            str(runs / "meta"),
            "--pretrained",
            str(other_arch / "meta_policy.safetensors"),
        ],
        "oracle as pretrained": [
            str(runs / "meta"),
            "--pretrained",
            str(runs / "orc" / "oracle_policy.safetensors"),
        ],
        "missing baseline": [str(runs / "meta"), "--inits", "meta,oracle"],
        "bad override": [str(runs / "meta"), "--set", "evaluation.inner={n_epochs: 0}"],
    }


def test_bad_input_is_one_line_exit_2(runs, tmp_path, capsys):
    expected = {
        "missing run": "no such run directory",
        "truncated checkpoint": "truncated",
        "unknown init": "unknown init 'best'",
        "zero tasks": "evaluation.tasks: Input should be greater than or equal to 1, got int 0",
        "other architecture": "do not fit this env/architecture",
        "oracle as pretrained": "an oracle policy given as the pretrained init",
        "missing baseline": "the oracle init needs --oracle PATH",
        "bad override": "evaluation.inner.n_epochs: Input should be greater than or equal to 1",
    }
    for name, args in bad_cases(runs, tmp_path).items():
        assert main(["evaluate", *args, "--out", str(tmp_path / "x")]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("reptile-rl: error: "), name
        assert expected[name] in err, (name, err)
        assert len(err.strip().splitlines()) == 1, name
    assert not (tmp_path / "x").exists()


def test_markdown_table_known_answer():
    config = tiny_config("evaluation.updates=1", "evaluation.episodes=4")
    returns = {"meta": [[-10.0, -4.0], [-20.0, -6.0]]}
    evaluation = Evaluation(config, TEST_TASKS[:2], {"return": returns}, 400)
    table = to_markdown(evaluation)
    # n = 2: half width = t(0.975, 1) * std / sqrt(2) = 12.7062 * 7.0711 / 1.4142 = 63.53.
    assert "| meta | -15.00 [-78.53, 48.53] | -5.00 [-17.71, 7.71] |" in table


def test_paired_differences_known_answer():
    # Two tasks; meta beats pretrained by 2 and 4 after one update: mean 3, std sqrt(2),
    # half width t(0.975, 1) * sqrt(2) / sqrt(2) = 12.7062.
    config = tiny_config("evaluation.updates=1")
    returns = {
        "meta": [[-10.0, -4.0], [-20.0, -6.0]],
        "pretrained": [[-11.0, -6.0], [-19.0, -10.0]],
        "oracle": [[-1.0], [-2.0]],
    }
    evaluation = Evaluation(config, TEST_TASKS[:2], {"return": returns}, 400)
    (curve,) = evaluation.paired_differences().values()
    assert [s.mean for s in curve] == [0.0, 3.0]
    assert curve[1].low == pytest.approx(3.0 - 12.7062, abs=1e-3)
    assert "| meta - pretrained | 0.00 [" in to_markdown(evaluation)
    assert "oracle" not in evaluation.paired_differences()


def test_one_task_tables_say_n_1_not_nan():
    config = tiny_config("evaluation.updates=1", "evaluation.episodes=4")
    returns = {"meta": [[-10.0, -4.0]], "random": [[-9.0, -8.0]]}
    evaluation = Evaluation(config, TEST_TASKS[:1], {"return": returns}, 400)
    table = to_markdown(evaluation)
    assert "| meta | -10.00 (n=1) | -4.00 (n=1) |" in table
    assert "| meta - random | -1.00 (n=1) | 4.00 (n=1) |" in table
    assert "nan" not in table


def test_training_curves_are_smoothed_after_the_first_iteration():
    from reptile_rl.plotting import _smoothed

    assert _smoothed([1.0, 2.0, 3.0, 4.0], 2) == [1.0, 1.5, 2.5, 3.5]
    assert _smoothed([5.0], 3) == [5.0]


def test_tasks_of_the_train_split_are_not_called_held_out():
    config = tiny_config("evaluation.updates=0")
    train = NavigationTask.split_list("train", 1)
    assert Evaluation(config, TEST_TASKS, {}, 400).describe_tasks() == "2 held-out tasks"
    returns = {"meta": [[-1.0], [-2.0]]}
    mixed = Evaluation(config, [*TEST_TASKS[:1], *train], {"return": returns}, 400)
    assert mixed.describe_tasks() == "2 tasks (1 of the train split, not held out)"
    assert "held-out" not in to_markdown(mixed).splitlines()[0]


def test_tasks_in_groups_are_also_summarised_per_group():
    from reptile_rl.envs import ML10Task

    config = tiny_config("evaluation.updates=1")
    tasks = [ML10Task(10, 0), ML10Task(10, 1), ML10Task(11, 0)]
    returns = {"meta": [[1.0, 3.0], [3.0, 5.0], [10.0, 20.0]]}
    evaluation = Evaluation(config, tasks, {"return": returns}, 400)
    assert evaluation.groups() == [ML10Task(10, 0).group, ML10Task(11, 0).group]
    first, second = evaluation.groups()
    assert [s.mean for s in evaluation.group_summaries(first)["meta"]] == [2.0, 4.0]
    assert [s.n for s in evaluation.group_summaries(second)["meta"]] == [1, 1]
    table = to_markdown(evaluation)
    assert f"| meta, {first} | 2.00 [" in table and f"| meta, {second} | 10.00 (n=1) |" in table
    # One group, or tasks without groups: no per-group tables.
    single = Evaluation(config, tasks[:2], {"return": {"meta": returns["meta"][:2]}}, 400)
    assert single.groups() == [] and "Per group" not in to_markdown(single)
