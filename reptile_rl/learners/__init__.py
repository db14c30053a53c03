"""Inner learners: what adapts parameters to one task, chosen by ``inner.algorithm``.

:data:`LEARNERS` maps each ``inner.algorithm`` to its :class:`LearnerType`: ``ppo`` (the
default) and ``a2c``, stable-baselines3's on-policy algorithms (:mod:`.sb3_onpolicy`, with the
SB3 internals it touches in :mod:`.sb3_hooks`), and the off-policy ``dqn`` and ``sac``
(:mod:`.sb3_dqn`, :mod:`.sb3_sac`, sharing :mod:`.sb3_offpolicy`). Everything else in the
package goes through the functions below and never imports SB3's algorithms, policies or
callbacks.
"""

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stable_baselines3.common.vec_env import VecEnv

from reptile_rl.config import Config, InnerConfig
from reptile_rl.learners.base import AdaptJob, AdaptResult, Learner, LearnerType, Rollout
from reptile_rl.learners.lockstep import LockstepLearner, build_on_policy
from reptile_rl.learners.sb3_dqn import DQN_LEARNER, DQNLearner
from reptile_rl.learners.sb3_onpolicy import ON_POLICY, OnPolicyLearner, use_one_thread
from reptile_rl.learners.sb3_sac import SAC_LEARNER, SACLearner
from reptile_rl.params import Params

_ON_POLICY = dataclasses.replace(ON_POLICY, build=build_on_policy)  # either engine
LEARNERS: dict[str, LearnerType] = {
    "ppo": _ON_POLICY,
    "a2c": _ON_POLICY,
    "dqn": DQN_LEARNER,
    "sac": SAC_LEARNER,
}
"""``inner.algorithm`` -> its learner type: the one registry of inner algorithms."""

logger = logging.getLogger(__name__)


def make_learner(config: Config, oracle: bool = False, inner: InnerConfig | None = None) -> Learner:
    """Build the learner ``inner.algorithm`` names.

    Args:
        config: The run configuration (env, policy, inner settings).
        oracle: Observe the task (the oracle baseline's env).
        inner: Settings to use instead of ``config.inner`` (evaluation or baseline settings).
    """
    settings = inner or config.inner
    return LEARNERS[settings.algorithm].build(config, oracle, settings)


def adapt_all(
    learner: Learner,
    thetas: Sequence[Params],
    jobs: Sequence[AdaptJob],
    optimizer_state: Params | None = None,
) -> list[AdaptResult]:
    """Adapt ``thetas[i]`` to ``jobs[i]``: together on the lockstep engine, else one by one.

    A job that raises gets its failure as its result; the others go on.
    """
    if isinstance(learner, LockstepLearner):
        return learner.adapt_all(thetas, jobs, optimizer_state)
    results = []
    for theta, job in zip(thetas, jobs, strict=True):
        try:
            results.append(learner.adapt(theta, job, optimizer_state))
        except Exception as error:  # one task's failure must not end the run
            logger.exception("adaptation to %s failed", job.task)
            results.append(AdaptResult.failure(error))
    return results


def initial_parameters(config: Config, seed: int, oracle: bool = False) -> Params:
    """Parameters of a newly initialised policy of ``config``'s learner, drawn from ``seed``."""
    return LEARNERS[config.inner.algorithm].initial_parameters(config, seed, oracle)


def config_from_sb3(path: Path, data: dict[str, Any], base: Config) -> Config:
    """The configuration of a plain SB3 zip of ``base.inner.algorithm`` (see LearnerType)."""
    return LEARNERS[base.inner.algorithm].config_from_sb3(path, data, base)


def sb3_adaptation(
    config: Config,
    inner: InnerConfig,
    params: Params,
    inner_log_rates: Params | None,
    env: VecEnv,
) -> tuple[Any, Any]:
    """An SB3 model on ``env`` and the callback with which its ``learn()`` adapts ``params``."""
    return LEARNERS[inner.algorithm].sb3_adaptation(config, inner, params, inner_log_rates, env)


def sb3_model(config: Config, inner: InnerConfig, params: Params, oracle: bool = False) -> Any:
    """``inner.algorithm``'s SB3 model on a VecEnv of ``config``'s env, holding ``params``."""
    return LEARNERS[inner.algorithm].sb3_model(config, inner, params, oracle)


def theta_of_sb3(config: Config, state: Params) -> Params:
    """The parameters of an SB3 policy's state dict that are theta for ``config``'s learner."""
    return LEARNERS[config.inner.algorithm].theta_of_sb3(state)


__all__ = [
    "LEARNERS",
    "AdaptJob",
    "AdaptResult",
    "DQNLearner",
    "Learner",
    "LearnerType",
    "LockstepLearner",
    "OnPolicyLearner",
    "Rollout",
    "SACLearner",
    "adapt_all",
    "config_from_sb3",
    "initial_parameters",
    "make_learner",
    "sb3_adaptation",
    "sb3_model",
    "theta_of_sb3",
    "use_one_thread",
]
