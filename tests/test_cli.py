"""The command line as a new user meets it."""

import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import yaml

from reptile_rl.cli import main
from reptile_rl.config import config_from_dict, load_config
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
    # The version a user sees is the one pyproject.toml declares.
    declared = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert declared is not None
    assert result.returncode == 0 and result.stdout == f"reptile-rl {declared[1]}\n"
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


CORE_FAMILIES = """\
ReptileRL/AntDir-v0
  tasks:   AntDirectionTask: direction in {-1, 1} (train and test: the whole family)
  horizon: 200 steps
  metric:  return
  source:  MAML (Finn et al. 2017, section 5.3), ant_env_rand_direc.py of cbfinn/maml_rl
ReptileRL/AntGoal-v0
  tasks:   AntGoalTask: (goal_x, goal_y) in the disk of radius 3.0 around the start
  horizon: 200 steps
  metric:  return
  source:  ProMP (Rothfuss et al. 2019), ant_rand_goal.py of jonasrothfuss/ProMP; as PEARL
ReptileRL/AntVel-v0
  tasks:   AntVelocityTask: target_velocity in [0.0, 3.0]
  horizon: 200 steps
  metric:  return
  source:  MAML (Finn et al. 2017, section 5.3), ant_env_rand.py of cbfinn/maml_rl
ReptileRL/GridNavigation-v0
  tasks:   GridGoalTask: goal_x in -5..5, goal_y in -5..5
  horizon: 100 steps
  metric:  return
  source:  MAML's 2D navigation (Finn et al. 2017) on its 0.1 lattice, five discrete moves
ReptileRL/HalfCheetahDir-v0
  tasks:   DirectionTask: direction in {-1, 1} (train and test: the whole family)
  horizon: 200 steps
  metric:  return
  source:  MAML (Finn et al. 2017, section 5.3), half_cheetah_env_rand_direc.py of cbfinn/maml_rl
ReptileRL/HalfCheetahVel-v0
  tasks:   VelocityTask: target_velocity in [0.0, 2.0]
  horizon: 200 steps
  metric:  return
  source:  MAML (Finn et al. 2017, section 5.3), half_cheetah_env_rand.py of cbfinn/maml_rl
"""

ML1_REACH = """\
ReptileRL/ML1-reach-v0 (env_name=reach-v3)
  tasks:   ML1Task: goal in 0..49 (Meta-World's train goals) or 50..99 (its test goals)
  horizon: 500 steps
  metric:  success rate and return
  source:  Meta-World (Yu et al. 2019), ML1 of the metaworld package 3.1.1
"""

NAVIGATION = """\
ReptileRL/Navigation2D-v0
  tasks:   NavigationTask: goal_x in [-0.5, 0.5], goal_y in [-0.5, 0.5]
  horizon: 100 steps
  metric:  return
  source:  MAML (Finn et al. 2017, section 5.3), point_env_randgoal.py of cbfinn/maml_rl
"""


def test_envs_lists_every_family_with_tasks_horizon_metric_and_source(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(CORE_FAMILIES)
    assert ML1_REACH in out  # then, where Meta-World is missing, how to install it
    assert out.endswith(NAVIGATION)
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("ReptileRL/")]
    assert listed == sorted(i for i in gym.registry if i.startswith("ReptileRL/"))
