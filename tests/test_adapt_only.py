"""``inner.adapt_only``: ANIL-style adaptation of some parameters only."""

import numpy as np
import pytest

from reptile_rl.config import ConfigError, load_config
from reptile_rl.envs import NavigationTask
from reptile_rl.learners.base import AdaptJob
from reptile_rl.learners.sb3_onpolicy import OnPolicyLearner

HEAD = ["action_net.*", "log_std"]


def adapted_minus_theta(adapt_only: list[str]) -> dict[str, float]:
    config = load_config("navigation", [f"inner.adapt_only={adapt_only!r}", "inner.n_envs=4"])
    learner = OnPolicyLearner(config)
    theta = learner.parameters()
    learner.adapt(theta, AdaptJob(task=NavigationTask(0.3, 0.2), seed=0, updates=2))
    phi = learner.parameters()
    return {name: float(np.abs(phi[name] - theta[name]).max()) for name in theta}


def test_only_the_matched_parameters_move():
    moved = adapted_minus_theta(HEAD)
    assert {name for name, change in moved.items() if change > 0} == {
        "action_net.weight",
        "action_net.bias",
        "log_std",
    }
    # Without the option the body moves too (so the check above is not vacuous).
    everything = adapted_minus_theta([])
    assert everything["mlp_extractor.policy_net.0.weight"] > 0
    assert everything["mlp_extractor.policy_net.2.bias"] > 0


def test_a_bad_regex_is_named_before_any_work():
    with pytest.raises(ConfigError, match=r"evaluation\.inner\.adapt_only\[1\]: invalid regex"):
        load_config("navigation", ["evaluation.inner={adapt_only: ['log_std', '(']}"])
