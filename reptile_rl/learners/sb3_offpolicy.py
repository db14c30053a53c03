"""What SB3's off-policy inner learners (DQN, SAC) share: an adaptation on a task's own buffer.

What one adaptation does (``K = job.updates``)::

    set the task on every sub-env; seed python, numpy, torch and the envs from job.seed
    load theta (and its target copies); fresh optimizer state (by default);
    an empty replay buffer: each task learns from its own experience only
    repeat K times:   reset the envs; n_envs episodes (update k's exploration) into the
                      buffer; then gradient_steps steps on minibatches of it
    optionally:       one more episode per env, the last update's exploration, no training

``returns[k]`` is the mean return of update ``k``'s episodes (the first episode of each
sub-env), the policy after ``k`` updates; the mean-action return acts deterministically. Each
learner says what theta is, how it is loaded, and what its optimizers and exploration are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from reptile_rl.checkpoint import CheckpointError
from reptile_rl.config import Config
from reptile_rl.envs.base import Task
from reptile_rl.learners import sb3_hooks
from reptile_rl.learners.base import AdaptJob, AdaptResult, Rollout
from reptile_rl.learners.sb3_base import SB3Learner, architecture_from_sb3, config_of_zip
from reptile_rl.params import Params, subtract

OffPolicyT = TypeVar("OffPolicyT", bound=OffPolicyAlgorithm)


class OffPolicyLearner(SB3Learner[OffPolicyT]):
    """One worker's reusable SB3 off-policy model: adapts given parameters to given tasks.

    Implements :class:`reptile_rl.learners.Learner` with the learner's :meth:`parameters`,
    :meth:`load`, :meth:`_fresh_state` and (where it explores by a schedule) :meth:`_explore`.
    The learner sets ``inner``, its settings, before calling this constructor.

    Args:
        config: The run configuration (env, policy and inner settings).
        oracle: Observe the task (for evaluating the oracle baseline).
        model: The SB3 model built for them.
    """

    def __init__(self, config: Config, oracle: bool, model: OffPolicyT):
        super().__init__(config, oracle, model)
        self._adapt_only(self.inner.adapt_only)
        self.rollout_size = self.inner.rollout_size(config.horizon())
        self._training = sb3_hooks.EpisodeReturns(stop_when_complete=False)
        self._measuring = sb3_hooks.EpisodeReturns(stop_when_complete=True)

    def parameters(self) -> Params:
        """Theta's current values."""
        raise NotImplementedError

    def load(self, params: Params) -> None:
        """Load theta (and set the target networks from it)."""
        raise NotImplementedError

    def _fresh_state(self, optimizer_state: Params | None) -> None:
        """A task's new optimizers (``optimizer_state`` loaded where given) and target counts."""
        raise NotImplementedError

    def _explore(self, index: int) -> None:
        """Set the exploration of update ``index``'s experience (none to set by default)."""

    def _start_task(self, optimizer_state: Params | None) -> None:
        """A fresh replay buffer, then the learner's fresh optimizers and target counts."""
        assert self.model.replay_buffer is not None
        self.model.replay_buffer.reset()
        self._fresh_state(None if self.inner.reset_optimizer else optimizer_state)

    def adapt(
        self, theta: Params, job: AdaptJob, optimizer_state: Params | None = None
    ) -> AdaptResult:
        """Adapt ``theta`` to ``job.task`` with ``job.updates`` updates.

        The result depends only on the arguments and the configuration.
        """
        if job.inner_log_rates is not None or job.rate_gradient:
            raise ValueError("meta-learned inner rates need an on-policy learner's plain steps")
        self.seed(job.seed)
        if job.measure_mean_action:
            self._ensure_mean_action_env()
        self.set_tasks(job.task)
        self.load(theta)
        self._start_task(optimizer_state)
        rollouts: list[Rollout] = []
        mean_action: list[float] = []
        before_last = None
        for k in range(job.updates + 1):
            if job.measure_mean_action:
                mean_action.append(self.measure_mean_action(job.seed))
            if k == job.updates:
                break
            if job.keep_last_step and k == job.updates - 1:
                before_last = self.parameters()
            rollouts.append(self.update(self.learning_rate_of_update(k), k))
        adapted = self.parameters()
        if job.measure_final:
            rollouts.append(self.measure(job.updates))
        return AdaptResult(
            params=adapted,
            returns=[r.mean_return for r in rollouts],
            env_steps=sum(r.env_steps for r in rollouts),
            learn_seconds=sum(r.seconds for r in rollouts),
            train_stats=[r.train_stats for r in rollouts if r.train_stats],
            optimizer_state=None
            if self.inner.reset_optimizer
            else sb3_hooks.optimizer_state(self.model),
            last_step=None if before_last is None else subtract(adapted, before_last),
            mean_action_returns=mean_action,
        )

    def update(self, learning_rate: float | None = None, index: int = 0) -> Rollout:
        """One update: ``n_envs`` new episodes into the buffer, then the gradient steps.

        Args:
            learning_rate: This update's learning rate; ``None``: ``inner.learning_rate``.
            index: Which update of the adaptation it is (its exploration).
        """
        rate = self.inner.learning_rate if learning_rate is None else learning_rate
        sb3_hooks.set_learning_rate(self.model, rate)
        self._explore(index)
        return self._rollout(self._training, self.rollout_size, training=True)

    def measure(self, index: int) -> Rollout:
        """One episode per env with update ``index``'s exploration; no training."""
        self._explore(index)
        return self._rollout(self._measuring, self.rollout_size, training=False)

    def train_on(self, tasks: list[Task]) -> Rollout:
        """One step of multi-task training: an update on ``tasks``, keeping the buffer.

        Multi-task training (the baselines) learns from its recent experience: the buffer
        (``updates + 1`` rollouts) and the target-copy count carry over between steps, and
        exploration stays at the first update's.
        """
        self.set_tasks(tasks)
        return self.update()


def config_from_off_policy_zip(
    path: Path,
    data: Mapping[str, Any],
    base: Config,
    marks: tuple[str, str],
    network: str,
    settings: tuple[str, ...],
) -> Config:
    """The configuration of a plain SB3 zip of ``base.inner.algorithm`` (DQN or SAC).

    ``base`` with the zip's network (ReLU where it names no activation: SB3's default for
    both) and the numeric ``settings`` its JSON holds.

    Args:
        path: The zip, for messages.
        data: SB3's ``data`` JSON.
        base: The configuration the zip is to be used with.
        marks: Two keys only this algorithm's data holds.
        network: What the network is called in messages ("a Q-network").
        settings: Inner settings to copy where the data holds a number for them.

    Raises:
        CheckpointError: If the data lacks the marks, or the network is not one reptile-rl
            builds.
    """
    algorithm = base.inner.algorithm.upper()
    if not all(key in data for key in marks):
        raise CheckpointError(
            f"{path}: SB3's data lacks {algorithm}'s {marks[0]} and {marks[1]}, so it is not "
            f"{algorithm}'s; SB3 does not record the class: name it with --set inner.algorithm"
        )
    kwargs = data.get("policy_kwargs") or {}
    relu = "torch.nn.modules.activation.ReLU"
    net_arch, activation = architecture_from_sb3(path, kwargs, network, relu)
    values = base.to_dict()
    values["policy"].update(net_arch=net_arch, activation=activation)
    inner = values["inner"]
    for key in settings:
        if isinstance(data.get(key), int | float) and not isinstance(data.get(key), bool):
            inner[key] = data[key]
    return config_of_zip(path, values, base)
