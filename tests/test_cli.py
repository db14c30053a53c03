"""The command line as a new user meets it (issue 21)."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import yaml

from reptile_rl import __version__
from reptile_rl.cli import main
from reptile_rl.config import config_from_dict, load_config
from reptile_rl.families import family_class
from reptile_rl.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def test_config_prints_the_resolved_preset_as_yaml(capsys):
    assert main(["config", "navigation", "--set", "inner.learning_rate=0.1", "--seed", "3"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    expected = load_config("navigation", ["inner.learning_rate=0.1"], seed=3)
    assert config_from_dict(printed) == expected
    assert printed["inner"]["optimizer"] == "sgd"  # the preset's, not the built-in adam


def test_config_errors_are_one_line(capsys):
    assert main(["config", "navigation", "--set", "inner.lr=1"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_train_help_says_presets_change_the_defaults():
    help_text = subprocess.run(
        [sys.executable, "-m", "reptile_rl", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert "reptile-rl config PRESET" in help_text


def test_python_m_and_version():
    result = subprocess.run(
        [sys.executable, "-m", "reptile_rl", "--version"], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0 and result.stdout.strip() == f"reptile-rl {__version__}"
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_finished_run_resumed_touches_nothing_and_can_be_extended(tmp_path, capsys):
    from conftest import TINY

    run = tmp_path / "run"
    tiny = [arg for item in TINY for arg in ("--set", item)]
    assert main(["train", "navigation", "--out", str(run), "--no-progress", *tiny]) == 0
    before = snapshot(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "is finished (2 iterations); nothing to do" in capsys.readouterr().out
    assert snapshot(run) == before
    Trainer.resume(run).learn()  # the Python API: nothing touched either
    assert snapshot(run) == before

    assert main(["train", "--resume", str(run), "--iterations", "2"]) == 2
    assert "the run has done 2 iterations" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--iterations", "4", "--no-progress"]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["outer"]["iterations"] == 4
    progress = (run / "progress.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in progress[1:]] == ["0", "1", "2", "3"]
    # eps: iterations 0-1 as the 2-iteration run had them (1 -> 0), 2-3 as a 4-iteration run.
    eps = [float(row.split(",")[3]) for row in progress[1:]]
    assert eps == pytest.approx([1.0, 0.0, 1 / 3, 0.0])
    assert main(["train", "navigation", "--iterations", "4", *tiny]) == 2


def test_envs_lists_every_family_with_tasks_horizon_metric_and_source(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    ids = sorted(i for i in gym.registry if i.startswith("ReptileRL/"))
    assert len(ids) >= 6
    blocks = out.split("\nReptileRL/")
    assert len(blocks) == len(ids)
    for env_id, block in zip(ids, blocks, strict=True):
        family = family_class(env_id)
        assert env_id.removeprefix("ReptileRL/") in block.splitlines()[0]
        assert f"horizon: {family.horizon} steps" in block
        assert f"metric:  {family.metric}" in block
        assert family.source and f"source:  {family.source}" in block
        assert family.task_type.describe_space() in block
    assert "AntGoalTask: (goal_x, goal_y) in the disk of radius 3.0" in out
    assert "AntVelocityTask: target_velocity in [0.0, 3.0]" in out
