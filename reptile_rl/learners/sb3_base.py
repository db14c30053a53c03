"""What every stable-baselines3 learner shares: its model's envs, tasks, seeds, rollouts, files.

:class:`SB3Learner` holds one SB3 model and its VecEnv per worker, reused for every task; the
algorithm's own learner (:mod:`.sb3_onpolicy`, :mod:`.sb3_dqn`) says what theta is and what one
update does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from reptile_rl import sb3_zip
from reptile_rl.checkpoint import CheckpointError
from reptile_rl.config import Config, ConfigError, InnerBase, config_from_dict
from reptile_rl.envs.base import Task
from reptile_rl.learners import sb3_hooks
from reptile_rl.learners.base import Rollout
from reptile_rl.params import of_update
from reptile_rl.vec_env import make_vec_env

ModelT = TypeVar("ModelT", bound=BaseAlgorithm)

_ACTIVATION_NAMES = {
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
}


def class_name(summary: Any) -> str:
    """``"<class 'torch.nn.modules.activation.Tanh'>"`` -> ``"torch.nn...Tanh"``."""
    return str(summary).removeprefix("<class '").removesuffix("'>")


def architecture_from_sb3(
    path: Path, policy_kwargs: Mapping[str, Any], what: str, default_activation: str = ""
) -> tuple[list[int], str]:
    """``(net_arch, activation)`` of a zip's ``policy_kwargs`` (SB3's defaults where absent).

    Args:
        path: The zip, for the message.
        policy_kwargs: The readable summary SB3's data keeps of them.
        what: The network, for the message ("an SB3 policy", "a Q-network").
        default_activation: SB3's class of the activation where the zip names none.

    Raises:
        CheckpointError: If it is not an MLP reptile-rl builds.
    """
    given = policy_kwargs.get("activation_fn", default_activation)
    activation = _ACTIVATION_NAMES.get(class_name(given))
    net_arch = policy_kwargs.get("net_arch", [64, 64])
    if activation is None or not isinstance(net_arch, list):
        raise CheckpointError(
            f"{path}: {what} with activation {policy_kwargs.get('activation_fn')!r} and net_arch "
            f"{net_arch!r}; reptile-rl builds tanh or relu MLPs with one list of layer sizes"
        )
    return net_arch, activation


def config_of_zip(path: Path, values: Mapping[str, Any], base: Config) -> Config:
    """The checked configuration read from a plain zip (``base`` updated with its values).

    Raises:
        CheckpointError: If its settings do not fit (naming the setting).
    """
    try:
        return config_from_dict(values)
    except ConfigError as error:
        raise CheckpointError(f"{path}: its settings do not fit {base.env.id}: {error}") from None


class SB3Learner(Generic[ModelT]):
    """One SB3 model and its envs, reused for every task of a worker.

    The algorithm's learner sets ``inner``, its settings, before calling this constructor.

    Args:
        config: The run configuration.
        oracle: Observe the task (the oracle baseline's env).
        model: The SB3 model built for them.
    """

    inner: InnerBase

    def __init__(self, config: Config, oracle: bool, model: ModelT):
        self.config = config
        self.oracle = oracle
        self.model = model
        self.n_envs = model.n_envs
        self._mean_action_env: VecEnv | None = None  # built on first use

    def _adapt_only(self, patterns: list[str]) -> None:
        """Freeze the parameters no pattern matches (after any gradient hooks are set)."""
        if patterns:
            # ANIL (Raghu et al. 2020): only the matched parameters take gradient steps; the
            # optimizer skips a parameter without a gradient, whatever its kind.
            adapted = [re.compile(pattern) for pattern in patterns]
            for name, parameter in self.model.policy.named_parameters():
                parameter.requires_grad_(any(p.fullmatch(name) for p in adapted))

    def seed(self, seed: int) -> None:
        """Seed Python, NumPy, torch, the action space and the envs."""
        self.model.set_random_seed(seed)

    def set_tasks(self, tasks: Task | list[Task]) -> None:
        """Give all sub-envs one task, or each its own."""
        for env in (self.model.env, self._mean_action_env):
            if env is None:
                continue
            if isinstance(tasks, Task):
                env.env_method("set_task", tasks)
                continue
            if len(tasks) != env.num_envs:
                raise ValueError(f"expected {env.num_envs} tasks, one per env, got {len(tasks)}")
            for index, task in enumerate(tasks):
                env.env_method("set_task", task, indices=index)

    def learning_rate_of_update(self, index: int) -> float:
        """The learning rate of an adaptation's update number ``index`` (from 0).

        ``inner.update_learning_rates``' (the last repeating), or ``inner.learning_rate``.
        """
        rates = self.inner.update_learning_rates
        return of_update(rates, index) if rates else self.inner.learning_rate

    def _ensure_mean_action_env(self, bootstrap_time_limit: bool = True) -> None:
        """Build the envs of the mean-action episodes, once (on their own, see below)."""
        if self._mean_action_env is None:
            config = self.config
            self._mean_action_env = make_vec_env(
                config.env.id, config.env.kwargs, self.n_envs, self.oracle, bootstrap_time_limit
            )

    def measure_mean_action(self, seed: int) -> float:
        """Mean return of one episode per env acting on the policy's mean (greedy) action.

        Runs on envs of its own, seeded by ``seed`` (the same start states at every call with
        the same seed), so the training envs' episodes and every random draw of the adaptation
        stay as they are. Raises ``RuntimeError`` before the first ``adapt`` with
        ``measure_mean_action``, which builds those envs.
        """
        return self._measure_mean_action(seed)[0]

    def _measure_mean_action(self, seed: int) -> tuple[float, float | None]:
        """:meth:`measure_mean_action`'s return, and the same episodes' success rate or ``None``."""
        if self._mean_action_env is None:
            raise RuntimeError("no mean-action envs: adapt with measure_mean_action first")
        self._mean_action_env.seed(seed)
        successes = sb3_hooks.EpisodeSuccesses(self.n_envs)
        returns, _ = evaluate_policy(
            self.model,
            self._mean_action_env,
            n_eval_episodes=self.n_envs,
            deterministic=True,
            return_episode_rewards=True,
            callback=successes,
        )
        assert isinstance(returns, list)
        return float(np.mean(returns)), successes.success_rate()

    def _rollout(self, recorder: sb3_hooks.EpisodeReturns, steps: int, training: bool) -> Rollout:
        """``model.learn`` for ``steps`` env steps, its episodes recorded by ``recorder``."""
        start = time.perf_counter()
        with sb3_hooks.unchecked_distributions():
            # reset_num_timesteps=True also resets the envs: every rollout starts new episodes.
            self.model.learn(steps, callback=recorder, log_interval=None)  # type: ignore[arg-type]
        return self.outcome(recorder, time.perf_counter() - start, training)

    def outcome(
        self, recorder: sb3_hooks.EpisodeReturns, seconds: float, training: bool
    ) -> Rollout:
        """The :class:`Rollout` of the model's last ``learn``, its episodes in ``recorder``."""
        stats = sb3_hooks.training_statistics(self.model) if training else {}
        return Rollout(
            recorder.mean_return(),
            self.model.num_timesteps,
            seconds,
            stats,
            recorder.success_rate(),
        )

    def export(self, params: Any, path: Path, record: dict[str, Any] | None = None) -> None:
        """Write ``params`` as a standard SB3 zip that the algorithm's ``load`` opens.

        The zip is SB3's format, which pickles some objects: load it with SB3 only if you trust
        it (reptile-rl reads it without unpickling, :mod:`reptile_rl.sb3_zip`). ``record``, if
        given, is kept inside as ``reptile_rl.json``.
        """
        self.load(params)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp.zip")
        self.model.save(temporary)
        if record is not None:
            sb3_zip.add_record(temporary, record)
        temporary.replace(path)

    def load(self, params: Any) -> None:
        """Load parameters (each learner says which)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the environments."""
        assert self.model.env is not None
        self.model.env.close()
        if self._mean_action_env is not None:
            self._mean_action_env.close()
