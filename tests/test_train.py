"""Meta-training end to end: the run directory, the CLI, and exact resume."""

import csv

import numpy as np
import pytest
import yaml
from conftest import TINY, WORST_NAVIGATION_RETURN, tiny_config
from stable_baselines3 import PPO

from envs import NavigationTask
from reptile_rl import checkpoint
from reptile_rl.cli import main
from reptile_rl.config import config_from_yaml
from reptile_rl.inner import AdaptJob
from reptile_rl.policies import load_policy
from reptile_rl.reptile import Reptile
from reptile_rl.seeding import Stream, derive_seed


def read_progress(run_dir):
    with (run_dir / "progress.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_cli_train_writes_every_artefact(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "navigation", "--out", str(run_dir), "--no-progress", "--seed", "3"]
    for override in TINY:
        args += ["--set", override]
    assert main(args) == 0
    assert str(run_dir) in capsys.readouterr().out

    config = config_from_yaml((run_dir / "config.yaml").read_text(), "config.yaml")
    assert config.seed == 3 and config.outer.iterations == 2 and config.inner.n_envs == 4

    rows = read_progress(run_dir)
    assert list(rows[0]) == [
        "iteration",
        "env_steps",
        "wall_s",
        "eps",
        "return_pre",
        "return_after_1",
        "return_after_2",
        "tasks_dropped",
    ]
    assert [int(r["iteration"]) for r in rows] == [0, 1]
    assert [float(r["eps"]) for r in rows] == [1.0, 0.0]
    steps = [int(r["env_steps"]) for r in rows]
    # 3 tasks x (2 training rollouts of 400 steps + a measurement of at most 400 steps).
    assert 3 * 800 < steps[0] <= 3 * 1200 and steps[1] > steps[0]
    for row in rows:
        assert all(
            WORST_NAVIGATION_RETURN <= float(row[k]) < 0 for k in row if k.startswith("return_")
        )
        assert int(row["tasks_dropped"]) == 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"meta/return_pre", "meta/return_after_2", "meta/eps", "inner/approx_kl"} <= set(tags)
    pre = [e.value for e in events.Scalars("meta/return_pre")]
    assert pre == pytest.approx([float(r["return_pre"]) for r in rows])

    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["iter_000000.safetensors", "iter_000002.safetensors", "latest.safetensors"]
    tensors, record = checkpoint.load(run_dir / "checkpoints" / "latest.safetensors", "checkpoint")
    assert record["iteration"] == 2 and record["env_steps"] == steps[1]

    policy = load_policy(run_dir / "meta_policy.safetensors")
    assert policy.role == "meta" and policy.config == config
    assert_same_params(policy.params, checkpoint.split_prefixed(tensors, "theta/"))

    model = PPO.load(run_dir / "meta_policy.zip", device="cpu")
    loaded = {k: v.numpy() for k, v in model.policy.state_dict().items()}
    assert_same_params(loaded, policy.params)
    action, _ = model.predict(np.zeros(2, dtype=np.float32), deterministic=True)
    assert action.shape == (2,)


def test_training_changes_theta_as_reptile_says(tmp_path):
    # With eps = 1 and one task, theta becomes exactly that task's adapted parameters.
    config = tiny_config("outer.meta_batch_size=1", "outer.iterations=1", "outer.eps_start=1.0")
    reptile = Reptile(config, tmp_path / "run")
    initial = reptile.local_loop.initial_parameters(0)
    reptile.learn()
    theta = reptile.theta
    assert any(not np.array_equal(theta[k], initial[k]) for k in theta)
    assert_same_params(load_policy(tmp_path / "run" / "meta_policy.safetensors").params, theta)


def test_last_step_direction_moves_theta_along_the_last_inner_update(tmp_path):
    # First-order MAML: with eps = 2 and one task, theta moves by twice the last update.
    config = tiny_config(
        "outer.meta_batch_size=1",
        "outer.iterations=1",
        "outer.direction=last_step",
        "outer.eps_start=2.0",
    )
    reptile = Reptile(config, tmp_path / "run")
    initial = reptile.local_loop.initial_parameters(
        derive_seed(config.seed, Stream.INITIAL_PARAMETERS)
    )
    (task,) = NavigationTask.sample(1, seed=derive_seed(config.seed, Stream.TRAIN_TASKS, 0))
    job = AdaptJob(task, derive_seed(config.seed, Stream.ADAPTATION, 0, 0), 2, keep_last_step=True)
    last_step = reptile.local_loop.adapt(initial, job).last_step
    assert last_step is not None
    reptile.learn()
    for name, value in reptile.theta.items():
        moved = name in reptile.meta_learned  # TINY keeps log_std out
        expected = initial[name] + 2.0 * last_step[name] if moved else initial[name]
        np.testing.assert_array_equal(value, expected)
    assert any(np.abs(step).max() > 0 for step in last_step.values())


