"""Every run records the software and machine it was made with, and says when they differ."""

import json
import logging
import platform
import zipfile

import mujoco
import numpy as np
import pytest
import torch
from conftest import tiny_config

from reptile_rl import checkpoint, environment
from reptile_rl.cli import main
from reptile_rl.trainer import Trainer

HERE = {
    "python": "3.11.7",
    "cpu": "AMD EPYC",
    "packages": {"mujoco": "4.0.1", "torch": "2.13.0", "ray": None},
}


def test_describe_names_the_versions_cpu_threads_and_commit():
    made = environment.describe()
    assert made["python"] == platform.python_version()
    assert made["packages"]["mujoco"] == mujoco.__version__
    assert made["packages"]["numpy"] == np.__version__
    assert made["packages"]["torch"] == torch.__version__
    assert set(made["packages"]) == set(environment.PACKAGES)
    assert made["cpu"] and made["torch_threads"] == torch.get_num_threads()
    assert made["blas_threads"] is None or made["blas_threads"] >= 1
    # Run from this checkout: its commit, 40 hex digits (and +dirty with local changes).
    assert made["commit"] is not None and len(made["commit"].removesuffix("+dirty")) == 40


def test_differences_known_answers():
    assert environment.differences(HERE, HERE) == []
    assert environment.differences({}, HERE) == []  # nothing recorded: nothing to say
    other = {
        "python": "3.12.1",
        "cpu": "Intel Xeon",
        "packages": {"mujoco": "3.3.0", "torch": "2.13.0", "ray": "2.60.0"},
        "torch_threads": 8,  # threads and commits are recorded, not compared
        "commit": "0" * 40,
    }
    assert environment.differences(other, HERE) == [
        "python '3.12.1' (here '3.11.7')",
        "cpu 'Intel Xeon' (here 'AMD EPYC')",
        "mujoco 3.3.0 (here 4.0.1)",
        "ray 2.60.0 (here not installed)",
    ]


def with_other_mujoco(made: dict) -> dict:
    return {**made, "packages": {**made["packages"], "mujoco": "3.3.0"}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("env") / "run"
    Trainer(tiny_config("outer.iterations=1"), folder).learn()
    return folder


def test_the_run_directory_policy_file_and_zip_record_it(run_dir):
    here = environment.describe()
    recorded = json.loads((run_dir / "environment.json").read_text())
    assert recorded["packages"] == here["packages"] and recorded["cpu"] == here["cpu"]
    _, record = checkpoint.load(run_dir / "meta_policy.safetensors")
    assert record["environment"]["packages"] == here["packages"]
    _, record = checkpoint.load(run_dir / "checkpoints" / "latest.safetensors")
    assert record["environment"]["packages"] == here["packages"]
    with zipfile.ZipFile(run_dir / "meta_policy.zip") as archive:
        assert "system_info.txt" in archive.namelist()  # SB3's own record stays
        ours = json.loads(archive.read("reptile_rl.json"))
    assert ours["environment"]["packages"] == here["packages"]


def test_resuming_a_run_made_with_another_mujoco_warns_once_and_finishes(run_dir, caplog):
    made = json.loads((run_dir / "environment.json").read_text())
    (run_dir / "environment.json").write_text(json.dumps(with_other_mujoco(made)))
    with caplog.at_level(logging.WARNING):
        trainer = Trainer.resume(run_dir, iterations=2).learn()
    assert trainer.finished() and trainer.state is not None and trainer.state.iteration == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"resuming: run {run_dir} was made with other software or another CPU: mujoco 3.3.0 "
        f"(here {mujoco.__version__}); its numbers may differ from a run made here in their "
        "last bits"
    ]


def test_evaluating_a_policy_made_with_another_mujoco_warns(run_dir, tmp_path, caplog):
    policy_file = run_dir / "meta_policy.safetensors"
    tensors, record = checkpoint.load(policy_file)
    record["environment"] = with_other_mujoco(record["environment"])
    checkpoint.save(policy_file, tensors, record)
    args = ["evaluate", str(run_dir), "--tasks", "1", "--updates", "0", "--episodes", "2"]
    with caplog.at_level(logging.WARNING):
        assert main([*args, "--out", str(tmp_path / "eval")]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"evaluating: the meta policy ({policy_file}) was made with other software or another "
        f"CPU: mujoco 3.3.0 (here {mujoco.__version__}); its numbers may differ from a run made "
        "here in their last bits"
    ]
    summary = json.loads((tmp_path / "eval" / "adaptation.json").read_text())
    assert summary["environment"]["packages"]["mujoco"] == mujoco.__version__
