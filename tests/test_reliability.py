"""Reliability and security: crashes, full disks, failing tasks, bad input, hostile files.

The bad-input cases are a table (BAD_INPUT): add a row for every new way a user can go wrong.
"""

import errno
import json
import logging
import os
import pickle
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, tiny_config

from reptile_rl import checkpoint
from reptile_rl.cli import main
from reptile_rl.learners import AdaptResult, OnPolicyLearner
from reptile_rl.reptile import TrainingError
from reptile_rl.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def set_args(overrides):
    return [arg for override in overrides for arg in ("--set", override)]


# -- bad input: one line, exit code 2, no traceback ----------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny trained run plus hostile and broken files next to it."""
    root = tmp_path_factory.mktemp("files")
    Trainer(tiny_config("outer.iterations=1"), root / "run").learn()
    good = (root / "run" / "meta_policy.safetensors").read_bytes()
    (root / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[-10] ^= 0xFF
    (root / "flipped.safetensors").write_bytes(bytes(flipped))
    (root / "broken.yaml").write_text("inner:\n  n_epochs: [1,\n")
    (root / "typed.yaml").write_text("inner:\n  n_epochs: ten\n")
    (root / "far.json").write_text(
        json.dumps([{"family": "navigation2d", "goal_x": 0.9, "goal_y": 0}])
    )
    (root / "nan.json").write_text('[{"family": "navigation2d", "goal_x": NaN, "goal_y": 0}]')
    (root / "cheetah.json").write_text(
        json.dumps([{"family": "half_cheetah_vel", "target_velocity": 1}])
    )
    cheetah = tiny_config(
        "env.id=ReptileRL/HalfCheetahVel-v0",
        "outer.iterations=1",
        "outer.meta_batch_size=2",
        "inner.updates=1",
    )
    Trainer(cheetah, root / "cheetah").learn()
    return root


BAD_INPUT = [
    # (name, command line with {root} for the fixture folder, text the error must contain)
    (
        "unknown env id",
        ["train", "navigation", "--set", "env.id=Nope-v0"],
        "env.id: unknown env id 'Nope-v0'",
    ),
    (
        "not a task family",
        ["train", "navigation", "--set", "env.id=CartPole-v1"],
        "is not a task family",
    ),
    ("unknown preset", ["train", "navigaton"], "unknown preset or file 'navigaton'"),
    ("YAML syntax", ["train", "{root}/broken.yaml"], "invalid YAML (line"),
    (
        "YAML type",
        ["train", "{root}/typed.yaml"],
        "inner.n_epochs: Input should be a valid integer, got str 'ten'",
    ),
    (
        "zero envs",
        ["train", "navigation", "--set", "inner.n_envs=0"],
        "inner.n_envs: Input should be greater than or equal to 1, got int 0",
    ),
    (
        "zero meta-batch",
        ["train", "navigation", "--set", "outer.meta_batch_size=0"],
        "outer.meta_batch_size: Input should be greater than or equal to 1",
    ),
    (
        "zero iterations",
        ["train", "navigation", "--set", "outer.iterations=0"],
        "outer.iterations: Input should be greater than or equal to 1",
    ),
    (
        "negative rate",
        ["train", "navigation", "--set", "inner.learning_rate=-0.1"],
        "inner.learning_rate: Input should be greater than 0",
    ),
    (
        "zero rate in a per-update schedule",
        ["train", "navigation", "--set", "inner.update_learning_rates=[0.1, 0]"],
        "inner.update_learning_rates[1]: Input should be greater than 0",
    ),
    (
        "a log_std rate scale Adam would ignore",
        ["train", "navigation", "--set", "inner.log_std_lr_scale=10"],
        "baseline.inner.log_std_lr_scale: must be 0 or 1 with the adam optimizer",
    ),
    (
        "negative eps",
        ["train", "navigation", "--set", "outer.eps_start=-1"],
        "outer.eps_start: Input should be greater than or equal to 0",
    ),
    (
        "eps above 1 for Reptile's interpolation",
        ["train", "navigation", "--set", "outer.eps_end=2"],
        "outer.eps_end: must be in [0.0, 1.0] with outer.direction reptile",
    ),
    ("unknown key", ["train", "navigation", "--set", "outer.step=1"], "outer.step: unknown key"),
    (
        "unwritable output",
        ["train", "navigation", "--out", "{root}/far.json/run"],
        "--out: cannot write to",
    ),
    ("resume nothing", ["train", "--resume", "{root}/missing"], "holds no run"),
    (
        "task out of range",
        ["evaluate", "{root}/run", "--task-file", "{root}/far.json"],
        "task 0: NavigationTask.goal_x must be a finite number in [-0.5, 0.5], got 0.9",
    ),
    (
        "task NaN",
        ["evaluate", "{root}/run", "--task-file", "{root}/nan.json"],
        "goal_x must be a finite number in [-0.5, 0.5], got nan",
    ),
    (
        "task of another family",
        ["evaluate", "{root}/run", "--task-file", "{root}/cheetah.json"],
        "task must be a NavigationTask",
    ),
    (
        "checkpoint of another env",
        ["evaluate", "{root}/run", "--pretrained", "{root}/cheetah/meta_policy.safetensors"],
        "a policy for ReptileRL/HalfCheetahVel-v0, not ReptileRL/Navigation2D-v0",
    ),
    (
        "truncated checkpoint",
        ["evaluate", "{root}/truncated.safetensors"],
        "not a reptile-rl file or truncated",
    ),
    (
        "corrupt checkpoint",
        ["evaluate", "{root}/flipped.safetensors"],
        "corrupt (checksum mismatch)",
    ),
    (
        "zero tasks",
        ["evaluate", "{root}/run", "--tasks", "0"],
        "evaluation.tasks: Input should be greater than or equal to 1, got int 0",
    ),
    ("unknown init", ["evaluate", "{root}/run", "--inits", "meta,maml"], "unknown init 'maml'"),
]


@pytest.mark.parametrize(
    ("name", "args", "message"), BAD_INPUT, ids=[case[0] for case in BAD_INPUT]
)
def test_bad_input(files, capsys, name, args, message):
    argv = [arg.format(root=files) for arg in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("reptile-rl: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_resume_refuses_a_checkpoint_of_another_configuration(files, tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(tiny_config("outer.iterations=1"), run).learn()
    other = files / "cheetah" / "checkpoints" / "latest.safetensors"
    (run / "checkpoints" / "latest.safetensors").write_bytes(other.read_bytes())
    for path in (run / "checkpoints").glob("iter_*"):
        path.unlink()
    assert main(["train", "--resume", str(run)]) == 2
    assert "written by a different configuration" in capsys.readouterr().err


# -- hostile files: never unpickled ---------------------------------------------------------


class Payload:
    """Unpickling this runs a command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payloads_are_rejected_without_running(files, tmp_path, capsys):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Payload(marker))
    import torch

    torch_file = tmp_path / "theta.pt"
    torch.save({"theta": Payload(marker)}, torch_file)
    run = tmp_path / "run"
    Trainer(tiny_config("outer.iterations=1"), run).learn()
    for path in [run / "checkpoints" / "latest.safetensors", *(run / "checkpoints").glob("iter_*")]:
        path.write_bytes(payload)
    (run / "meta_policy.safetensors").write_bytes(torch_file.read_bytes())
    assert main(["train", "--resume", str(run)]) == 2
    assert "no usable checkpoint" in capsys.readouterr().err
    assert main(["evaluate", str(run)]) == 2
    assert main(["evaluate", str(torch_file)]) == 2
    capsys.readouterr()
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load(torch_file)
    assert not marker.exists()
    pickle.loads(payload)  # the payload is live: it would have created the marker
    assert marker.exists()


def test_a_saved_file_is_a_pure_function_of_its_contents(tmp_path):
    # safetensors writes its metadata keys in hash-map order: 20 plain saves of one file gave
    # 2 different byte strings.
    tensors = {"log_std": np.full(2, -3.0, np.float32), "w": np.arange(6.0).reshape(2, 3)}
    path = tmp_path / "policy.safetensors"
    files = set()
    for _ in range(20):
        checkpoint.save(path, tensors, {"kind": "policy", "note": "é/\n"})
        files.add(path.read_bytes())
    assert len(files) == 1
    loaded, record = checkpoint.load(path, kind="policy")
    assert record["note"] == "é/\n" and np.array_equal(loaded["w"], tensors["w"])


# -- faults during training -----------------------------------------------------------------


def test_write_failure_keeps_the_previous_checkpoint(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    real = checkpoint.atomic_write_bytes
    calls = {"n": 0}

    def full_disk(path, data):
        calls["n"] += path.name == "latest.safetensors"
        if calls["n"] >= 3 and path.name == "latest.safetensors":  # the write of iteration 2
            handle = path.with_name(".latest.partial")
            handle.write_bytes(data[:100])
            handle.unlink()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", full_disk)
    args = [
        "train",
        "navigation",
        "--out",
        str(run),
        "--no-progress",
        *set_args(TINY),
        "--set",
        "outer.iterations=3",
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "cannot write checkpoint" in err and "No space left on device" in err
    assert "previous checkpoint is intact" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", real)
    _, record = checkpoint.load(run / "checkpoints" / "latest.safetensors", "checkpoint")
    assert record["state"]["iteration"] == 1
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    _, record = checkpoint.load(run / "checkpoints" / "latest.safetensors", "checkpoint")
    assert record["state"]["iteration"] == 3


# The sb3 engine's learner adapts job by job through OnPolicyLearner.adapt, which these tests
# patch; the lockstep engine isolates a failing job itself (tests/test_lockstep.py).
SB3 = "inner.engine=sb3"


def failing_adapt(fail, batch_size=6, real=OnPolicyLearner.adapt):
    """An OnPolicyLearner.adapt that misbehaves for the task indices in ``fail`` of every batch.

    The serial backend adapts the tasks of a meta-batch in order, so a call counter gives the
    task's index in its batch.
    """
    calls = {"n": 0}

    def adapt(self, theta, job, optimizer_state=None):
        result = real(self, theta, job, optimizer_state)
        index = calls["n"] % batch_size
        calls["n"] += 1
        if index in fail:
            if fail[index] == "raise":
                raise RuntimeError("simulated simulator crash")
            result.params = {k: np.full_like(v, np.nan) for k, v in result.params.items()}
        return result

    return adapt


def test_failed_and_non_finite_tasks_are_dropped(tmp_path, monkeypatch, caplog):
    config = tiny_config(SB3, "outer.meta_batch_size=6", "outer.iterations=2")
    monkeypatch.setattr(OnPolicyLearner, "adapt", failing_adapt({0: "nan"}))
    with caplog.at_level(logging.WARNING):
        reptile = Trainer(config, tmp_path / "run").learn()
    assert all(np.isfinite(v).all() for v in reptile.theta.values())
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped and "non-finite parameters" in dropped[0].getMessage()
    rows = (tmp_path / "run" / "progress.csv").read_text().splitlines()[1:]
    assert sum(int(row.split(",")[-1]) for row in rows) == len(dropped)


def test_a_task_that_raises_is_dropped_with_its_error(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(OnPolicyLearner, "adapt", failing_adapt({1: "raise"}))
    with caplog.at_level(logging.WARNING):
        Trainer(tiny_config(SB3, "outer.meta_batch_size=6"), tmp_path / "run").learn()
    assert any("simulated simulator crash" in r.getMessage() for r in caplog.records)


def test_a_mostly_failing_batch_stops_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(OnPolicyLearner, "adapt", failing_adapt({0: "raise", 1: "nan", 2: "raise"}))
    with pytest.raises(TrainingError, match="adaptations failed"):
        Trainer(tiny_config(SB3, "outer.meta_batch_size=6"), tmp_path / "run").learn()
    args = [
        "train",
        "navigation",
        "--out",
        str(tmp_path / "cli"),
        "--no-progress",
        *set_args([*TINY, SB3, "outer.meta_batch_size=6"]),
    ]
    assert main(args) == 1
    assert "stopping instead of training on garbage" in capsys.readouterr().err
    _, record = checkpoint.load(tmp_path / "cli" / "checkpoints" / "latest.safetensors")
    assert record["state"]["iteration"] == 0  # the initial state, intact


def test_adapt_result_failure_carries_the_message():
    result = AdaptResult.failure(ValueError("boom"))
    assert result.error == "ValueError: boom" and result.params == {}


# -- SIGKILL at random points -----------------------------------------------------------------

# Runs the CLI in a child process; with SLOW_WRITES set, the real atomic writer pauses while
# writing iteration 2's latest checkpoint: its temporary file is cut to half (as a crash
# mid-write leaves it) before the fsync that precedes the rename, a marker file appears, and
# the parent kills the child there.
CHILD = textwrap.dedent(
    r"""
    import os, sys, time
    from pathlib import Path
    from reptile_rl.cli import main

    if os.environ.get("SLOW_WRITES"):
        real_fsync = os.fsync
        marker = Path(os.environ["SLOW_WRITES"])

        def slow_fsync(fd):
            name = os.readlink(f"/proc/self/fd/{fd}")
            if ".latest.safetensors." in name and name.endswith(".tmp"):
                data = Path(name).read_bytes()
                # The record is JSON inside the JSON header, hence the escaped quotes.
                if b'iteration\\": 2,' in data:
                    os.ftruncate(fd, len(data) // 2)
                    marker.touch()
                    time.sleep(60)
            real_fsync(fd)

        os.fsync = slow_fsync
    sys.exit(main(sys.argv[1:]))
    """
)


def run_child(args, env=None):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def theta_of(run):
    tensors, _ = checkpoint.load(run / "checkpoints" / "latest.safetensors", "checkpoint")
    return checkpoint.split_prefixed(tensors, "theta/")


KILL_CONFIG = [*TINY, "outer.iterations=5", "checkpoint_every=2"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    Trainer(tiny_config("outer.iterations=5", "checkpoint_every=2"), run).learn()
    return theta_of(run)


def assert_same(a, b):
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_sigkill_during_a_checkpoint_write(tmp_path, uninterrupted):
    run = tmp_path / "run"
    marker = tmp_path / "writing"
    child = run_child(
        ["train", "navigation", "--out", str(run), "--no-progress", *set_args(KILL_CONFIG)],
        env={"SLOW_WRITES": str(marker)},
    )
    deadline = time.time() + 120
    while not marker.exists():
        assert child.poll() is None, child.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    # Killed inside the real writer: its half-written temporary file is left behind...
    (partial,) = (run / "checkpoints").glob(".latest.safetensors.*.tmp")
    latest = run / "checkpoints" / "latest.safetensors"
    assert 0 < partial.stat().st_size < latest.stat().st_size
    # ...and never replaced the complete checkpoint of iteration 1.
    _, record = checkpoint.load(latest, "checkpoint")
    assert record["state"]["iteration"] == 1
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert_same(theta_of(run), uninterrupted)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path, uninterrupted):
    run = tmp_path / "run"
    rng = random.Random(1234)
    args = ["train", "navigation", "--out", str(run), "--no-progress", *set_args(KILL_CONFIG)]
    kills = 0
    while True:
        child = run_child(args)
        try:
            child.wait(timeout=rng.uniform(3.0, 9.0))  # imports take ~3 s: kill anywhere after
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.wait()
            kills += 1
        if child.returncode == 0:
            break
        latest = run / "checkpoints" / "latest.safetensors"
        if latest.exists():
            checkpoint.load(latest, "checkpoint")  # never corrupt
            args = ["train", "--resume", str(run), "--no-progress"]
        else:  # killed before the first checkpoint: start over
            import shutil

            shutil.rmtree(run, ignore_errors=True)
        assert kills < 30
    assert kills >= 1
    assert_same(theta_of(run), uninterrupted)


def test_written_files_follow_the_umask(tmp_path):
    # Like open(): a new file gets 0666 minus the umask (mkstemp alone gives 0600), and a
    # rewrite keeps that mode.
    from reptile_rl import atomic

    mask = os.umask(0o022)
    os.umask(mask)
    path = tmp_path / "file.txt"
    atomic.atomic_write_text(path, "one")
    atomic.atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