class InterruptError(Exception):
    pass


@pytest.mark.parametrize(
    "extra",
    [[], ["outer.optimizer=adam", "inner.reset_optimizer=false", "outer.exclude=[log_std]"]],
)
@pytest.mark.parametrize("crash_in", ["meta_step", "save_checkpoint"])
def test_resume_is_bit_identical(tmp_path, monkeypatch, extra, crash_in):
    config = tiny_config("outer.iterations=4", "outer.eps_end=0.2", "checkpoint_every=2", *extra)
    reference = Reptile(config, tmp_path / "reference").learn()

    original = getattr(Reptile, crash_in)
    calls = {"n": 0}

    def crashing(self, *args):
        calls["n"] += 1
        # meta_step: crash in iteration 2. save_checkpoint (call 1 is the initial state):
        # crash while saving iteration 3, after its progress row was written.
        if calls["n"] == 3 if crash_in == "meta_step" else calls["n"] == 4:
            raise InterruptError
        return original(self, *args)

    monkeypatch.setattr(Reptile, crash_in, crashing)
    with pytest.raises(InterruptError):
        Reptile(config, tmp_path / "resumed").learn()
    monkeypatch.setattr(Reptile, crash_in, original)

    resumed = Reptile.resume(tmp_path / "resumed")
    assert resumed.state is not None and resumed.state.iteration == 2
    resumed.learn()
    assert_same_params(resumed.theta, reference.theta)
    rows, reference_rows = (
        read_progress(tmp_path / "resumed"),
        read_progress(tmp_path / "reference"),
    )
    assert [r["iteration"] for r in rows] == ["0", "1", "2", "3"]
    for row, expected in zip(rows, reference_rows, strict=True):
        assert {k: v for k, v in row.items() if k != "wall_s"} == {
            k: v for k, v in expected.items() if k != "wall_s"
        }


def test_cli_resume(tmp_path):
    run_dir = tmp_path / "run"
    Reptile(tiny_config("outer.iterations=1"), run_dir).learn()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert main(["train", "navigation", "--resume", str(run_dir)]) == 2


def test_cli_errors_exit_2_without_traceback(tmp_path, capsys):
    cases = [
        ["train", "navigation", "--set", "inner.n_epochs=0"],
        ["train", "no-such-preset"],
        ["train"],
        ["train", "--resume", str(tmp_path / "missing")],
    ]
    for args in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("reptile-rl: error: ") and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_existing_run_is_never_overwritten(tmp_path):
    run_dir = tmp_path / "run"
    Reptile(tiny_config("outer.iterations=1"), run_dir).learn()
    before = (run_dir / "checkpoints" / "latest.safetensors").read_bytes()
    assert main(["train", "navigation", "--out", str(run_dir)]) == 2
    assert (run_dir / "checkpoints" / "latest.safetensors").read_bytes() == before
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["outer"]["iterations"] == 1


def test_without_the_measurement_rollout(tmp_path):
    config = tiny_config("outer.measure_adapted=false", "outer.iterations=1")
    unmeasured = Reptile(config, tmp_path / "run")
    unmeasured.learn()
    measured = Reptile(tiny_config("outer.iterations=1"), tmp_path / "measured")
    measured.learn()
    # The measurement draws from its own seeds: theta is the same either way.
    assert all(np.array_equal(unmeasured.theta[k], measured.theta[k]) for k in measured.theta)
    (row,) = read_progress(tmp_path / "run")
    assert [k for k in row if k.startswith("return")] == ["return_pre", "return_after_1"]
    # Exactly 3 tasks x 2 training rollouts x 4 envs x 100 steps: no measurement steps.
    assert int(row["env_steps"]) == 2400
