"""The inner learner for stable-baselines3's on-policy algorithms: PPO and A2C.

Each worker builds one :class:`OnPolicyLearner` and, for every task, only sets the task, loads
theta into ``policy`` and calls ``learn``: after a process's first build, the SB3 model and
loading a state dict are cheap next to building a MuJoCo family's envs, so reusing the learner
mostly saves rebuilding the envs (measured: ``benchmarks/PERFORMANCE.md``, section 5).

What one adaptation does (``K = job.updates``)::

    set the task on every sub-env; seed python, numpy, torch and the envs from job.seed
    load theta into the policy (actor, critic, log_std); fresh optimizer state (by default)
    repeat K times:   reset the envs, roll out n_envs x n_steps, run the training phase
    optionally:       reset the envs, roll out once more without training (to measure)

Each rollout starts from freshly reset envs and is scored by the mean return of the first
episode each sub-env completes in it: with the default ``n_steps`` = horizon that is exactly
``n_envs`` whole episodes of the current policy, MAML's "20 trajectories per step".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import threadpoolctl
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv

from reptile_rl.checkpoint import CheckpointError
from reptile_rl.config import (
    A2CConfig,
    Config,
    InnerConfig,
    PPOConfig,
)
from reptile_rl.envs.base import Task
from reptile_rl.families import env_horizon
from reptile_rl.learners import sb3_hooks
from reptile_rl.learners.base import (
    Adaptation,
    AdaptJob,
    AdaptResult,
    LearnerType,
    Rollout,
    RolloutRequest,
    run_adaptation,
)
from reptile_rl.learners.sb3_base import (
    SB3Learner,
    architecture_from_sb3,
    class_name,
    config_of_zip,
)
from reptile_rl.params import Params, of_update, rate_hypergradient, subtract
from reptile_rl.vec_env import FiniteHorizon, make_vec_env

ALGORITHMS: dict[str, type[OnPolicyAlgorithm]] = {"ppo": PPO, "a2c": A2C}
"""``inner.algorithm`` -> the SB3 class (``ALGORITHMS[name].load`` opens its exports)."""

_ACTIVATIONS: dict[str, type[torch.nn.Module]] = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}


def policy_kwargs(config: Config, inner: InnerConfig | None = None) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for ``config``'s architecture and inner optimizer."""
    optimizer = (inner or config.inner).optimizer
    return {
        "net_arch": list(config.policy.net_arch),
        "activation_fn": _ACTIVATIONS[config.policy.activation],
        "log_std_init": config.policy.log_std_init,
        "ortho_init": config.policy.ortho_init,
        # An explicit class also keeps A2C from substituting its default RMSprop.
        "optimizer_class": _OPTIMIZERS[optimizer],
        # SB3's Adam epsilon. On the CPU torch defaults to one kernel call per tensor; the
        # multi-tensor ("foreach") kernels compute bit-identical updates with fewer calls.
        "optimizer_kwargs": {"eps": 1e-5, "foreach": True} if optimizer == "adam" else {},
    }


def on_policy_settings(config: Config, inner: InnerConfig | None = None) -> PPOConfig | A2CConfig:
    """``inner`` (default ``config.inner``), which must be PPO's or A2C's settings."""
    settings = inner or config.inner
    if not isinstance(settings, PPOConfig | A2CConfig):
        raise TypeError(f"an on-policy learner needs ppo or a2c settings, got {settings.algorithm}")
    return settings


def algorithm_kwargs(config: Config, inner: InnerConfig | None = None) -> dict[str, Any]:
    """Keyword arguments of the SB3 class ``inner.algorithm`` names (settings, policy, CPU)."""
    inner = on_policy_settings(config, inner)
    horizon = env_horizon(config.env.id)
    kwargs: dict[str, Any] = {
        "learning_rate": inner.learning_rate,
        "n_steps": inner.n_steps or horizon,
        "gamma": inner.gamma,
        "gae_lambda": inner.gae_lambda,
        "ent_coef": inner.ent_coef,
        "vf_coef": inner.vf_coef,
        "max_grad_norm": inner.max_grad_norm,
        "normalize_advantage": inner.normalize_advantage,
        "policy_kwargs": policy_kwargs(config, inner),
        "device": "cpu",
        "verbose": 0,
    }
    if inner.algorithm == "ppo":
        kwargs["batch_size"] = inner.minibatch_size(horizon)
        kwargs["n_epochs"] = inner.n_epochs
        kwargs["clip_range"] = inner.clip_range
    return kwargs


