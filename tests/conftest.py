"""Shared fixtures: tiny configurations that train in seconds."""

import numpy as np
import pytest
import torch

from reptile_rl.config import Config, config_from_dict, load_config
from reptile_rl.trainer import Trainer

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

# Plain gradient steps, as the presets take them: the only steps whose rate can be learned.
PLAIN = [
    "inner.optimizer=sgd",
    "inner.n_epochs=1",
    "inner.batch_size=null",
    "inner.learning_rate=0.05",
    "inner.max_grad_norm=1000.0",
    "inner.advantage_baseline=linear",
    "outer.exclude=[]",
]


def mean_action_navigation_return(params, goal, activation="tanh") -> float:
    """One Navigation2D episode from the origin, acting on the policy's mean, by hand.

    Independent of SB3 and of the learners: the actor's forward pass (SB3's MlpPolicy: hidden
    layers, then ``action_net``) in NumPy from the state dict, and MAML's point dynamics
    (``point_env_randgoal.py``): move by the action clipped to [-0.1, 0.1], reward minus the
    distance to the goal, done within 0.01 of it on both axes, or after 100 steps.
    """
    act = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}[activation]
    layers = sorted(
        {int(k.split(".")[2]) for k in params if k.startswith("mlp_extractor.policy_net.")}
    )
    position, goal, total = np.zeros(2), np.asarray(goal, dtype=np.float64), 0.0
    for _ in range(100):
        hidden = position.astype(np.float32).astype(np.float64)  # the observation is float32
        for layer in layers:
            weight = params[f"mlp_extractor.policy_net.{layer}.weight"].astype(np.float64)
            hidden = act(weight @ hidden + params[f"mlp_extractor.policy_net.{layer}.bias"])
        action = params["action_net.weight"].astype(np.float64) @ hidden
        action = action + params["action_net.bias"]
        position = position + np.clip(action, -0.1, 0.1)
        total -= float(np.hypot(*(position - goal)))
        if np.all(np.abs(position - goal) < 0.01):
            break
    return total


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    torch.set_num_threads(1)


def theta_on_ray(config: Config, run_dir):
    """Meta-train ``config`` on Ray with 2 workers; return theta (shuts down the Ray it starts)."""
    ray = pytest.importorskip("ray")
    values = config.to_dict()
    values["parallel"].update(backend="ray", workers=2)
    started = not ray.is_initialized()
    try:
        return Trainer(config_from_dict(values), run_dir).learn().theta
    finally:
        if started:  # the Ray this test started, not another test's
            ray.shutdown()


def tiny_config(*overrides: str, preset: str = "navigation") -> Config:
    """The navigation preset shrunk by TINY, then ``overrides``."""
    return load_config(preset, [*TINY, *overrides])
