"""The inner learner for stable-baselines3's DQN (Mnih et al. 2015): Reptile off-policy.

What theta holds: the Q-network (``q_net.*`` of SB3's ``DQNPolicy``), all of it meta-learned.
The target network is not part of theta: every task starts it as a copy of the loaded
Q-network, and it is copied again after each update's new experience, so that it stays fixed
during that update's gradient steps (SB3 counts its copy interval in env steps during
collection; the interval is set to one update's experience).

One adaptation (:mod:`.sb3_offpolicy`) explores epsilon-greedily, with the epsilon of each
update (``inner.exploration_rates``); the mean-action return acts greedily.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.dqn.policies import DQNPolicy

from reptile_rl.config import Config, DQNConfig, InnerConfig, check_action_space
from reptile_rl.learners import sb3_hooks
from reptile_rl.learners.base import LearnerType
from reptile_rl.learners.sb3_offpolicy import OffPolicyLearner, config_from_off_policy_zip
from reptile_rl.learners.sb3_onpolicy import use_one_thread
from reptile_rl.params import Params, of_update
from reptile_rl.vec_env import make_vec_env

Q_NET = "q_net."
"""The prefix of theta's tensors in SB3's ``DQNPolicy`` state dict (``q_net_target.`` is not)."""
_ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def dqn_settings(config: Config, inner: InnerConfig | None = None) -> DQNConfig:
    """``inner`` (default ``config.inner``), which must be DQN's settings."""
    settings = inner or config.inner
    if not isinstance(settings, DQNConfig):
        raise TypeError(f"the DQN learner needs dqn settings, got {settings.algorithm}")
    return settings


def dqn_kwargs(config: Config, inner: DQNConfig) -> dict[str, Any]:
    """Keyword arguments of SB3's ``DQN`` for these settings (policy, one update, CPU)."""
    horizon = config.horizon()
    rollout = inner.rollout_size(horizon)
    return {
        "learning_rate": inner.learning_rate,
        # The experience of updates + 1 rollouts: an adaptation keeps all of it (a longer one,
        # evaluation.updates above inner.updates, keeps its most recent).
        "buffer_size": rollout * (inner.updates + 1),
        "learning_starts": 0,
        "batch_size": inner.batch_size,
        "tau": 1.0,
        "gamma": inner.gamma,
        "train_freq": (inner.n_steps or horizon, "step"),
        "gradient_steps": inner.gradient_steps,
        "target_update_interval": rollout,
        "exploration_initial_eps": inner.exploration_rates[0],
        "exploration_final_eps": inner.exploration_rates[0],
        "max_grad_norm": inner.max_grad_norm,
        "policy_kwargs": {
            "net_arch": list(config.policy.net_arch),
            "activation_fn": _ACTIVATIONS[config.policy.activation],
            "optimizer_class": _OPTIMIZERS[inner.optimizer],
            "optimizer_kwargs": {"eps": 1e-5, "foreach": True} if inner.optimizer == "adam" else {},
        },
        "device": "cpu",
        "verbose": 0,
    }


def build_model(config: Config, oracle: bool = False, inner: InnerConfig | None = None) -> DQN:
    """SB3's DQN for ``config`` on a VecEnv of its env, with a silent logger."""
    settings = dqn_settings(config, inner)
    env = make_vec_env(config.env.id, config.env.kwargs, settings.n_envs, oracle)
    model = DQN("MlpPolicy", env, **dqn_kwargs(config, settings))
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def theta_of_state(state: Mapping[str, Any]) -> Params:
    """The Q-network's entries (theta) of a ``DQNPolicy`` state dict, as arrays."""
    return {
        name: value.detach().cpu().numpy().copy()
        if isinstance(value, torch.Tensor)
        else np.array(value)
        for name, value in state.items()
        if name.startswith(Q_NET)
    }


def q_network(model: DQN) -> Params:
    """The Q-network's parameters (theta), as arrays."""
    return theta_of_state(model.policy.state_dict())


def load_q_network(model: DQN, params: Params) -> None:
    """Load theta into the Q-network and copy it into the target network."""
    state = {name: torch.tensor(value) for name, value in params.items()}
    target = {"q_net_target." + name.removeprefix(Q_NET): value for name, value in state.items()}
    model.policy.load_state_dict({**state, **target})


