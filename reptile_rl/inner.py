"""The inner loop: adapt meta-parameters to one task with a reused stable-baselines3 PPO.

Building a ``PPO`` costs about 190 ms and loading a state dict about 0.3 ms, so each worker
builds one :class:`InnerLoop` and, for every task, only sets the task, loads theta into
``policy`` and calls ``learn``. SB3 is wrapped, never forked.

What one adaptation does (``K = job.updates``)::

    set the task on every sub-env; seed python, numpy, torch and the envs from job.seed
    load theta into the policy (actor, critic, log_std); fresh optimizer state (by default)
    repeat K times:   reset the envs, roll out n_envs x n_steps, run PPO's training phase
    optionally:       reset the envs, roll out once more without training (to measure)

Each rollout starts from freshly reset envs and is scored by the mean return of the first
episode each sub-env completes in it: with the default ``n_steps`` = horizon that is exactly
``n_envs`` whole episodes of the current policy, MAML's "20 trajectories per step".
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import ActorCriticPolicy

from envs.base import Task
from reptile_rl.baseline import linear_baseline
from reptile_rl.config import Config, InnerConfig
from reptile_rl.envs_factory import env_horizon, make_vec_env
from reptile_rl.params import Params, subtract

_ACTIVATIONS: dict[str, type[torch.nn.Module]] = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}


@dataclasses.dataclass(frozen=True)
class AdaptJob:
    """One adaptation to run.

    Attributes:
        task: The task to adapt to.
        seed: Seeds every random draw of this adaptation.
        updates: Number of PPO updates (0 only measures the initial policy).
        measure_final: Roll out once more after the last update to measure its return.
        keep_last_step: Also return the last update's change of the parameters.
    """

    task: Task
    seed: int
    updates: int
    measure_final: bool = False
    keep_last_step: bool = False


@dataclasses.dataclass
class AdaptResult:
    """What one adaptation produced.

    Attributes:
        params: The adapted parameters ``phi``.
        returns: Mean episodic return of each rollout: ``returns[k]`` is the return after
            ``k`` updates (``returns[0]`` is the pre-adaptation return).
        env_steps: Environment steps used, measurement rollout included.
        learn_seconds: Wall time spent inside ``PPO.learn``.
        train_stats: PPO's training statistics (``train/...``) of each update.
        optimizer_state: The inner optimizer's final state, when it is carried between tasks
            (``reset_optimizer`` off); else ``None``.
        error: Why the adaptation failed (it raised), else ``None``.
        last_step: ``phi_K - phi_(K-1)``, the last update's change (``job.keep_last_step``
            and at least one update), else ``None``.
    """

    params: Params
    returns: list[float]
    env_steps: int
    learn_seconds: float
    train_stats: list[dict[str, float]]
    optimizer_state: Params | None = None
    error: str | None = None
    last_step: Params | None = None

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
        seconds: Wall time inside ``PPO.learn``.
        train_stats: PPO's training statistics, if a training phase followed.
    """

    mean_return: float
    env_steps: int
    seconds: float
    train_stats: dict[str, float]