def use_one_thread() -> None:
    """Make this process compute with one torch intra-op thread and one BLAS thread.

    These MLPs are too small to gain from more, and with several processes per core (Ray
    workers, concurrent baselines) extra threads oversubscribe the cores: a multi-task baseline
    ran 7x slower that way. One thread also keeps the numbers independent of the
    machine's core count and of the process: SB3's orthogonal initialisation gives other bits
    with two torch threads, and NumPy's BLAS, which Ray limits to one thread in its workers
    but not in the driver, gave the linear baseline's least squares other bits with two
    (AntDir's 214 features: the serial backend and Ray workers trained apart).
    """
    torch.set_num_threads(1)
    threadpoolctl.threadpool_limits(1, user_api="blas")


def to_numpy(state_dict: dict[str, torch.Tensor]) -> Params:
    """Copy a torch ``state_dict`` into NumPy arrays."""
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in state_dict.items()}


def initial_parameters(config: Config, seed: int, oracle: bool = False) -> Params:
    """Parameters of a newly initialised policy (SB3's initialisation), drawn from ``seed``.

    Builds only the policy (on a one-env copy of the env for its spaces), not a whole learner.
    """
    use_one_thread()
    env = make_vec_env(config.env.id, config.env.kwargs, 1, oracle=oracle)
    try:
        torch.manual_seed(seed)
        policy = ActorCriticPolicy(
            env.observation_space, env.action_space, lambda _: 0.0, **policy_kwargs(config)
        )
    finally:
        env.close()
    return to_numpy(policy.state_dict())


def rate_sets(log_rates: Params | None) -> list[Params]:
    """``{"<k>/<name>": log rate}`` -> a list of ``{name: rate}``, one per rate set ``k``."""
    if not log_rates:
        return []
    sets: dict[int, Params] = {}
    for key, value in log_rates.items():
        index, name = key.split("/", 1)
        sets.setdefault(int(index), {})[name] = np.exp(value)
    return [sets[k] for k in sorted(sets)]


def _sum_rate_sets(per_update: list[Params], sets: int) -> Params:
    """Per-update hypergradients -> per rate set (the last set serves the later updates)."""
    total: dict[str, np.ndarray] = {}
    for k, gradient in enumerate(per_update):
        index = of_update(range(sets), k)
        for name, value in gradient.items():
            key = f"{index}/{name}"
            total[key] = total[key] + value if key in total else value.copy()
    return total


def _reported(success_rates: list[float | None]) -> list[float]:
    """The success rates of every rollout, or none if the env reported no success in one."""
    if any(rate is None for rate in success_rates):
        return []
    return [rate for rate in success_rates if rate is not None]


def load_parameters(model: OnPolicyAlgorithm, params: Params) -> None:
    """Load parameters into an SB3 model's policy (every name must match)."""
    model.policy.load_state_dict({name: torch.tensor(value) for name, value in params.items()})


def build_model(
    config: Config, oracle: bool = False, inner: InnerConfig | None = None
) -> OnPolicyAlgorithm:
    """Build the SB3 PPO or A2C described by ``config`` (env, policy and inner settings).

    Args:
        config: The run configuration.
        oracle: Observe the task (the oracle baseline's env).
        inner: Settings to use instead of ``config.inner``.
    """
    inner = on_policy_settings(config, inner)
    env = make_vec_env(
        config.env.id, config.env.kwargs, inner.n_envs, oracle, inner.bootstrap_time_limit
    )
    model = ALGORITHMS[inner.algorithm]("MlpPolicy", env, **algorithm_kwargs(config, inner))
    # A silent logger set once: otherwise every learn() call would configure a new one.
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


