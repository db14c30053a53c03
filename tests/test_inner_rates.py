"""Meta-learned inner learning rates: Meta-SGD, first order, inside Reptile."""

import numpy as np
import pytest
from conftest import PLAIN, tiny_config

from reptile_rl.adaptation import adapt
from reptile_rl.config import ConfigError
from reptile_rl.envs import NavigationTask
from reptile_rl.learners import AdaptJob, OnPolicyLearner, initial_parameters
from reptile_rl.policies import read_policy_file
from reptile_rl.reptile import initial_log_rates
from reptile_rl.trainer import Trainer

TASK = NavigationTask(0.3, -0.2)


def learned(*extra: str):
    return tiny_config(*PLAIN, "outer.inner_rates=tensor", *extra)


def test_rates_at_the_configured_value_take_the_configured_steps():
    fixed = OnPolicyLearner(tiny_config(*PLAIN))
    rated = OnPolicyLearner(learned())
    theta = initial_parameters(fixed.config, 1)
    rates = initial_log_rates(rated.config, theta)
    assert rates is not None and set(rates) == {f"0/{name}" for name in theta}
    assert all(np.exp(v) == pytest.approx(0.05) for v in rates.values())
    job = AdaptJob(TASK, seed=5, updates=2)
    by_fixed = fixed.adapt(theta, job)
    by_rates = rated.adapt(theta, AdaptJob(TASK, seed=5, updates=2, inner_log_rates=rates))
    for name, value in by_fixed.params.items():
        np.testing.assert_allclose(by_rates.params[name], value, rtol=1e-4, atol=1e-6)
    # Doubling one tensor's rate doubles its first step (a plain gradient step).
    doubled = {**rates, "0/action_net.bias": rates["0/action_net.bias"] + np.log(2.0)}
    one = rated.adapt(theta, AdaptJob(TASK, seed=5, updates=1, inner_log_rates=rates))
    two = rated.adapt(theta, AdaptJob(TASK, seed=5, updates=1, inner_log_rates=doubled))
    step = one.params["action_net.bias"] - theta["action_net.bias"]
    np.testing.assert_allclose(
        two.params["action_net.bias"] - theta["action_net.bias"], 2 * step, rtol=1e-4
    )


def test_the_rate_gradient_has_the_rates_shape_and_measures_the_last_return():
    rated = OnPolicyLearner(learned("outer.inner_rates_per_update=true"))
    theta = initial_parameters(rated.config, 1)
    rates = initial_log_rates(rated.config, theta)
    assert rates is not None and len(rates) == 2 * len(theta)  # two updates, one set each
    job = AdaptJob(TASK, 5, 2, measure_final=True, inner_log_rates=rates, rate_gradient=True)
    result = rated.adapt(theta, job)
    assert result.rate_gradient is not None and set(result.rate_gradient) == set(rates)
    assert all(np.isfinite(v).all() and v.shape == (1,) for v in result.rate_gradient.values())
    assert any(abs(float(v[0])) > 0 for v in result.rate_gradient.values())
    # The gradient pass is also the measurement: 3 returns, and it moved nothing.
    plain = rated.adapt(theta, AdaptJob(TASK, 5, 2, measure_final=True, inner_log_rates=rates))
    assert len(result.returns) == 3 and result.returns[:2] == plain.returns[:2]
    assert all(np.array_equal(result.params[k], plain.params[k]) for k in theta)


def test_training_learns_positive_finite_rates_and_resumes_bit_for_bit(tmp_path):
    config = learned("outer.iterations=3", "checkpoint_every=1", "outer.inner_rates=element")
    reference = Trainer(config, tmp_path / "ref").learn()
    rates = reference.state.log_rates
    assert rates is not None and all(np.isfinite(v).all() for v in rates.values())
    start = initial_log_rates(config, initial_parameters(config, 0))
    assert any(not np.array_equal(rates[k], start[k]) for k in rates)  # learned, not frozen
    # Resumed from iteration 1, the same rates and theta bit for bit.
    (tmp_path / "cut").mkdir()
    for item in ("config.yaml",):
        (tmp_path / "cut" / item).write_text((tmp_path / "ref" / item).read_text())
    (tmp_path / "cut" / "checkpoints").mkdir()
    first = tmp_path / "ref" / "checkpoints" / "iter_000001.safetensors"
    (tmp_path / "cut" / "checkpoints" / "latest.safetensors").write_bytes(first.read_bytes())
    resumed = Trainer.resume(tmp_path / "cut").learn()
    for name in rates:
        np.testing.assert_array_equal(resumed.state.log_rates[name], rates[name])
    for name, value in reference.theta.items():
        np.testing.assert_array_equal(resumed.theta[name], value)
    # The policy files carry the rates: safetensors as tensors, the SB3 zip in its record.
    for policy_file in ("meta_policy.safetensors", "meta_policy.zip"):
        policy = read_policy_file(tmp_path / "ref" / policy_file)
        assert policy.inner_log_rates is not None
        for name in rates:
            np.testing.assert_array_equal(policy.inner_log_rates[name], rates[name])
        assert set(policy.params) == set(reference.theta)
    # adapt uses them: with the learned rates, not the configured ones.
    with_rates = adapt(tmp_path / "ref", TASK, updates=1, episodes=4)
    policy = read_policy_file(tmp_path / "ref" / "meta_policy.safetensors")
    policy.inner_log_rates = None
    without = adapt(policy, TASK, updates=1, episodes=4)
    assert any(
        not np.array_equal(with_rates.policy.params[k], without.policy.params[k])
        for k in without.policy.params
    )


def test_learned_rates_need_plain_gradient_steps():
    with pytest.raises(ConfigError, match=r"outer\.inner_rates: .* needs inner\.optimizer sgd"):
        tiny_config("outer.inner_rates=tensor")  # TINY adapts with Adam
    with pytest.raises(ConfigError, match=r"needs evaluation\.inner\.optimizer sgd"):
        learned("evaluation.inner={optimizer: adam}")
    with pytest.raises(ConfigError, match=r"needs outer\.measure_adapted true"):
        learned("outer.measure_adapted=false")


def test_rates_given_to_a_fixed_rate_learner_are_refused():
    fixed = OnPolicyLearner(tiny_config(*PLAIN))
    theta = initial_parameters(fixed.config, 1)
    rates = initial_log_rates(learned(), theta)
    with pytest.raises(ValueError, match=r"outer\.inner_rates is fixed"):
        fixed.adapt(theta, AdaptJob(TASK, seed=5, updates=1, inner_log_rates=rates))
