"""Reptile (Nichol, Achiam and Schulman 2018) around a stable-baselines3 inner learner.

The algorithm, all of it: :func:`meta_step` runs one meta-iteration ``t``::

    tasks   = meta_batch_size tasks of the train split, drawn from seed (run seed, t)
    phi_i   = learner-adapt(theta, task_i)         on the backend, each seeded by (run seed, t, i)
    theta  <- theta + eps_t * mean_i(phi_i - theta)   eps_t = eps_start, after eps_hold linear
                                                      to eps_end at the last iteration

With ``outer.direction: last_step`` theta moves along ``mean_i(phi_i,K - phi_i,K-1)`` instead,
the last inner update of each task: first-order MAML when the inner steps are plain SGD.
The driver around it (the loop, logs, checkpoints, export) is :mod:`reptile_rl.trainer`.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from reptile_rl import params
from reptile_rl.config import Config, ConfigError
from reptile_rl.families import family_task_type
from reptile_rl.learners import AdaptJob, AdaptResult, initial_parameters
from reptile_rl.parallel import Backend, LearnerSpec
from reptile_rl.params import AdamState, Params
from reptile_rl.seeding import Stream, derive_seed

logger = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot continue meaningfully (e.g. most of a meta-batch failed)."""


@dataclasses.dataclass
class MetaState:
    """Everything that evolves during meta-training; a checkpoint stores exactly this.

    Attributes:
        iteration: Next meta-iteration to run.
        theta: The meta-parameters.
        adam: Outer Adam state (``outer.optimizer: adam``), else ``None``.
        inner_optimizer: Inner optimizer state carried between tasks (``reset_optimizer``
            off), else ``None``.
        env_steps: Environment steps used so far.
        wall_seconds: Training wall time so far.
        log_rates: Meta-learned log inner rates (``outer.inner_rates``), named
            ``"<k>/<parameter>"``, else ``None``.
        rate_adam: Their outer Adam state.
    """

    iteration: int
    theta: Params
    adam: AdamState | None = None
    inner_optimizer: Params | None = None
    env_steps: int = 0
    wall_seconds: float = 0.0
    log_rates: Params | None = None
    rate_adam: AdamState | None = None


@dataclasses.dataclass(frozen=True)
class StepReport:
    """What one meta-iteration did, for the logs.

    Attributes:
        eps: The outer step size used.
        results: The adaptations the outer update used (failed ones dropped).
        dropped: How many adaptations failed and were dropped.
        env_steps: Env steps of all adaptations.
    """

    eps: float
    results: list[AdaptResult]
    dropped: int
    env_steps: int


def meta_learned(config: Config, theta: Params) -> list[str]:
    """Names of the parameters the outer loop updates (all but ``outer.exclude``)."""
    names = params.select(theta, config.outer.exclude)
    if not names:
        raise ConfigError(f"outer.exclude: excludes every parameter ({sorted(theta)})")
    return names


def initial_state(config: Config) -> MetaState:
    """Iteration 0: theta as SB3 initialises the policy, from the run seed."""
    theta = initial_parameters(config, derive_seed(config.seed, Stream.INITIAL_PARAMETERS))
    adam = None
    if config.outer.optimizer == "adam":
        adam = AdamState.zeros_like({name: theta[name] for name in meta_learned(config, theta)})
    log_rates = initial_log_rates(config, theta)
    rate_adam = None if log_rates is None else AdamState.zeros_like(log_rates)
    return MetaState(0, theta, adam, log_rates=log_rates, rate_adam=rate_adam)


def initial_log_rates(config: Config, theta: Params) -> Params | None:
    """Learned inner rates start at the training rates (``None``: ``outer.inner_rates`` fixed).

    Named ``"<k>/<parameter>"``: one set per inner update with ``inner_rates_per_update``,
    else one set; one value (shape ``(1,)``) per tensor, or an array like the parameter for
    ``element``.
    """
    outer, inner = config.outer, config.inner
    if outer.inner_rates == "fixed":
        return None
    sets = inner.updates if outer.inner_rates_per_update else 1
    rates = inner.update_learning_rates or [inner.learning_rate]
    log_rates: Params = {}
    for k in range(sets):
        value = np.log(params.of_update(rates, k))
        for name, parameter in theta.items():
            shape = parameter.shape if outer.inner_rates == "element" else (1,)
            log_rates[f"{k}/{name}"] = np.full(shape, value, dtype=parameter.dtype)
    return log_rates