class OnPolicyLearner(SB3Learner[OnPolicyAlgorithm]):
    """One worker's reusable PPO or A2C: adapts given parameters to given tasks.

    Implements :class:`reptile_rl.learners.Learner`.

    Args:
        config: The run configuration (env, policy and inner settings).
        oracle: Observe the task (for evaluating the oracle baseline).
        inner: Settings to use instead of ``config.inner`` (e.g. evaluation settings).
    """

    inner: PPOConfig | A2CConfig

    def __init__(self, config: Config, oracle: bool = False, inner: InnerConfig | None = None):
        use_one_thread()
        self.inner = on_policy_settings(config, inner)
        super().__init__(config, oracle, build_model(config, oracle, self.inner))
        self.rollout_size = self.model.n_steps * self.model.n_envs
        scale = self.inner.log_std_lr_scale
        if scale != 1.0:
            # With SGD, scaling a gradient scales that parameter's learning rate (Meta-SGD, Li
            # et al. 2017). SB3 resets every parameter group to one rate at each training
            # phase, so a per-group rate would not survive; the hook acts on the gradient.
            log_std: torch.Tensor = self.model.policy.log_std
            log_std.register_hook(lambda grad: grad * scale)  # type: ignore[no-untyped-call]
        # Meta-learned inner rates (outer.inner_rates), taken as gradient scales at SGD rate 1;
        # unset, they leave gradients as they are (the configured rates, the baselines).
        self._rate_scales = (
            None
            if config.outer.inner_rates == "fixed"
            else sb3_hooks.GradientScales(self.model.policy)
        )
        self._adapt_only(self.inner.adapt_only)
        linear = self.inner.advantage_baseline == "linear"
        self._training = sb3_hooks.EpisodeReturns(False, config.horizon() if linear else None)
        self._measuring = sb3_hooks.EpisodeReturns(stop_when_complete=True)

    def parameters(self) -> Params:
        """The current policy parameters."""
        return to_numpy(self.model.policy.state_dict())

    def load(self, params: Params) -> None:
        """Load parameters into the policy (every name must match)."""
        load_parameters(self.model, params)

    def train_on(self, tasks: list[Task]) -> Rollout:
        """One step of multi-task training: a rollout of ``tasks``, then the training phase."""
        self.set_tasks(tasks)
        return self.update()

    def adapt(
        self, theta: Params, job: AdaptJob, optimizer_state: Params | None = None
    ) -> AdaptResult:
        """Adapt ``theta`` to ``job.task`` with ``job.updates`` updates.

        The result depends only on the arguments and the configuration, never on what this
        worker did before. The optimizer starts fresh for every task (``reset_optimizer``, the
        default) or from ``optimizer_state``, the state the outer loop carries between tasks.
        """
        return run_adaptation(self.adaptation(theta, job, optimizer_state), self.roll_out)

    def roll_out(self, request: RolloutRequest) -> Rollout:
        """One rollout as :meth:`adaptation` asks for it, on this learner's own envs."""
        if request.mean_action_seed is not None:
            mean_return, success = self._measure_mean_action(request.mean_action_seed)
            return Rollout(mean_return, 0, 0.0, {}, success)
        recorder, training = self.prepare(request)
        return self._rollout(recorder, self.rollout_size, training)

    def prepare(self, request: RolloutRequest) -> tuple[sb3_hooks.EpisodeReturns, bool]:
        """Set the model up for a requested rollout: its recorder, and whether it trains."""
        if request.learning_rate is None:
            return self._measuring, False
        sb3_hooks.set_learning_rate(self.model, request.learning_rate)
        return self._training, True

    def adaptation(
        self, theta: Params, job: AdaptJob, optimizer_state: Params | None = None
    ) -> Adaptation:
        """:meth:`adapt` as a generator that asks for each of its rollouts.

        It yields a :class:`RolloutRequest` whenever it needs a rollout (with its training
        phase, or a measurement), is sent the :class:`Rollout` back, and returns the result:
        :meth:`adapt` performs each rollout on its own, the lockstep engine
        (:mod:`.lockstep`) performs those of several jobs together.
        """
        self.seed(job.seed)
        if job.measure_mean_action:
            self._ensure_mean_action_env(self.inner.bootstrap_time_limit)
        self.set_tasks(job.task)
        self.load(theta)
        carried = None if self.inner.reset_optimizer else optimizer_state
        sb3_hooks.fresh_optimizer(self.model, self.inner.learning_rate, carried)
        rates = rate_sets(job.inner_log_rates)
        if rates and self._rate_scales is None:
            # Without the gradient hooks a rate-1 step would be taken unscaled.
            raise ValueError("learned inner rates given, but outer.inner_rates is fixed")
        rollouts, before_last, mean_action, steps = [], None, [], []
        mean_action_successes: list[float | None] = []
        for k in range(job.updates + 1):
            if job.measure_mean_action:
                measured = yield RolloutRequest(None, mean_action_seed=job.seed)
                mean_action.append(measured.mean_return)
                mean_action_successes.append(measured.success_rate)
            if k == job.updates:
                break
            if job.keep_last_step and k == job.updates - 1:
                before_last = self.parameters()
            if rates:
                rate = of_update(rates, k)
                assert self._rate_scales is not None  # checked above
                self._rate_scales.set(rate)
                rollouts.append((yield RolloutRequest(1.0)))
                steps.append({n: g / rate[n] for n, g in self._gradients().items()})
            else:
                rollouts.append((yield RolloutRequest(self.learning_rate_of_update(k))))
        if self._rate_scales is not None:
            self._rate_scales.clear()
        adapted = self.parameters()
        train_stats = [r.train_stats for r in rollouts if r.train_stats]
        rate_gradient = None
        if job.rate_gradient and rates:
            # The gradient at phi_K, on a fresh rollout that also measures the return after
            # K updates: a training phase at learning rate 0 computes it and moves nothing.
            rollouts.append((yield RolloutRequest(0.0)))
            per_set = rate_hypergradient(
                [of_update(rates, k) for k in range(job.updates)],
                steps,
                self._gradients(),
                self.config.outer.inner_rates == "element",
            )
            rate_gradient = _sum_rate_sets(per_set, len(rates))
        elif job.measure_final:
            rollouts.append((yield RolloutRequest(None)))
        return AdaptResult(
            params=adapted,
            returns=[r.mean_return for r in rollouts],
            env_steps=sum(r.env_steps for r in rollouts),
            learn_seconds=sum(r.seconds for r in rollouts),
            train_stats=train_stats,
            optimizer_state=None
            if self.inner.reset_optimizer
            else sb3_hooks.optimizer_state(self.model),
            last_step=None if before_last is None else subtract(adapted, before_last),
            mean_action_returns=mean_action,
            rate_gradient=rate_gradient,
            success_rates=_reported([r.success_rate for r in rollouts]),
            mean_action_success_rates=_reported(mean_action_successes),
        )

    def _gradients(self) -> Params:
        """The gradients the last training phase left on the policy's parameters."""
        return {
            name: np.zeros(tuple(p.shape), np.float32)
            if p.grad is None
            else p.grad.detach().cpu().numpy().copy()
            for name, p in self.model.policy.named_parameters()
        }

    def update(self, learning_rate: float | None = None) -> Rollout:
        """One update from the current parameters: a rollout, then the training phase.

        Args:
            learning_rate: Learning rate of this update; ``None`` means ``inner.learning_rate``.

        Returns:
            The rollout (its mean return is the policy's *before* this update).
        """
        rate = self.inner.learning_rate if learning_rate is None else learning_rate
        return self.roll_out(RolloutRequest(rate))

    def measure(self) -> Rollout:
        """Roll out the current policy until each env has finished one episode; no training."""
        return self.roll_out(RolloutRequest(None))