class _FirstEpisodeReturns(BaseCallback):
    """Records the return of the first episode each sub-env completes in a rollout.

    Args:
        stop_when_complete: End the rollout (and skip PPO's training phase) as soon as every
            sub-env has completed an episode: a measurement-only rollout.
    """

    def __init__(self, stop_when_complete: bool, linear_baseline_horizon: int | None = None):
        super().__init__()
        self.stop_when_complete = stop_when_complete
        self.linear_baseline_horizon = linear_baseline_horizon
        self.returns = np.empty(0)

    def _on_rollout_start(self) -> None:
        self.returns = np.full(self.training_env.num_envs, np.nan)

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        for index in np.flatnonzero(self.locals["dones"]):
            if np.isnan(self.returns[index]):
                self.returns[index] = float(infos[index]["episode"]["r"])
        return not (self.stop_when_complete and not np.isnan(self.returns).any())

    def _on_rollout_end(self) -> None:
        if self.linear_baseline_horizon is None:
            return
        # Replace the critic's values by MAML's per-rollout linear baseline, then let SB3
        # recompute returns and advantages from them (before its training phase).
        buffer = self.model.rollout_buffer  # type: ignore[attr-defined]
        values, last_values = linear_baseline(
            buffer.observations,
            buffer.rewards,
            buffer.episode_starts,
            np.asarray(self.locals["new_obs"]),
            self.locals["dones"],
            buffer.gamma,
            self.linear_baseline_horizon,
        )
        buffer.values = values.astype(np.float32)
        buffer.compute_returns_and_advantage(torch.as_tensor(last_values), self.locals["dones"])

    def mean_return(self) -> float:
        if np.isnan(self.returns).any():
            raise RuntimeError("a sub-env completed no episode in its rollout (n_steps < horizon?)")
        return float(self.returns.mean())


def to_numpy(state_dict: dict[str, torch.Tensor]) -> Params:
    """Copy a torch ``state_dict`` into NumPy arrays."""
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in state_dict.items()}


def policy_kwargs(config: Config, inner: InnerConfig | None = None) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for ``config``'s architecture and inner optimizer."""
    optimizer = (inner or config.inner).optimizer
    return {
        "net_arch": list(config.policy.net_arch),
        "activation_fn": _ACTIVATIONS[config.policy.activation],
        "log_std_init": config.policy.log_std_init,
        "ortho_init": config.policy.ortho_init,
        "optimizer_class": _OPTIMIZERS[optimizer],
        # SB3's Adam epsilon. On the CPU torch defaults to one kernel call per tensor; the
        # multi-tensor ("foreach") kernels compute bit-identical updates with fewer calls.
        "optimizer_kwargs": {"eps": 1e-5, "foreach": True} if optimizer == "adam" else {},
    }


def use_one_torch_thread() -> None:
    """Make this process compute with one torch intra-op thread.

    These MLPs are too small to gain from more, and with several processes per core (Ray
    workers, concurrent baselines) extra threads oversubscribe the cores: a multi-task baseline
    ran 7x slower that way (issue 7). One thread also keeps the numbers independent of the
    machine's core count: SB3's orthogonal initialisation gives other bits with two threads.
    """
    torch.set_num_threads(1)


def fresh_parameters(config: Config, seed: int, oracle: bool = False) -> Params:
    """Parameters of a newly initialised policy (SB3's initialisation), drawn from ``seed``.

    Builds only the policy (on a one-env copy of the env for its spaces), not a whole PPO.
    """
    use_one_torch_thread()
    env = make_vec_env(config.env.id, config.env.kwargs, 1, oracle=oracle)
    try:
        torch.manual_seed(seed)
        policy = ActorCriticPolicy(
            env.observation_space, env.action_space, lambda _: 0.0, **policy_kwargs(config)
        )
    finally:
        env.close()
    return to_numpy(policy.state_dict())


def ppo_kwargs(config: Config, inner: InnerConfig | None = None) -> dict[str, Any]:
    """Keyword arguments of SB3's ``PPO`` for ``config`` (inner settings, policy, CPU)."""
    inner = inner or config.inner
    horizon = env_horizon(config.env.id)
    return {
        "learning_rate": inner.learning_rate,
        "n_steps": inner.n_steps or horizon,
        "batch_size": inner.batch_size or inner.rollout_size(horizon),
        "n_epochs": inner.n_epochs,
        "gamma": inner.gamma,
        "gae_lambda": inner.gae_lambda,
        "clip_range": inner.clip_range,
        "ent_coef": inner.ent_coef,
        "vf_coef": inner.vf_coef,
        "max_grad_norm": inner.max_grad_norm,
        "normalize_advantage": inner.normalize_advantage,
        "policy_kwargs": policy_kwargs(config, inner),
        "device": "cpu",
        "verbose": 0,
    }


