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
]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    torch.set_num_threads(1)


def tiny_config(*overrides: str, preset: str = "navigation") -> Config:
    """The navigation preset shrunk by TINY, then ``overrides``."""
    return load_config(preset, [*TINY, *overrides])
