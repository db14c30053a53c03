"""The lockstep engine (``inner.engine: lockstep``): a worker's adaptations run together.

A worker given several jobs keeps one :class:`~.sb3_onpolicy.OnPolicyLearner` per job (its
SB3 model, rollout buffer and envs) and advances their adaptations side by side
(:meth:`~.sb3_onpolicy.OnPolicyLearner.adaptation` asks for each rollout). When they ask for
rollouts, the rollouts run in lockstep: at every step one batched forward evaluates every job's
policy (:class:`~.stacked.StackedPolicies`), each job draws its actions from a generator of its
own and steps its own envs, and the transitions go into each job's SB3 rollout buffer; then
each job's training phase is SB3's own ``train()``. Mean-action measurements run together the
same way: one batched forward of the policies' modes per step, each job's episodes scored as
SB3's ``evaluate_policy`` scores them.

A job's result never depends on which other jobs share its worker: the batched forward gives
each job its own policy's bits, its actions come from a generator seeded by the job's seed
(drawing what SB3 draws from torch's global generator seeded so), and its training phase
shuffles its minibatches with a NumPy stream of its own (SB3 shuffles with NumPy's global
generator, which the job's seed seeds). With one job per worker the lockstep engine therefore
gives the ``sb3`` engine's bits, which ``tests/test_lockstep.py`` checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
import torch

from reptile_rl.config import Config, InnerConfig
from reptile_rl.envs.base import Task
from reptile_rl.learners import sb3_hooks
from reptile_rl.learners.base import (
    Adaptation,
    AdaptJob,
    AdaptResult,
    Rollout,
    RolloutRequest,
)
from reptile_rl.learners.sb3_onpolicy import OnPolicyLearner, on_policy_settings
from reptile_rl.learners.stacked import StackedPolicies
from reptile_rl.params import Params

logger = logging.getLogger(__name__)

MAX_GROUP = 16
"""Most jobs a worker steps together: each keeps a learner with its own envs (an evaluation's
40 tasks on one worker would hold 40 learners' MuJoCo envs at once), and a meta-batch of 16 on
one worker is the largest the presets give it."""


@dataclasses.dataclass
class _Job:
    """One job of a lockstep group: its learner, its adaptation and its own random streams."""

    learner: OnPolicyLearner
    adaptation: Adaptation
    actions: torch.Generator
    numpy_state: Any = None
    request: RolloutRequest | None = None
    result: AdaptResult | None = None

    def advance(self, rollout: Rollout | None) -> None:
        """Hand the adaptation its rollout; keep its next request, or its result."""
        try:
            self.request = (
                next(self.adaptation) if rollout is None else self.adaptation.send(rollout)
            )
        except StopIteration as end:
            self.request, self.result = None, end.value
        except Exception as error:  # one task's failure must not end the others
            self.fail(error)

    def fail(self, error: Exception) -> None:
        """End this job with ``error`` as its result."""
        logger.exception("adaptation failed")
        self.request, self.result = None, AdaptResult.failure(error)


class _Rollout:
    """One job's part of a lockstep rollout: SB3's ``learn`` for one rollout, stepped from here.

    Args:
        job: The job, with the request this rollout answers.
    """

    def __init__(self, job: _Job):
        assert job.request is not None
        self.job = job
        self.learner = job.learner
        self.model = job.learner.model
        self.recorder, self.training = self.learner.prepare(job.request)
        self.steps = self.learner.rollout_size
        self.running = True
        self.complete = False
        self.error: Exception | None = None
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # new_obs, dones
        sb3_hooks.begin_rollout(self.model, self.steps, self.recorder)

    def observations(self) -> np.ndarray:
        """The observations the next actions answer."""
        return sb3_hooks.last_observations(self.model)

    def step(
        self, actions: np.ndarray, clipped: np.ndarray, outputs: tuple[torch.Tensor, ...]
    ) -> None:
        """One step of ``collect_rollouts`` with this job's part of the batched forward.

        An error (the job's env raising) ends this job's rollout only.

        Args:
            actions: The drawn actions.
            clipped: The same clipped to a Box action space (what the env gets).
            outputs: The values and log-probabilities.
        """
        try:
            self._step(actions, clipped, *outputs)
        except Exception as error:  # kept as the job's result
            self.running, self.error = False, error

    def _step(
        self,
        actions: np.ndarray,
        clipped: np.ndarray,
        values: torch.Tensor,
        log_probs: torch.Tensor,
    ) -> None:
        model = self.model
        assert model.env is not None
        new_obs, rewards, dones, infos = model.env.step(clipped)
        transition = {
            "actions": actions,
            "values": values,
            "log_probs": log_probs,
            "new_obs": new_obs,
            "rewards": rewards,
            "dones": dones,
            "infos": infos,
        }
        if not sb3_hooks.record_step(model, self.recorder, transition):
            self.running = False  # the callback ended it (a measurement): no training
            return
        self._last = (new_obs, dones)  # type: ignore[assignment]
        if model.rollout_buffer.full:
            self.running, self.complete = False, True

    def finish(self, shared_seconds: float) -> None:
        """End the rollout (a complete one is followed by SB3's training phase); hand it over."""
        try:
            if self.error is not None:
                raise self.error
            train_seconds = 0.0
            if self.complete:
                assert self._last is not None
                sb3_hooks.end_rollout(self.model, self.recorder, *self._last)
                start = time.perf_counter()
                with _numpy_stream(self.job):
                    sb3_hooks.train_after_rollout(self.model, self.steps)
                train_seconds = time.perf_counter() - start
            sb3_hooks.finish_learning(self.recorder)
            rollout = self.learner.outcome(
                self.recorder, shared_seconds + train_seconds, self.training and self.complete
            )
        except Exception as error:  # one task's failure must not end the others
            self.job.fail(error)
            return
        self.job.advance(rollout)


class _MeanAction:
    """One job's part of a lockstep mean-action measurement: SB3's ``evaluate_policy``, stepped.

    One episode per env on the job's mean-action envs, each sub-env's first episode scored as
    ``evaluate_policy`` scores it.

    Args:
        job: The job, with the request this measurement answers.
    """

    def __init__(self, job: _Job):
        assert job.request is not None and job.request.mean_action_seed is not None
        self.job = job
        self.policy = job.learner.model.policy
        env = job.learner._mean_action_env
        if env is None:
            raise RuntimeError("no mean-action envs: adapt with measure_mean_action first")
        self.env = env
        env.seed(job.request.mean_action_seed)
        self.observations = _array(env.reset())
        self.scored = np.zeros(env.num_envs, dtype=bool)
        self.returns: list[float] = []
        self.successes = sb3_hooks.EpisodeSuccesses(env.num_envs)
        self.running = True
        self.error: Exception | None = None

    def step(self, actions: np.ndarray) -> None:
        """One step of ``evaluate_policy``'s loop; an error ends this job's measurement only."""
        try:
            observations, _, dones, infos = self.env.step(actions)
            for i in np.flatnonzero(~self.scored).tolist():
                done, info = dones[i], infos[i]
                self.successes({"i": i, "done": done, "info": info}, {})
                if done and "episode" in info:  # the monitor's episode, as evaluate_policy reads
                    self.returns.append(info["episode"]["r"])
                    self.scored[i] = True
            self.observations = _array(observations)
            self.running = not self.scored.all()
        except Exception as error:  # kept as the job's result
            self.running, self.error = False, error

    def finish(self) -> None:
        """Hand the job its measurement: the mean return and success rate of those episodes."""
        if self.error is not None:
            self.job.fail(self.error)
            return
        rollout = Rollout(float(np.mean(self.returns)), 0, 0.0, {}, self.successes.success_rate())
        self.job.advance(rollout)


def _array(observations: Any) -> np.ndarray:
    """A VecEnv's observations as the one array the stacked forward takes."""
    if not isinstance(observations, np.ndarray):
        raise TypeError("the lockstep engine needs array observations")
    return observations


PartT = TypeVar("PartT")


def _start_each(jobs: Sequence[_Job], start: Callable[[_Job], PartT]) -> list[PartT]:
    """Each job's part of a lockstep step loop; a job whose start raises fails alone."""
    parts = []
    for job in jobs:
        try:
            parts.append(start(job))
        except Exception as error:  # one task's failure must not end the others
            job.fail(error)
    return parts


def _clipped(actions: np.ndarray, space: gym.Space[Any]) -> np.ndarray:
    """SB3's clip of drawn actions to a Box action space (elementwise: once for all jobs)."""
    if isinstance(space, gym.spaces.Box):
        clipped: np.ndarray = np.clip(actions, space.low, space.high)
        return clipped
    return actions


def lockstep_mean_actions(jobs: Sequence[_Job]) -> None:
    """Perform the mean-action measurements the jobs ask for, stepped together."""
    members = _start_each(jobs, _MeanAction)
    stacked = StackedPolicies([m.policy for m in members]) if members else None
    while running := [m for m in members if m.running]:
        assert stacked is not None
        if len(running) < len(stacked.policies):
            stacked = StackedPolicies([m.policy for m in running])
        # SB3's predict: obs_as_tensor, the mode, numpy, and the clip to a Box (elementwise).
        observations = torch.as_tensor(np.stack([m.observations for m in running]))
        actions = _clipped(stacked.modes(observations).numpy(), running[0].policy.action_space)
        for index, member in enumerate(running):
            member.step(actions[index])
    for member in members:
        member.finish()


@contextlib.contextmanager
def _numpy_stream(job: _Job) -> Iterator[None]:
    """Within: NumPy's global generator is the job's own stream (SB3 shuffles with it)."""
    outside = np.random.get_state()
    np.random.set_state(job.numpy_state)
    try:
        yield
    finally:
        job.numpy_state = np.random.get_state()
        np.random.set_state(outside)


def lockstep_rollouts(jobs: Sequence[_Job]) -> None:
    """Perform the rollouts the jobs ask for, stepped together, and hand each its rollout."""
    start = time.perf_counter()
    with sb3_hooks.unchecked_distributions():
        rollouts = _start_each(jobs, _Rollout)
        stacked = StackedPolicies([r.model.policy for r in rollouts]) if rollouts else None
        while running := [r for r in rollouts if r.running]:
            assert stacked is not None
            if len(running) < len(stacked.policies):
                stacked = StackedPolicies([r.model.policy for r in running])
            # SB3's obs_as_tensor and its clipping to a Box, once for all jobs (elementwise).
            observations = torch.as_tensor(np.stack([r.observations() for r in running]))
            generators = [r.job.actions for r in running]
            actions, values, log_probs = stacked.act(observations, generators)
            arrays = actions.numpy()
            clipped = _clipped(arrays, running[0].model.action_space)
            for index, rollout in enumerate(running):
                rollout.step(arrays[index], clipped[index], (values[index], log_probs[index]))
        shared = (time.perf_counter() - start) / max(len(rollouts), 1)
        for rollout in rollouts:
            rollout.finish(shared)


class LockstepLearner:
    """A worker's learner that adapts all the jobs it is given together.

    Implements :class:`reptile_rl.learners.Learner`, plus :meth:`adapt_all`. Everything but
    adaptation (multi-task training, export) is the first per-job learner's.

    Args:
        config: The run configuration.
        oracle: Observe the task (the oracle baseline's env).
        inner: Settings to use instead of ``config.inner``.
    """

    def __init__(self, config: Config, oracle: bool = False, inner: InnerConfig | None = None):
        self.config, self.oracle, self.inner = config, oracle, inner
        self._learners = [OnPolicyLearner(config, oracle, inner)]
        self.n_envs = self._learners[0].n_envs
        self.rollout_size = self._learners[0].rollout_size

    def adapt(
        self, theta: Params, job: AdaptJob, optimizer_state: Params | None = None
    ) -> AdaptResult:
        """Adapt ``theta`` to ``job.task`` (a group of one)."""
        return self.adapt_all([theta], [job], optimizer_state)[0]

    def adapt_all(
        self,
        thetas: Sequence[Params],
        jobs: Sequence[AdaptJob],
        optimizer_state: Params | None = None,
    ) -> list[AdaptResult]:
        """Adapt ``thetas[i]`` to ``jobs[i]`` for every ``i``, together; results in job order.

        Each result is the one the job gets alone: it depends only on its arguments.
        """
        if len(jobs) > MAX_GROUP:  # in turns: a job's result does not depend on its group
            return [
                result
                for start in range(0, len(jobs), MAX_GROUP)
                for result in self.adapt_all(
                    thetas[start : start + MAX_GROUP],
                    jobs[start : start + MAX_GROUP],
                    optimizer_state,
                )
            ]
        while len(self._learners) < len(jobs):
            self._learners.append(OnPolicyLearner(self.config, self.oracle, self.inner))
        group = []
        for learner, theta, job in zip(self._learners, thetas, jobs, strict=False):
            member = _Job(
                learner,
                learner.adaptation(theta, job, optimizer_state),
                torch.Generator().manual_seed(job.seed),
            )
            member.advance(None)  # its start seeds NumPy's global generator from job.seed
            member.numpy_state = np.random.get_state()
            group.append(member)
        while waiting := [member for member in group if member.request is not None]:
            measuring = [m for m in waiting if m.request and m.request.mean_action_seed is not None]
            if measuring:
                lockstep_mean_actions(measuring)
            else:
                lockstep_rollouts(waiting)
        return [member.result for member in group if member.result is not None]

    # -- the rest of the Learner protocol: the first learner's --------------------------------

    def parameters(self) -> Params:
        """The first learner's current parameters."""
        return self._learners[0].parameters()

    def load(self, params: Params) -> None:
        """Load parameters into the first learner."""
        self._learners[0].load(params)

    def seed(self, seed: int) -> None:
        """Seed the first learner."""
        self._learners[0].seed(seed)

    def train_on(self, tasks: list[Task]) -> Rollout:
        """One step of multi-task training on the first learner (nothing to batch there)."""
        return self._learners[0].train_on(tasks)

    def export(self, params: Params, path: Path, record: dict[str, Any] | None = None) -> None:
        """Write ``params`` as an SB3 zip (see :meth:`.sb3_base.SB3Learner.export`)."""
        self._learners[0].export(params, path, record)

    def close(self) -> None:
        """Release every learner's envs."""
        for learner in self._learners:
            learner.close()


def build_on_policy(
    config: Config, oracle: bool = False, inner: InnerConfig | None = None
) -> OnPolicyLearner | LockstepLearner:
    """The on-policy learner of ``inner.engine``: SB3's own rollouts, or the lockstep engine."""
    settings = on_policy_settings(config, inner)
    if settings.engine == "lockstep":
        return LockstepLearner(config, oracle, settings)
    return OnPolicyLearner(config, oracle, settings)