# -- without a worker: SB3 zips and SB3's own adaptation route -------------------------------

_OPTIMIZER_NAMES = {"torch.optim.adam.Adam": "adam", "torch.optim.sgd.SGD": "sgd"}
# The settings only PPO saves: SB3's data does not name the algorithm's class (both save
# ActorCriticPolicy as policy_class), so the configuration names it and these confirm it.
_PPO_ONLY = ("n_epochs", "batch_size", "clip_range")


def config_from_sb3(path: Path, data: Mapping[str, Any], base: Config) -> Config:
    """The configuration of a plain SB3 PPO or A2C zip: ``base`` with the zip's policy and settings.

    ``base.inner.algorithm`` names the algorithm (SB3's data does not); the architecture
    (``net_arch``, activation, ``log_std_init``, ``ortho_init``) and the learner's settings come
    from the zip's JSON, the env and everything else from ``base``.

    Raises:
        CheckpointError: If the architecture is not one reptile-rl builds, or the zip's
            settings are not those of the algorithm ``base`` names.
    """
    algorithm = base.inner.algorithm
    saves_ppo_settings = all(key in data for key in _PPO_ONLY)
    if saves_ppo_settings != (algorithm == "ppo"):
        other = "a2c" if algorithm == "ppo" else "ppo"
        raise CheckpointError(
            f"{path}: SB3's data {'holds' if saves_ppo_settings else 'lacks'} PPO's "
            f"{', '.join(_PPO_ONLY)}, so it is not {algorithm.upper()}'s; SB3 does not record "
            f"the class: name it with --set inner.algorithm={other}"
        )
    kwargs = data.get("policy_kwargs") or {}
    net_arch, activation = architecture_from_sb3(path, kwargs, "an SB3 policy")
    values = base.to_dict()
    values["policy"].update(
        net_arch=net_arch,
        activation=activation,
        log_std_init=float(kwargs.get("log_std_init", 0.0)),
        ortho_init=bool(kwargs.get("ortho_init", True)),
    )
    inner = values["inner"]
    inner["optimizer"] = _OPTIMIZER_NAMES.get(class_name(kwargs.get("optimizer_class", "")), "adam")
    for key in ("gamma", "gae_lambda", "ent_coef", "vf_coef", "max_grad_norm", "n_epochs"):
        if isinstance(data.get(key), int | float) and not isinstance(data.get(key), bool):
            inner[key] = data[key]
    if isinstance(data.get("learning_rate"), int | float):
        inner["learning_rate"] = float(data["learning_rate"])
    if isinstance(data.get("normalize_advantage"), bool):
        inner["normalize_advantage"] = data["normalize_advantage"]
    return config_of_zip(path, values, base)


