"""The inner learner for stable-baselines3's SAC (Haarnoja et al. 2018): Reptile off-policy.

What theta holds, and so what Reptile interpolates: the actor (``actor.*`` of SB3's
``SACPolicy``: its hidden layers and the heads of the mean and of the log standard deviation),
the two critics (``critic.*``) and, with ``ent_coef: auto``, the log entropy coefficient
(``log_ent_coef``). All of them shape what an adaptation does from its first step: the actor
acts, the critics judge the first updates' actions, the coefficient weighs exploration. The
target critics are not part of theta: every task starts them as copies of the loaded critics
(a target lags its critic, and at a task's start there is no lag to keep), and they follow the
critics by Polyak averaging (``tau``) during the adaptation's gradient steps.

The replay buffer is fresh for every task (an adaptation learns from its own experience only,
as the DQN learner's does); the optimizers of the actor, the critics and the coefficient are
fresh for every task too. One adaptation (:mod:`.sb3_offpolicy`) collects each update's
``n_envs`` episodes with the actor's stochastic actions; the mean-action return acts on the
actor's deterministic action.

Why no lockstep engine: an update's time goes to its gradient steps on the buffer (one
minibatch each for the critics, the actor and the coefficient), which a batched rollout does
not touch (``benchmarks/sac_cost.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.sac.policies import SACPolicy

from reptile_rl.config import Config, InnerConfig, SACConfig, check_action_space
from reptile_rl.learners import sb3_hooks
from reptile_rl.learners.base import LearnerType
from reptile_rl.learners.sb3_offpolicy import OffPolicyLearner, config_from_off_policy_zip
from reptile_rl.learners.sb3_onpolicy import use_one_thread
from reptile_rl.params import Params
from reptile_rl.vec_env import make_vec_env

THETA_PREFIXES = ("actor.", "critic.")
"""The prefixes of theta's tensors in SB3's ``SACPolicy`` state dict (``critic_target.`` is not)."""
LOG_ENT_COEF = "log_ent_coef"
"""Theta's name of SAC's log entropy coefficient (SB3 keeps it beside the policy, and in a
zip's ``pytorch_variables.pth``)."""
_ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def sac_settings(config: Config, inner: InnerConfig | None = None) -> SACConfig:
    """``inner`` (default ``config.inner``), which must be SAC's settings."""
    settings = inner or config.inner
    if not isinstance(settings, SACConfig):
        raise TypeError(f"the SAC learner needs sac settings, got {settings.algorithm}")
    return settings


def _policy_kwargs(config: Config, inner: SACConfig) -> dict[str, Any]:
    return {
        "net_arch": list(config.policy.net_arch),
        "activation_fn": _ACTIVATIONS[config.policy.activation],
        "optimizer_class": _OPTIMIZERS[inner.optimizer],
        # SB3's SAC keeps torch's Adam epsilon; the multi-tensor kernels give the same bits
        # with fewer calls (as for the other learners).
        "optimizer_kwargs": {"foreach": True} if inner.optimizer == "adam" else {},
    }


def sac_kwargs(config: Config, inner: SACConfig) -> dict[str, Any]:
    """Keyword arguments of SB3's ``SAC`` for these settings (policy, one update, CPU)."""
    horizon = config.horizon()
    rollout = inner.rollout_size(horizon)
    return {
        "learning_rate": inner.learning_rate,
        # The experience of updates + 1 rollouts: an adaptation keeps all of it (a longer one,
        # evaluation.updates above inner.updates, keeps its most recent).
        "buffer_size": rollout * (inner.updates + 1),
        "learning_starts": 0,
        "batch_size": inner.batch_size,
        "tau": inner.tau,
        "gamma": inner.gamma,
        "train_freq": (inner.n_steps or horizon, "step"),
        "gradient_steps": inner.gradient_steps,
        "ent_coef": f"auto_{inner.ent_coef_init}" if inner.ent_coef == "auto" else inner.ent_coef,
        "target_update_interval": 1,
        "policy_kwargs": _policy_kwargs(config, inner),
        "device": "cpu",
        "verbose": 0,
    }


def build_model(config: Config, oracle: bool = False, inner: InnerConfig | None = None) -> SAC:
    """SB3's SAC for ``config`` on a VecEnv of its env, with a silent logger."""
    settings = sac_settings(config, inner)
    env = make_vec_env(config.env.id, config.env.kwargs, settings.n_envs, oracle)
    model = SAC("MlpPolicy", env, **sac_kwargs(config, settings))
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def theta_of_state(state: Mapping[str, Any]) -> Params:
    """Theta's entries of a ``SACPolicy`` state dict (with ``log_ent_coef`` if given), as arrays."""
    return {
        name: value.detach().cpu().numpy().copy()
        if isinstance(value, torch.Tensor)
        else np.array(value)
        for name, value in state.items()
        if name.startswith(THETA_PREFIXES) or name == LOG_ENT_COEF
    }


def sac_parameters(model: SAC) -> Params:
    """Theta's current values: actor, critics and (if learned) the log entropy coefficient."""
    state: dict[str, Any] = dict(model.policy.state_dict())
    if model.log_ent_coef is not None:
        state[LOG_ENT_COEF] = model.log_ent_coef
    return theta_of_state(state)


def load_sac(model: SAC, params: Params) -> None:
    """Load theta; copy the critics into the target critics.

    Raises:
        ValueError: If ``params`` lacks the log entropy coefficient this model learns, or has
            one it does not.
    """
    if (LOG_ENT_COEF in params) != (model.log_ent_coef is not None):
        raise ValueError(
            f"{LOG_ENT_COEF}: the parameters and inner.ent_coef disagree on whether the entropy "
            "coefficient is learned"
        )
    state = {name: torch.tensor(value) for name, value in params.items() if name != LOG_ENT_COEF}
    targets = {
        "critic_target." + name.removeprefix("critic."): value
        for name, value in state.items()
        if name.startswith("critic.")
    }
    model.policy.load_state_dict({**state, **targets})
    if model.log_ent_coef is not None:
        with torch.no_grad():
            model.log_ent_coef.copy_(torch.as_tensor(params[LOG_ENT_COEF]))


def fresh_optimizers(model: SAC, learning_rate: float) -> None:
    """New optimizers of the actor, the critics and the entropy coefficient, as SAC builds them."""
    policy = model.policy
    for network in (policy.actor, policy.critic):
        network.optimizer = policy.optimizer_class(
            network.parameters(),
            lr=learning_rate,  # type: ignore[call-arg]
            **policy.optimizer_kwargs,
        )
    if model.log_ent_coef is not None:
        model.ent_coef_optimizer = torch.optim.Adam([model.log_ent_coef], lr=learning_rate)


def initial_parameters(config: Config, seed: int, oracle: bool = False) -> Params:
    """Theta of a newly initialised SAC (SB3's initialisation), drawn from ``seed``.

    Builds only the policy (on a one-env copy of the env for its spaces), not a whole learner;
    the log entropy coefficient starts at ``log(inner.ent_coef_init)``, as SAC starts it.
    """
    use_one_thread()
    settings = sac_settings(config)
    env = make_vec_env(config.env.id, config.env.kwargs, 1, oracle)
    try:
        check_action_space(config, env.action_space)
        assert isinstance(env.action_space, gym.spaces.Box)  # as the check makes sure
        torch.manual_seed(seed)
        policy = SACPolicy(
            env.observation_space,
            env.action_space,
            sb3_hooks.ConstantRate(0.0),
            **_policy_kwargs(config, settings),
        )
    finally:
        env.close()
    state: dict[str, Any] = dict(policy.state_dict())
    if settings.ent_coef == "auto":
        state[LOG_ENT_COEF] = torch.log(torch.ones(1) * settings.ent_coef_init)  # SAC's own
    return theta_of_state(state)


class SACLearner(OffPolicyLearner[SAC]):
    """One worker's reusable SAC: adapts given actors and critics to given tasks.

    Implements :class:`reptile_rl.learners.Learner` (the adaptation:
    :class:`.sb3_offpolicy.OffPolicyLearner`).

    Args:
        config: The run configuration (env, policy and inner settings).
        oracle: Observe the task (for evaluating the oracle baseline).
        inner: Settings to use instead of ``config.inner`` (e.g. evaluation settings).
    """

    inner: SACConfig

    def __init__(self, config: Config, oracle: bool = False, inner: InnerConfig | None = None):
        use_one_thread()
        self.inner = sac_settings(config, inner)
        super().__init__(config, oracle, build_model(config, oracle, self.inner))

    def parameters(self) -> Params:
        """The current actor, critics and log entropy coefficient."""
        return sac_parameters(self.model)

    def load(self, params: Params) -> None:
        """Load theta (the critics' copies as the target critics)."""
        load_sac(self.model, params)

    def _fresh_state(self, optimizer_state: Params | None) -> None:
        """New optimizers (SAC's settings refuse carrying them between tasks)."""
        assert optimizer_state is None
        fresh_optimizers(self.model, self.inner.learning_rate)


def config_from_sb3(path: Path, data: Mapping[str, Any], base: Config) -> Config:
    """The configuration of a plain SB3 SAC zip: ``base`` with the zip's network and settings.

    Raises:
        CheckpointError: If the zip's data is not SAC's, or its network is not one reptile-rl
            builds.
    """
    return config_from_off_policy_zip(
        path,
        data,
        base,
        ("target_entropy", "tau"),
        "a SAC policy",
        ("gamma", "batch_size", "gradient_steps", "tau"),
    )


def sb3_adaptation(
    config: Config,
    inner: InnerConfig,
    params: Params,
    inner_log_rates: Params | None,
    env: VecEnv,
) -> tuple[SAC, BaseCallback]:
    """A SAC on ``env`` holding ``params``, and the callback to adapt with.

    ``model.learn(K * model.train_freq.frequency * env.num_envs, callback=callback)`` then runs
    K updates as :meth:`SACLearner.adapt` does: each update's experience, then its gradient
    steps at its learning rate (the buffer is the model's, fresh).
    """
    if inner_log_rates is not None:
        raise ValueError("meta-learned inner rates need an on-policy learner's plain steps")
    settings = sac_settings(config, inner)
    model = SAC("MlpPolicy", env, **sac_kwargs(config, settings))
    load_sac(model, params)
    rates = list(settings.update_learning_rates) or [settings.learning_rate]
    return model, sb3_hooks.PerUpdateRates(rates)


def sb3_model(config: Config, inner: InnerConfig, params: Params, oracle: bool = False) -> SAC:
    """SB3's SAC with ``inner`` as its settings on a VecEnv of ``config``'s env, with ``params``."""
    model = build_model(config, oracle, inner)
    load_sac(model, params)
    return model


SAC_LEARNER = LearnerType(
    build=SACLearner,
    initial_parameters=initial_parameters,
    config_from_sb3=config_from_sb3,
    sb3_adaptation=sb3_adaptation,
    sb3_model=sb3_model,
    theta_of_sb3=theta_of_state,
)
"""SB3's SAC as an inner learner type."""