def meta_step(config: Config, state: MetaState, backend: Backend) -> tuple[MetaState, StepReport]:
    """Run meta-iteration ``state.iteration``: sample tasks, adapt, update theta."""
    t, outer = state.iteration, config.outer
    tasks = family_task_type(config.env.id).sample(
        outer.meta_batch_size, seed=derive_seed(config.seed, Stream.TRAIN_TASKS, t)
    )
    jobs = [
        AdaptJob(
            task,
            derive_seed(config.seed, Stream.ADAPTATION, t, i),
            config.inner.updates,
            measure_final=outer.measure_adapted,
            keep_last_step=outer.direction == "last_step",
            inner_log_rates=state.log_rates,
            rate_gradient=state.log_rates is not None,
        )
        for i, task in enumerate(tasks)
    ]
    results = backend.adapt(LearnerSpec(config), state.theta, jobs, state.inner_optimizer)
    kept = usable(results, t)
    eps = params.linear_schedule(
        outer.eps_start, outer.eps_end, t, outer.iterations, outer.eps_hold
    )
    names, betas = meta_learned(config, state.theta), (outer.adam_beta1, outer.adam_beta2)
    if outer.direction == "last_step":
        # First-order MAML (Finn et al. 2017; Nichol et al. 2018, sec. 5): the gradient at
        # the adapted parameters, which with SGD inner steps is the last update.
        last_steps = [r.last_step for r in kept if r.last_step is not None]
        assert len(last_steps) == len(kept)  # every job kept it and inner.updates >= 1
        theta, adam = params.outer_step(state.theta, last_steps, eps, names, state.adam, betas)
    else:
        adapted = [r.params for r in kept]
        theta, adam = params.reptile_update(state.theta, adapted, eps, names, state.adam, betas)
    if not params.all_finite(theta):  # finite inputs can still overflow
        raise TrainingError(f"iteration {t}: the outer update made theta non-finite")
    inner_optimizer = None
    if not config.inner.reset_optimizer:
        inner_optimizer = params.average([r.optimizer_state or {} for r in kept])
    log_rates, rate_adam = state.log_rates, state.rate_adam
    if log_rates is not None and rate_adam is not None:
        # Ascent on the return after adaptation: Adam descends along minus its gradient.
        ascent = params.average([r.rate_gradient or {} for r in kept])
        log_rates, rate_adam = params.adam_step(
            log_rates, params.scale(ascent, -1.0), rate_adam, outer.inner_rates_learning_rate
        )
    steps = sum(r.env_steps for r in results)
    new_state = MetaState(
        t + 1,
        theta,
        adam,
        inner_optimizer,
        state.env_steps + steps,
        state.wall_seconds,
        log_rates,
        rate_adam,
    )
    return new_state, StepReport(eps, kept, len(results) - len(kept), steps)


def usable(results: list[AdaptResult], iteration: int) -> list[AdaptResult]:
    """Drop failed or non-finite adaptations; stop if most of the batch failed.

    Raises:
        TrainingError: If half or more of the adaptations failed.
    """
    kept = []
    for index, result in enumerate(results):
        if result.error is None and params.all_finite(result.params):
            kept.append(result)
        else:
            reason = result.error or "non-finite parameters"
            logger.warning("iteration %d: task %d dropped: %s", iteration, index, reason)
    if len(kept) * 2 <= len(results):
        raise TrainingError(
            f"iteration {iteration}: {len(results) - len(kept)} of {len(results)} adaptations "
            "failed (see the log); stopping instead of training on garbage. Lower "
            "inner.learning_rate or check the environment."
        )
    return kept
