"""The lockstep engine: a job's result is its own, alone or in any group, and the sb3 engine's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import PLAIN, theta_on_ray, tiny_config

from reptile_rl.envs.navigation import NavigationTask
from reptile_rl.evaluation import evaluate
from reptile_rl.learners import AdaptJob, AdaptResult, LockstepLearner, lockstep, make_learner
from reptile_rl.learners import initial_parameters as initial
from reptile_rl.parallel import SerialBackend, _shares
from reptile_rl.policies import PolicyFile
from reptile_rl.trainer import Trainer

LOCKSTEP = "inner.engine=lockstep"
SB3 = "inner.engine=sb3"  # the reference


def same(a: AdaptResult, b: AdaptResult) -> bool:
    """Bit for bit: the adapted parameters, every return and every measurement."""
    assert a.error is None and b.error is None, (a.error, b.error)
    return (
        a.params.keys() == b.params.keys()
        and all(np.array_equal(a.params[name], b.params[name]) for name in a.params)
        and a.returns == b.returns
        and a.mean_action_returns == b.mean_action_returns
        and a.env_steps == b.env_steps
    )


def jobs(count: int, **settings: object) -> list[AdaptJob]:
    goals = [(0.3, -0.2), (-0.4, 0.1), (0.05, 0.45), (-0.2, -0.3)]
    return [
        AdaptJob(NavigationTask(*goals[i % len(goals)]), seed=11 + i, updates=2, **settings)  # type: ignore[arg-type]
        for i in range(count)
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        [],  # PPO: minibatches shuffled by NumPy, the critic as baseline
        ["inner.algorithm=a2c"],
        ["inner.advantage_baseline=linear", "inner.bootstrap_time_limit=false"],
    ],
)
def test_one_job_alone_gives_the_sb3_engines_bits(overrides: list[str]) -> None:
    config = tiny_config(*overrides)
    theta = initial(config, seed=3)
    (job,) = jobs(1, measure_final=True, measure_mean_action=True)
    reference = make_learner(tiny_config(*overrides, SB3)).adapt(theta, job)
    lockstep = make_learner(tiny_config(*overrides, LOCKSTEP))
    assert isinstance(lockstep, LockstepLearner)
    assert same(lockstep.adapt(theta, job), reference)


def test_a_jobs_result_does_not_depend_on_its_group() -> None:
    config = tiny_config(LOCKSTEP)
    thetas = [initial(config, seed=s) for s in (1, 2, 3)]
    group = jobs(3, measure_final=True, keep_last_step=True, measure_mean_action=True)
    alone = [make_learner(config).adapt(t, job) for t, job in zip(thetas, group, strict=True)]
    learner = make_learner(config)
    assert isinstance(learner, LockstepLearner)
    together = learner.adapt_all(thetas, group)
    assert all(same(a, b) for a, b in zip(together, alone, strict=True))
    # Again on the same learner, in another order: nothing carries over between groups.
    reordered = learner.adapt_all(thetas[::-1], group[::-1])
    assert all(same(a, b) for a, b in zip(reordered, alone[::-1], strict=True))
    # The jobs differ, so the check compares different results.
    assert not np.array_equal(
        together[0].params["action_net.weight"], together[1].params["action_net.weight"]
    )


def test_a_failing_job_fails_alone() -> None:
    config = tiny_config(LOCKSTEP)
    theta = initial(config, seed=1)
    good, other = jobs(2)
    broken = dataclasses.replace(other, task=object())  # type: ignore[arg-type]
    learner = make_learner(config)
    assert isinstance(learner, LockstepLearner)
    results = learner.adapt_all([theta, theta], [good, broken])
    assert results[1].error is not None
    assert same(results[0], make_learner(config).adapt(theta, good))


def test_shares_are_contiguous_and_balanced() -> None:
    assert _shares(10, 2) == [(0, 5), (5, 10)]
    assert _shares(5, 2) == [(0, 2), (2, 5)]
    assert _shares(1, 3) == [(0, 0), (0, 0), (0, 1)]


def test_meta_training_on_lockstep_is_the_same_serial_and_on_ray(tmp_path) -> None:
    config = tiny_config(LOCKSTEP, "outer.meta_batch_size=3")
    serial = Trainer(config, tmp_path / "serial").learn()
    on_ray = theta_on_ray(config, tmp_path / "ray")
    assert serial.theta.keys() == on_ray.keys()
    assert all(np.array_equal(serial.theta[n], on_ray[n]) for n in serial.theta)
    # And the same as the sb3 engine: one worker's group gives each job its own bits.
    reference = Trainer(tiny_config("outer.meta_batch_size=3", SB3), tmp_path / "sb3").learn()
    assert all(np.array_equal(serial.theta[n], reference.theta[n]) for n in serial.theta)


def test_learned_inner_rates_train_as_on_the_sb3_engine(tmp_path) -> None:
    # Meta-SGD's rates and their hypergradient (navigation's preset inner loop, shrunk).
    learned = [*PLAIN, "outer.inner_rates=tensor", "outer.inner_rates_per_update=true"]
    lockstep = Trainer(tiny_config(*learned, LOCKSTEP), tmp_path / "lockstep").learn()
    reference = Trainer(tiny_config(*learned, SB3), tmp_path / "sb3").learn()
    for mine, theirs in (
        (lockstep.theta, reference.theta),
        (lockstep.state.log_rates, reference.state.log_rates),
    ):
        assert mine and mine.keys() == theirs.keys()
        assert all(np.array_equal(mine[n], theirs[n]) for n in mine)


def test_groups_larger_than_the_cap_run_in_turns_with_the_same_results(monkeypatch) -> None:
    config = tiny_config(LOCKSTEP)
    theta = initial(config, seed=1)
    group = jobs(3)
    learner = make_learner(config)
    assert isinstance(learner, LockstepLearner)
    whole = learner.adapt_all([theta] * 3, group)
    monkeypatch.setattr(lockstep, "MAX_GROUP", 2)
    in_turns = learner.adapt_all([theta] * 3, group)
    assert all(same(a, b) for a, b in zip(in_turns, whole, strict=True))


def test_evaluation_on_lockstep_gives_the_sb3_engines_curves() -> None:
    config = tiny_config(LOCKSTEP, "evaluation.tasks=3", "evaluation.updates=1")
    reference_config = tiny_config(SB3, "evaluation.tasks=3", "evaluation.updates=1")
    policy = PolicyFile(initial(config, seed=5), config, "meta")
    backend = SerialBackend()
    curves = evaluate(config, {"meta": policy, "random": None}, backend)
    reference = evaluate(
        reference_config,
        {"meta": PolicyFile(policy.params, reference_config, "meta"), "random": None},
        backend,
    )
    assert curves.curves == reference.curves and "mean_action_return" in curves.curves
