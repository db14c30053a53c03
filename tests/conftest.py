"""Shared fixtures: tiny configurations that train in seconds."""

import pytest
import torch

from reptile_rl.config import Config, load_config

# Small enough for a test, large enough to exercise every code path (several minibatches,
# several tasks, several inner updates).
TINY = [
    "policy.net_arch=[16, 16]",
    "inner.n_envs=4",
    "inner.updates=2",
    "inner.n_epochs=2",
    "inner.batch_size=100",
    "outer.meta_batch_size=3",
    "outer.iterations=2",
    "parallel.workers=1",
    "parallel.backend=serial",
    "baseline.inner={}",
    # Pinned, so that tests do not follow the preset's tuning (e.g. its plain SGD inner steps
    # have no optimizer state to carry over).
    "inner.optimizer=adam",
    "inner.learning_rate=0.003",
    "inner.update_learning_rates=[]",
    "outer.inner_rates=fixed",
    "outer.inner_rates_per_update=false",
    "outer.inner_rates_learning_rate=0.01",
    "inner.clip_range=3.0",
    "inner.max_grad_norm=0.5",
    "outer.exclude=[log_std]",
    "evaluation.inner={}",
]


# The lowest possible Navigation2D return: the goal is at most 0.5 * sqrt(2) from the start and
# the agent moves at most 0.1 * sqrt(2) per step, so the distance after step t is at most
# 0.5 * sqrt(2) + 0.1 * sqrt(2) * t, summed over 100 steps.
WORST_NAVIGATION_RETURN = -(0.5 * 2**0.5 * 100 + 0.1 * 2**0.5 * sum(range(1, 101)))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    torch.set_num_threads(1)


def tiny_config(*overrides: str, preset: str = "navigation") -> Config:
    """The navigation preset shrunk by TINY, then ``overrides``."""
    return load_config(preset, [*TINY, *overrides])
