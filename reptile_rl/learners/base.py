"""The inner learner protocol: what the outer loop, evaluation and pretraining ask of a learner.

A learner adapts given parameters to given tasks. The outer loop never sees the learner itself:
it hands ``(theta, job)`` pairs to a backend (:mod:`reptile_rl.parallel`), whose workers each
keep one learner and return an :class:`AdaptResult`. Jobs and results are plain data, so they
cross process and machine boundaries (Ray).

Everything an algorithm knows sits behind these two types: :class:`Learner`, one worker's
reusable learner, and :class:`LearnerType`, what is asked of the algorithm without a worker
(its initial parameters, its SB3 zips, the SB3-native adaptation route). A new algorithm is a
module that provides both, one line in :data:`reptile_rl.learners.LEARNERS`, and its settings
in the configuration's ``inner`` section.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any, Protocol

from stable_baselines3.common.vec_env import VecEnv

from reptile_rl.config import Config, InnerConfig
from reptile_rl.envs.base import Task
from reptile_rl.params import Params


@dataclasses.dataclass(frozen=True)
class AdaptJob:
    """One adaptation to run.

    Attributes:
        task: The task to adapt to.
        seed: Seeds every random draw of this adaptation.
        updates: Number of learner updates (0 only measures the initial policy).
        measure_final: Roll out once more after the last update to measure its return.
        keep_last_step: Also return the last update's change of the parameters.
        measure_mean_action: Also measure the mean-action (deterministic) return before each
            update and after the last, on envs of their own (the stochastic returns and every
            random draw of the adaptation are the same with or without it).
        inner_log_rates: Meta-learned log inner rates, named ``"<k>/<parameter>"`` for rate set
            ``k`` (one per update, the last repeating); ``None``: the configured rates.
        rate_gradient: Also return the first-order gradient of the return after the last
            update w.r.t. ``inner_log_rates`` (measured on the final rollout).
    """

    task: Task
    seed: int
    updates: int
    measure_final: bool = False
    keep_last_step: bool = False
    measure_mean_action: bool = False
    inner_log_rates: Params | None = None
    rate_gradient: bool = False


@dataclasses.dataclass
class AdaptResult:
    """What one adaptation produced.

    Attributes:
        params: The adapted parameters ``phi``.
        returns: Mean episodic return of each rollout: ``returns[k]`` is the return after
            ``k`` updates (``returns[0]`` is the pre-adaptation return).
        env_steps: Environment steps used, measurement rollout included.
        learn_seconds: Wall time spent inside the learner's ``learn``.
        train_stats: The learner's training statistics (``train/...``) of each update.
        optimizer_state: The inner optimizer's final state, when it is carried between tasks
            (``reset_optimizer`` off); else ``None``.
        error: Why the adaptation failed (it raised), else ``None``.
        last_step: ``phi_K - phi_(K-1)``, the last update's change (``job.keep_last_step``
            and at least one update), else ``None``.
        mean_action_returns: ``mean_action_returns[k]``: the mean-action return after ``k``
            updates (``job.measure_mean_action``), else empty.
        rate_gradient: d(return after the last update) / d(log rate), named as
            ``job.inner_log_rates`` (``job.rate_gradient``), else ``None``.
        success_rates: ``success_rates[k]``: the fraction of the episodes scored in
            ``returns[k]`` that succeeded (SB3's ``info["is_success"]`` at their end); empty
            if the env reports no success.
        mean_action_success_rates: The same for the episodes of ``mean_action_returns``.
    """

    params: Params
    returns: list[float]
    env_steps: int
    learn_seconds: float
    train_stats: list[dict[str, float]]
    optimizer_state: Params | None = None
    error: str | None = None
    last_step: Params | None = None
    mean_action_returns: list[float] = dataclasses.field(default_factory=list)
    rate_gradient: Params | None = None
    success_rates: list[float] = dataclasses.field(default_factory=list)
    mean_action_success_rates: list[float] = dataclasses.field(default_factory=list)

    @classmethod
    def failure(cls, error: BaseException) -> AdaptResult:
        """The result of an adaptation that raised ``error``."""
        return cls({}, [], 0, 0.0, [], None, f"{type(error).__name__}: {error}")


@dataclasses.dataclass(frozen=True)
class Rollout:
    """One rollout's outcome.

    Attributes:
        mean_return: Mean return of the first episode each sub-env completed.
        env_steps: Env steps it took.
        seconds: Wall time inside the learner's ``learn``.
        train_stats: The learner's training statistics, if a training phase followed.
        success_rate: Fraction of those episodes that succeeded, ``None`` if the env reports
            no success (SB3's ``info["is_success"]``).
    """

    mean_return: float
    env_steps: int
    seconds: float
    train_stats: dict[str, float]
    success_rate: float | None = None


@dataclasses.dataclass(frozen=True)
class RolloutRequest:
    """A rollout an adaptation asks for (see :func:`run_adaptation`).

    Attributes:
        learning_rate: Roll out, then run the training phase at this rate; ``None``: roll out
            until every sub-env has completed an episode, without training (a measurement).
        mean_action_seed: Instead, the mean-action measurement: one episode per env acting on
            the policy's mean action, on the mean-action envs seeded with this seed (SB3's
            ``evaluate_policy``); ``None``: a rollout as above.
    """

    learning_rate: float | None
    mean_action_seed: int | None = None


Adaptation = Generator[RolloutRequest, Rollout, AdaptResult]
"""An adaptation that asks for its rollouts: it yields requests and is sent their rollouts."""


def run_adaptation(
    adaptation: Adaptation, roll_out: Callable[[RolloutRequest], Rollout]
) -> AdaptResult:
    """Run an adaptation to its end, performing each rollout it asks for with ``roll_out``."""
    try:
        request = next(adaptation)
        while True:
            request = adaptation.send(roll_out(request))
    except StopIteration as end:
        result: AdaptResult = end.value
        return result


class Learner(Protocol):
    """One worker's reusable learner: its envs and policy are built once, then reused.

    Attributes:
        n_envs: Sub-environments, i.e. episodes per rollout (tasks per :meth:`train_on`).
        rollout_size: Env steps of one update's new experience.
    """

    n_envs: int
    rollout_size: int

    def parameters(self) -> Params:
        """The current policy parameters (a copy)."""
        ...

    def load(self, params: Params) -> None:
        """Load parameters into the policy (every name must match)."""
        ...

    def seed(self, seed: int) -> None:
        """Seed every random draw that follows (Python, NumPy, torch, the envs)."""
        ...

    def adapt(
        self, theta: Params, job: AdaptJob, optimizer_state: Params | None = None
    ) -> AdaptResult:
        """Adapt ``theta`` to ``job.task``; the result depends on the arguments only."""
        ...

    def train_on(self, tasks: list[Task]) -> Rollout:
        """One step of multi-task training (the baselines): new experience, then training.

        Args:
            tasks: One task per sub-env (``n_envs`` of them) for this step's experience.

        Returns:
            The experience's outcome (returns of the parameters before this step's training).
        """
        ...

    def export(self, params: Params, path: Path, record: dict[str, Any] | None = None) -> None:
        """Write ``params`` as the learner's own SB3 file (``PPO.load`` / ``A2C.load`` opens it).

        Args:
            params: The policy parameters.
            path: The ``.zip`` to write.
            record: reptile-rl's JSON record to keep inside (see :mod:`reptile_rl.sb3_zip`).
        """
        ...

    def close(self) -> None:
        """Release the environments."""
        ...


@dataclasses.dataclass(frozen=True)
class LearnerType:
    """What reptile-rl asks of an inner algorithm besides one worker's :class:`Learner`.

    Attributes:
        build: ``(config, oracle, inner)`` -> a learner with ``inner`` (``None``:
            ``config.inner``) as its settings, observing the task if ``oracle``.
        initial_parameters: ``(config, seed, oracle)`` -> the parameters of a newly initialised
            policy, drawn from ``seed``.
        config_from_sb3: ``(path, data, base)`` -> the configuration of a plain SB3 zip of this
            algorithm (one reptile-rl did not write): ``base`` with the architecture and
            settings SB3's ``data`` JSON holds. Raises ``CheckpointError`` if they do not fit.
        sb3_adaptation: ``(config, inner, params, inner_log_rates, env)`` -> an SB3 model on
            ``env`` holding ``params`` and the callback with which SB3's own ``learn()``
            adapts as :meth:`Learner.adapt` does.
        sb3_model: ``(config, inner, params, oracle)`` -> the algorithm's SB3 model, with
            ``inner`` as its settings, on a VecEnv of ``config``'s env, holding ``params``.
        theta_of_sb3: The parameters of an SB3 policy's whole state dict that are theta (all
            of them for PPO's and A2C's; DQN's Q-network without its target).
    """

    build: Callable[[Config, bool, InnerConfig | None], Learner]
    initial_parameters: Callable[[Config, int, bool], Params]
    config_from_sb3: Callable[[Path, Mapping[str, Any], Config], Config]
    sb3_adaptation: Callable[[Config, InnerConfig, Params, Params | None, VecEnv], tuple[Any, Any]]
    sb3_model: Callable[[Config, InnerConfig, Params, bool], Any]
    theta_of_sb3: Callable[[Params], Params]