def sb3_adaptation(
    config: Config,
    inner: InnerConfig,
    params: Params,
    inner_log_rates: Params | None,
    env: VecEnv,
) -> tuple[OnPolicyAlgorithm, CallbackList]:
    """An SB3 model on ``env`` holding ``params``, and the callback to adapt with.

    ``model.learn(K * model.n_steps * env.num_envs, callback=callback)`` then runs K updates as
    :meth:`OnPolicyLearner.adapt` does: plain gradient steps with the per-update (or learned)
    rates and the configured advantage baseline.
    """
    inner = on_policy_settings(config, inner)
    if not inner.bootstrap_time_limit:
        env = FiniteHorizon(env)
    model = ALGORITHMS[inner.algorithm]("MlpPolicy", env, **algorithm_kwargs(config, inner))
    load_parameters(model, params)
    rates: BaseCallback
    if inner_log_rates is not None:
        rates = sb3_hooks.LearnedRates(rate_sets(inner_log_rates))
    else:
        rates = sb3_hooks.PerUpdateRates(list(inner.update_learning_rates) or [inner.learning_rate])
    linear = config.horizon() if inner.advantage_baseline == "linear" else None
    # The linear baseline first: it rewrites the rollout's advantages at the rollout's end.
    return model, CallbackList([sb3_hooks.EpisodeReturns(False, linear), rates])


def sb3_model(
    config: Config, inner: InnerConfig, params: Params, oracle: bool = False
) -> OnPolicyAlgorithm:
    """``inner.algorithm``'s SB3 model on a VecEnv of ``config``'s env, holding ``params``."""
    model = build_model(config, oracle, inner)
    load_parameters(model, params)
    return model


ON_POLICY = LearnerType(
    build=OnPolicyLearner,
    initial_parameters=initial_parameters,
    config_from_sb3=config_from_sb3,
    sb3_adaptation=sb3_adaptation,
    sb3_model=sb3_model,
    theta_of_sb3=dict,
)
"""SB3's on-policy algorithms (``ALGORITHMS``: PPO, A2C) as an inner learner type."""