def build_ppo(config: Config, oracle: bool = False, inner: InnerConfig | None = None) -> PPO:
    """Build the SB3 PPO described by ``config`` (env, policy and inner settings).

    Args:
        config: The run configuration.
        oracle: Observe the task (the oracle baseline's env).
        inner: PPO settings to use instead of ``config.inner``.
    """
    inner = inner or config.inner
    env = make_vec_env(
        config.env.id, config.env.kwargs, inner.n_envs, oracle, inner.bootstrap_time_limit
    )
    ppo = PPO("MlpPolicy", env, **ppo_kwargs(config, inner))
    # A silent logger set once: otherwise every learn() call would configure a new one.
    ppo.set_logger(Logger(folder=None, output_formats=[]))
    return ppo


@dataclasses.dataclass(frozen=True)
class _ConstantRate:
    """A learning-rate schedule (SB3's ``Schedule``) that always gives ``rate``."""

    rate: float

    def __call__(self, progress_remaining: float) -> float:
        return self.rate


class InnerLoop:
    """One worker's reusable PPO: adapts given parameters to given tasks.

    Args:
        config: The run configuration (env, policy and inner PPO settings).
        oracle: Observe the task (for evaluating the oracle baseline).
        inner: PPO settings to use instead of ``config.inner`` (e.g. evaluation settings).
    """

    def __init__(self, config: Config, oracle: bool = False, inner: InnerConfig | None = None):
        use_one_torch_thread()
        self.config = config
        self.oracle = oracle
        self.inner = inner or config.inner
        self.ppo = build_ppo(config, oracle=oracle, inner=self.inner)
        self.rollout_size = self.ppo.n_steps * self.ppo.n_envs
        scale = self.inner.log_std_lr_scale
        if scale != 1.0:
            # With SGD, scaling a gradient scales that parameter's learning rate (Meta-SGD, Li
            # et al. 2017). SB3 resets every parameter group to one rate at each training
            # phase, so a per-group rate would not survive; the hook acts on the gradient.
            log_std: torch.Tensor = self.ppo.policy.log_std
            log_std.register_hook(lambda grad: grad * scale)  # type: ignore[no-untyped-call]
        linear = self.inner.advantage_baseline == "linear"
        self._training = _FirstEpisodeReturns(False, config.horizon() if linear else None)
        self._measuring = _FirstEpisodeReturns(stop_when_complete=True)

    def initial_parameters(self, seed: int) -> Params:
        """Fresh parameters of this architecture, as SB3 initialises them, from ``seed``."""
        return fresh_parameters(self.config, seed, self.oracle)

    def parameters(self) -> Params:
        """The current policy parameters."""
        return to_numpy(self.ppo.policy.state_dict())

    def load(self, params: Params) -> None:
        """Load parameters into the policy (every name must match)."""
        self.ppo.policy.load_state_dict(
            {name: torch.tensor(value) for name, value in params.items()}
        )

    def _fresh_optimizer(self, state: Params | None) -> None:
        """Give the policy a new optimizer, optionally loaded with a flat saved state."""
        policy = self.ppo.policy
        policy.optimizer = policy.optimizer_class(
            policy.parameters(),
            lr=self.inner.learning_rate,  # type: ignore[call-arg]
            **policy.optimizer_kwargs,
        )
        if state:
            saved = policy.optimizer.state_dict()
            slots: dict[int, dict[str, torch.Tensor]] = {}
            for name, value in state.items():
                index, key = name.split(".", 1)
                slots.setdefault(int(index), {})[key] = torch.tensor(value)
            saved["state"] = slots
            policy.optimizer.load_state_dict(saved)

    def optimizer_state(self) -> Params:
        """The inner optimizer's state as flat arrays named ``"<param index>.<slot>"``."""
        state = self.ppo.policy.optimizer.state_dict()["state"]
        return {
            f"{index}.{key}": torch.as_tensor(value).detach().numpy().copy()
            for index, slots in state.items()
            for key, value in slots.items()
        }

    def adapt(
        self, theta: Params, job: AdaptJob, optimizer_state: Params | None = None
    ) -> AdaptResult:
        """Adapt ``theta`` to ``job.task`` with ``job.updates`` PPO updates.

        The result depends only on the arguments and the configuration, never on what this
        worker did before. The optimizer starts fresh for every task (``reset_optimizer``, the
        default) or from ``optimizer_state``, the state the outer loop carries between tasks.
        """
        self.ppo.set_random_seed(job.seed)
        self.set_tasks(job.task)
        self.load(theta)
        self._fresh_optimizer(None if self.inner.reset_optimizer else optimizer_state)
        rollouts, before_last = [], None
        for k in range(job.updates):
            if job.keep_last_step and k == job.updates - 1:
                before_last = self.parameters()
            rollouts.append(self.update(self.learning_rate_of_update(k)))
        adapted = self.parameters()
        if job.measure_final:
            rollouts.append(self.measure())
        carried = None if self.inner.reset_optimizer else self.optimizer_state()
        return AdaptResult(
            params=adapted,
            returns=[r.mean_return for r in rollouts],
            env_steps=sum(r.env_steps for r in rollouts),
            learn_seconds=sum(r.seconds for r in rollouts),
            train_stats=[r.train_stats for r in rollouts if r.train_stats],
            optimizer_state=carried,
            last_step=None if before_last is None else subtract(adapted, before_last),
        )

    def set_tasks(self, tasks: Task | list[Task]) -> None:
        """Give all sub-envs one task, or each its own."""
        env = self.ppo.env
        assert env is not None
        if isinstance(tasks, Task):
            env.env_method("set_task", tasks)
            return
        if len(tasks) != env.num_envs:
            raise ValueError(f"expected {env.num_envs} tasks, one per env, got {len(tasks)}")
        for index, task in enumerate(tasks):
            env.env_method("set_task", task, indices=index)

    def _rollout(self, recorder: _FirstEpisodeReturns) -> Rollout:
        start = time.perf_counter()
        # torch.distributions re-checks its arguments at every construction (thousands per
        # update); the policy's parameters are checked for finiteness after adaptation instead.
        validate = torch.distributions.Distribution._validate_args
        torch.distributions.Distribution.set_default_validate_args(False)
        try:
            # reset_num_timesteps=True also resets the envs: every rollout starts new episodes.
            self.ppo.learn(self.rollout_size, callback=recorder, log_interval=None)  # type: ignore[arg-type]
        finally:
            torch.distributions.Distribution.set_default_validate_args(validate)
        seconds = time.perf_counter() - start
        stats = {}
        if recorder is self._training:
            values = self.ppo.logger.name_to_value
            stats = {k: float(v) for k, v in values.items() if k.startswith("train/")}
        return Rollout(recorder.mean_return(), self.ppo.num_timesteps, seconds, stats)

    def learning_rate_of_update(self, index: int) -> float:
        """The learning rate of an adaptation's update number ``index`` (from 0)."""
        rates = self.inner.update_learning_rates
        return rates[min(index, len(rates) - 1)] if rates else self.inner.learning_rate

    def update(self, learning_rate: float | None = None) -> Rollout:
        """One PPO update from the current parameters: a rollout, then the training phase.

        Args:
            learning_rate: Learning rate of this update; ``None`` means ``inner.learning_rate``.

        Returns:
            The rollout (its mean return is the policy's *before* this update).
        """
        # SB3 sets the optimizer's rate from lr_schedule at the start of every training phase.
        self.ppo.lr_schedule = _ConstantRate(
            self.inner.learning_rate if learning_rate is None else learning_rate
        )
        return self._rollout(self._training)

    def measure(self) -> Rollout:
        """Roll out the current policy until each env has finished one episode; no training."""
        return self._rollout(self._measuring)

    def close(self) -> None:
        """Release the environments."""
        assert self.ppo.env is not None
        self.ppo.env.close()
