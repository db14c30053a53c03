"""Inner learners: what adapts parameters to one task (:class:`Learner`), and how to build one.

``inner.algorithm`` picks the learner: ``ppo`` (the default) or ``a2c``, both
stable-baselines3 on-policy algorithms wrapped by :class:`OnPolicyLearner`. Everything that
touches SB3 internals lives in :mod:`reptile_rl.learners.sb3_hooks`.
"""

from pathlib import Path

from reptile_rl.config import Config, InnerConfig
from reptile_rl.learners.base import AdaptJob, AdaptResult, Learner, Rollout
from reptile_rl.learners.sb3_onpolicy import (
    ALGORITHMS,
    OnPolicyLearner,
    initial_parameters,
    use_one_thread,
)
from reptile_rl.policies import PolicyFile, policy_record


def make_learner(config: Config, oracle: bool = False, inner: InnerConfig | None = None) -> Learner:
    """Build the learner ``inner.algorithm`` names.

    Args:
        config: The run configuration (env, policy, inner settings).
        oracle: Observe the task (the oracle baseline's env).
        inner: Settings to use instead of ``config.inner`` (evaluation or baseline settings).
    """
    # Every algorithm offered today is on-policy; an off-policy learner would branch here.
    return OnPolicyLearner(config, oracle, inner)


def export_policy(
    policy: PolicyFile,
    path: Path,
    config: Config | None = None,
    inner: InnerConfig | None = None,
) -> None:
    """Write a policy as its learner's plain SB3 zip, with its reptile-rl record inside.

    ``PPO.load`` (or ``A2C.load``) opens it; reptile-rl reads it back without unpickling
    (:mod:`reptile_rl.sb3_zip`).

    Args:
        policy: The policy.
        path: The ``.zip`` to write.
        config: The configuration to build the learner from; ``None``: the policy's.
        inner: Learner settings instead of that configuration's ``inner`` (e.g. its evaluation
            settings), saved in the zip as the model's hyperparameters.
    """
    learner = make_learner(config or policy.config, policy.oracle, inner)
    try:
        learner.export(policy.params, path, policy_record(policy))
    finally:
        learner.close()


__all__ = [
    "ALGORITHMS",
    "AdaptJob",
    "AdaptResult",
    "Learner",
    "OnPolicyLearner",
    "Rollout",
    "export_policy",
    "initial_parameters",
    "make_learner",
    "use_one_thread",
]