def initial_parameters(config: Config, seed: int, oracle: bool = False) -> Params:
    """The Q-network of a newly initialised DQN policy (SB3's initialisation), from ``seed``.

    Builds only the policy (on a one-env copy of the env for its spaces), not a whole learner.
    """
    use_one_thread()
    settings = dqn_settings(config)
    env = make_vec_env(config.env.id, config.env.kwargs, 1, oracle)
    try:
        check_action_space(config, env.action_space)
        assert isinstance(env.action_space, gym.spaces.Discrete)  # as the check makes sure
        torch.manual_seed(seed)
        policy = DQNPolicy(
            env.observation_space,
            env.action_space,
            sb3_hooks.ConstantRate(0.0),
            **dqn_kwargs(config, settings)["policy_kwargs"],
        )
    finally:
        env.close()
    return theta_of_state(policy.state_dict())


class DQNLearner(OffPolicyLearner[DQN]):
    """One worker's reusable DQN: adapts given Q-networks to given tasks.

    Implements :class:`reptile_rl.learners.Learner` (the adaptation:
    :class:`.sb3_offpolicy.OffPolicyLearner`).

    Args:
        config: The run configuration (env, policy and inner settings).
        oracle: Observe the task (for evaluating the oracle baseline).
        inner: Settings to use instead of ``config.inner`` (e.g. evaluation settings).
    """

    inner: DQNConfig

    def __init__(self, config: Config, oracle: bool = False, inner: InnerConfig | None = None):
        use_one_thread()
        self.inner = dqn_settings(config, inner)
        super().__init__(config, oracle, build_model(config, oracle, self.inner))

    def parameters(self) -> Params:
        """The current Q-network."""
        return q_network(self.model)

    def load(self, params: Params) -> None:
        """Load a Q-network (and its copy as the target network)."""
        load_q_network(self.model, params)

    def _fresh_state(self, optimizer_state: Params | None) -> None:
        """Target copies counted from zero; a new optimizer (``optimizer_state`` if given)."""
        sb3_hooks.restart_target_copies(self.model)
        sb3_hooks.fresh_q_optimizer(self.model, self.inner.learning_rate, optimizer_state)

    def _explore(self, index: int) -> None:
        """Update ``index``'s epsilon (``inner.exploration_rates``, the last repeating)."""
        sb3_hooks.set_exploration_rate(self.model, of_update(self.inner.exploration_rates, index))


def config_from_sb3(path: Path, data: Mapping[str, Any], base: Config) -> Config:
    """The configuration of a plain SB3 DQN zip: ``base`` with the zip's network and settings.

    Raises:
        CheckpointError: If the zip's data is not DQN's, or its network is not one reptile-rl
            builds.
    """
    return config_from_off_policy_zip(
        path,
        data,
        base,
        ("target_update_interval", "exploration_fraction"),
        "a Q-network",
        ("gamma", "max_grad_norm", "batch_size", "gradient_steps"),
    )


def sb3_adaptation(
    config: Config,
    inner: InnerConfig,
    params: Params,
    inner_log_rates: Params | None,
    env: VecEnv,
) -> tuple[DQN, CallbackList]:
    """A DQN on ``env`` holding ``params``, and the callback to adapt with.

    ``model.learn(K * model.train_freq.frequency * env.num_envs, callback=callback)`` then runs
    K updates as :meth:`DQNLearner.adapt` does: each update's experience at its exploration
    rate, then its gradient steps at its learning rate (the buffer is the model's, fresh).
    """
    if inner_log_rates is not None:
        raise ValueError("meta-learned inner rates need an on-policy learner's plain steps")
    settings = dqn_settings(config, inner)
    model = DQN("MlpPolicy", env, **dqn_kwargs(config, settings))
    load_q_network(model, params)
    rates = list(settings.update_learning_rates) or [settings.learning_rate]
    callbacks: list[BaseCallback] = [
        sb3_hooks.PerUpdateRates(rates),
        sb3_hooks.PerUpdateExploration(list(settings.exploration_rates)),
    ]
    return model, CallbackList(callbacks)


def sb3_model(config: Config, inner: InnerConfig, params: Params, oracle: bool = False) -> DQN:
    """SB3's DQN with ``inner`` as its settings on a VecEnv of ``config``'s env, with ``params``."""
    model = build_model(config, oracle, inner)
    load_q_network(model, params)
    return model


DQN_LEARNER = LearnerType(
    build=DQNLearner,
    initial_parameters=initial_parameters,
    config_from_sb3=config_from_sb3,
    sb3_adaptation=sb3_adaptation,
    sb3_model=sb3_model,
    theta_of_sb3=theta_of_state,
)
"""SB3's DQN as an inner learner type."""
