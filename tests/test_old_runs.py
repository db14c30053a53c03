"""Runs written by an earlier commit still resume, evaluate and load.

``data/run-made-at-ff9cf02`` is a tiny run (2 iterations) made at commit ff9cf02, before the
learner registry and the configuration library: its ``config.yaml``, checkpoint, policy file
and SB3 zip are as that commit wrote them.
"""

import json
import shutil
from pathlib import Path

import numpy as np

from reptile_rl import environment
from reptile_rl.cli import main
from reptile_rl.policies import read_policy_file
from reptile_rl.rundir import RunDir
from reptile_rl.trainer import Trainer

OLD_RUN = Path(__file__).parent / "data" / "run-made-at-ff9cf02"


def test_an_old_run_resumes_to_more_iterations(tmp_path):
    run_dir = tmp_path / "old"
    shutil.copytree(OLD_RUN, run_dir)
    resumed = Trainer.resume(run_dir, iterations=3).learn()
    assert resumed.finished() and resumed.state is not None and resumed.state.iteration == 3
    made_with = json.loads((OLD_RUN / "environment.json").read_text())
    if environment.differences(made_with) == []:  # the install it was made with: same bits
        # The same made today: 2 iterations, then extended (the first two keep their eps).
        config = RunDir(OLD_RUN).read_config()
        Trainer(config, tmp_path / "today").learn()
        reference = Trainer.resume(tmp_path / "today", iterations=3).learn()
        for name, value in reference.theta.items():
            assert np.array_equal(resumed.theta[name], value), name


def test_an_old_run_evaluates(tmp_path):
    run_dir = tmp_path / "old"
    shutil.copytree(OLD_RUN, run_dir)
    args = ["evaluate", str(run_dir), "--tasks", "2", "--updates", "1", "--episodes", "4"]
    assert main(args) == 0
    rows = (run_dir / "eval" / "adaptation.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * 2  # header; meta and random, 2 tasks, updates 0 and 1


def test_an_old_policy_file_and_zip_load_alike():
    from_file = read_policy_file(OLD_RUN / "meta_policy.safetensors")
    from_zip = read_policy_file(OLD_RUN / "meta_policy.zip")
    assert from_file.config == from_zip.config and from_file.role == from_zip.role == "meta"
    assert from_file.params.keys() == from_zip.params.keys()
    for name, value in from_file.params.items():
        assert np.array_equal(from_zip.params[name], value), name
