"""Inner learners: what adapts parameters to one task (:class:`Learner`), and how to build one.

``inner.algorithm`` picks the learner: ``ppo`` (the default) or ``a2c``, both
stable-baselines3 on-policy algorithms wrapped by :class:`OnPolicyLearner`. Everything that
touches SB3 internals lives in :mod:`reptile_rl.learners.sb3_hooks`.
"""

from reptile_rl.config import Config, InnerConfig
from reptile_rl.learners.base import AdaptJob, AdaptResult, Learner, Rollout
from reptile_rl.learners.sb3_onpolicy import (
    ALGORITHMS,
    OnPolicyLearner,
    initial_parameters,
    use_one_torch_thread,
)


def make_learner(config: Config, oracle: bool = False, inner: InnerConfig | None = None) -> Learner:
    """Build the learner ``inner.algorithm`` names.

    Args:
        config: The run configuration (env, policy, inner settings).
        oracle: Observe the task (the oracle baseline's env).
        inner: Settings to use instead of ``config.inner`` (evaluation or baseline settings).
    """
    # Every algorithm offered today is on-policy; an off-policy learner would branch here.
    return OnPolicyLearner(config, oracle, inner)


__all__ = [
    "ALGORITHMS",
    "AdaptJob",
    "AdaptResult",
    "Learner",
    "OnPolicyLearner",
    "Rollout",
    "initial_parameters",
    "make_learner",
    "use_one_torch_thread",
]
