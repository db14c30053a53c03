"""Everything that touches stable-baselines3 internals, in one place.

SB3 is wrapped, never forked, but the inner loop needs five things its public API does not
offer. Each is listed here with the private attribute it relies on; all were checked against
stable-baselines3 2.9.2 (``OnPolicyAlgorithm``, shared by PPO and A2C) and torch 2.13:

- the return (and, where the env reports SB3's ``info["is_success"]``, the success) of the
  first episode each sub-env completes in a rollout, and ending a measurement rollout early:
  ``BaseCallback.locals["infos"]`` and ``["dones"]`` (the local variables of
  ``OnPolicyAlgorithm.collect_rollouts``);
- the success of the mean-action episodes: the ``locals`` that ``evaluate_policy`` hands its
  callback (``["done"]``, ``["info"]``, ``["i"]``);
- MAML's linear advantage baseline: after the rollout, ``model.rollout_buffer.values`` is
  overwritten and ``rollout_buffer.compute_returns_and_advantage`` called again, with
  ``BaseCallback.locals["new_obs"]`` and ``["dones"]`` for the last step;
- a learning rate per update: ``model.lr_schedule``, which ``train()`` reads through
  ``_update_learning_rate`` at the start of every training phase;
- the training statistics of the last update: ``model.logger.name_to_value``;
- DQN's epsilon per update: ``model.exploration_schedule``, which its ``_on_step`` reads at
  every step, and ``model.exploration_rate``, which its first action uses; and restarting the
  count behind its target-network copies, ``model._n_calls``, for each task;

the lockstep engine's rollouts, which drive ``learn``'s steps from outside (``_setup_learn``,
``_last_obs``, ``_last_episode_starts``, ``_update_info_buffer``,
``_update_current_progress_remaining``: the functions at the end of this module);

plus a fresh optimizer per task from ``policy.optimizer_class`` / ``policy.optimizer_kwargs``
(DQN's covers its Q-network only, as SB3 builds it), and torch's
``Distribution._validate_args`` switched off around rollouts.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import obs_as_tensor

from reptile_rl.linear_baseline import linear_baseline
from reptile_rl.params import Params, of_update


class EpisodeReturns(BaseCallback):
    """Records the return of the first episode each sub-env completes in a rollout.

    Also records whether that episode succeeded, where the env reports SB3's conventional
    ``info["is_success"]`` (its value at the episode's last step).

    Args:
        stop_when_complete: End the rollout (and skip the training phase) as soon as every
            sub-env has completed an episode: a measurement-only rollout.
        linear_baseline_horizon: If given, replace the critic's values by MAML's per-rollout
            linear feature baseline (time features in units of this horizon) before training.
    """

    def __init__(self, stop_when_complete: bool, linear_baseline_horizon: int | None = None):
        super().__init__()
        self.stop_when_complete = stop_when_complete
        self.linear_baseline_horizon = linear_baseline_horizon
        self.returns = np.empty(0)
        # 1.0 / 0.0 per sub-env; NaN where the episode's info had no "is_success".
        self.successes = np.empty(0)

    def _on_rollout_start(self) -> None:
        self.returns = np.full(self.training_env.num_envs, np.nan)
        self.successes = np.full(self.training_env.num_envs, np.nan)

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        for index in np.flatnonzero(self.locals["dones"]):
            if np.isnan(self.returns[index]):
                self.returns[index] = float(infos[index]["episode"]["r"])
                self.successes[index] = _success(infos[index])
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
        """Mean over sub-envs of their first completed episode's return."""
        if np.isnan(self.returns).any():
            raise RuntimeError("a sub-env completed no episode in its rollout (n_steps < horizon?)")
        return float(self.returns.mean())

    def success_rate(self) -> float | None:
        """Fraction of those episodes that succeeded; ``None`` if the env reports no success."""
        return _success_rate(self.successes)


def _success(info: dict[str, Any]) -> float:
    """1.0 or 0.0: ``info["is_success"]`` at an episode's end; NaN if the env reports none."""
    value = info.get("is_success")
    return np.nan if value is None else float(bool(value))


def _success_rate(successes: np.ndarray) -> float | None:
    """Mean of 1.0 / 0.0 episode successes; ``None`` if any episode reported none."""
    if successes.size == 0 or np.isnan(successes).any():
        return None
    return float(successes.mean())


class EpisodeSuccesses:
    """An ``evaluate_policy`` callback: whether the first episode of each sub-env succeeded.

    Records nothing that ``evaluate_policy`` computes, so its returns stay as they are.

    Args:
        n_envs: Sub-envs of the evaluated VecEnv.
    """

    def __init__(self, n_envs: int) -> None:
        self.successes = np.full(n_envs, np.nan)
        self._done = np.zeros(n_envs, dtype=bool)

    def __call__(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        """Called by ``evaluate_policy`` for each sub-env at each step."""
        index = int(locals_["i"])
        if locals_["done"] and not self._done[index]:
            self._done[index] = True
            self.successes[index] = _success(locals_["info"])

    def success_rate(self) -> float | None:
        """Fraction of those episodes that succeeded; ``None`` if the env reports no success."""
        return _success_rate(self.successes)


@dataclasses.dataclass(frozen=True)
class ConstantRate:
    """A learning-rate schedule (SB3's ``Schedule``) that always gives ``rate``."""

    rate: float

    def __call__(self, progress_remaining: float) -> float:
        """The constant rate, whatever the progress."""
        return self.rate


def set_learning_rate(model: BaseAlgorithm, rate: float) -> None:
    """Make the next training phase use ``rate`` (SB3 re-reads ``lr_schedule`` every phase)."""
    model.lr_schedule = ConstantRate(rate)


class PerUpdateRates(BaseCallback):
    """Sets the learning rate of each training phase: ``rates[k]`` for update ``k``.

    The last rate repeats. For SB3's own ``learn()``: the inner loop's per-update rates.
    """

    def __init__(self, rates: list[float]) -> None:
        super().__init__()
        self.rates = rates
        self.updates = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        # The training phase that follows reads lr_schedule first (_update_learning_rate).
        rate = of_update(self.rates, self.updates)
        self.model.lr_schedule = ConstantRate(rate)
        self.updates += 1


def set_exploration_rate(model: DQN, rate: float) -> None:
    """Make DQN act epsilon-greedily with ``rate`` from its next action on."""
    model.exploration_schedule = ConstantRate(rate)
    model.exploration_rate = rate


class PerUpdateExploration(BaseCallback):
    """Sets DQN's epsilon for each update's experience: ``rates[k]`` for update ``k``.

    The last rate repeats. For SB3's own ``learn()``: the DQN learner's per-update rates.
    """

    def __init__(self, rates: list[float]) -> None:
        super().__init__()
        self.rates = rates
        self.updates = 0

    def _on_rollout_start(self) -> None:
        assert isinstance(self.model, DQN)
        set_exploration_rate(self.model, of_update(self.rates, self.updates))

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.updates += 1


def restart_target_copies(model: DQN) -> None:
    """Count env steps to DQN's next target-network copy from zero, as a new model would."""
    model._n_calls = 0


def fresh_q_optimizer(model: DQN, learning_rate: float, state: Params | None) -> None:
    """Give DQN's Q-network a new optimizer, optionally loaded with a flat saved state."""
    _fresh_optimizer(model, model.policy.q_net.parameters(), learning_rate, state)


class GradientScales:
    """Per-parameter gradient scales, applied by hooks on a policy's parameters.

    With plain SGD at learning rate 1, a gradient scaled by alpha is a step of rate alpha: how
    meta-learned per-parameter rates are applied (Meta-SGD, Li et al. 2017), by the inner loop
    and by SB3's own ``learn()`` alike. SB3 resets every parameter group to one rate at each
    training phase, so a per-group rate would not survive; the hooks act on the gradient. With
    no scales set, gradients pass through unchanged.

    Args:
        policy: The policy whose parameters' gradients are scaled.
    """

    def __init__(self, policy: torch.nn.Module) -> None:
        self._scales: dict[str, torch.Tensor] = {}
        for name, parameter in policy.named_parameters():
            parameter.register_hook(  # type: ignore[no-untyped-call]
                lambda grad, name=name: grad * self._scales[name] if name in self._scales else grad
            )

    def set(self, rates: Params) -> None:
        """Scale each named parameter's gradient by its rate from now on."""
        self._scales = {
            name: torch.as_tensor(rate, dtype=torch.float32) for name, rate in rates.items()
        }

    def clear(self) -> None:
        """Let gradients pass unchanged again."""
        self._scales = {}


class LearnedRates(BaseCallback):
    """Meta-learned per-parameter rates for SB3's own ``learn()`` (``outer.inner_rates``).

    Update ``k`` takes a plain gradient step of learning rate 1 on gradients scaled by
    ``rate_sets[k]`` (the last set repeats), through :class:`GradientScales` as the inner loop
    takes it; after ``learn()`` gradients pass through unchanged.

    Args:
        rate_sets: Per update, the rate of each named policy parameter.
    """

    def __init__(self, rate_sets: list[Params]) -> None:
        super().__init__()
        self.rate_sets = rate_sets
        self.updates = 0
        self._scales: GradientScales | None = None

    def _init_callback(self) -> None:
        self._scales = GradientScales(self.model.policy)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        assert self._scales is not None  # set by _init_callback, before any rollout
        self._scales.set(of_update(self.rate_sets, self.updates))
        self.model.lr_schedule = ConstantRate(1.0)
        self.updates += 1

    def _on_training_end(self) -> None:
        if self._scales is not None:
            self._scales.clear()


def training_statistics(model: BaseAlgorithm) -> dict[str, float]:
    """The ``train/...`` values the last training phase recorded."""
    values = model.logger.name_to_value
    return {key: float(value) for key, value in values.items() if key.startswith("train/")}


def fresh_optimizer(model: OnPolicyAlgorithm, learning_rate: float, state: Params | None) -> None:
    """Give the policy a new optimizer, optionally loaded with a flat saved state."""
    _fresh_optimizer(model, model.policy.parameters(), learning_rate, state)


def _fresh_optimizer(
    model: BaseAlgorithm,
    parameters: Iterator[torch.nn.Parameter],
    learning_rate: float,
    state: Params | None,
) -> None:
    policy = model.policy
    policy.optimizer = policy.optimizer_class(
        parameters,
        lr=learning_rate,  # type: ignore[call-arg]
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


def optimizer_state(model: BaseAlgorithm) -> Params:
    """The optimizer's state as flat arrays named ``"<param index>.<slot>"``."""
    state = model.policy.optimizer.state_dict()["state"]
    return {
        f"{index}.{key}": torch.as_tensor(value).detach().numpy().copy()
        for index, slots in state.items()
        for key, value in slots.items()
    }


@contextlib.contextmanager
def unchecked_distributions() -> Iterator[None]:
    """Skip torch.distributions' argument checks for the duration (restored afterwards).

    They re-run at every construction (thousands per update); the policy's parameters are
    checked for finiteness after adaptation instead.
    """
    validate = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)


# -- OnPolicyAlgorithm.learn's steps, driven from outside (the lockstep engine) ---------------
# One call of learn(n_steps * n_envs) is: begin_rollout, then per step the policy's forward,
# env.step and record_step, then end_rollout and train_after_rollout, then finish_learning.
# Each mirrors the lines of SB3 2.9.2's learn / _setup_learn / collect_rollouts it replaces.


def begin_rollout(model: OnPolicyAlgorithm, steps: int, callback: BaseCallback) -> None:
    """``learn``'s start: counters, envs reset, the callback bound; the rollout's start."""
    model._setup_learn(steps, callback, reset_num_timesteps=True)
    callback.on_training_start({}, {})
    model.policy.set_training_mode(False)
    model.rollout_buffer.reset()
    callback.on_rollout_start()


def last_observations(model: OnPolicyAlgorithm) -> np.ndarray:
    """The observations the next action answers (``model._last_obs``)."""
    observations = model._last_obs
    assert isinstance(observations, np.ndarray)  # Box and Discrete observations
    return observations


def record_step(
    model: OnPolicyAlgorithm,
    callback: BaseCallback,
    transition: dict[str, Any],
) -> bool:
    """``collect_rollouts``' work after ``env.step``: the callback, time limits, the buffer.

    Args:
        model: The model whose rollout it is.
        callback: Its callback.
        transition: ``actions`` (as the env's action space shapes them), ``values`` and
            ``log_probs`` of the policy's forward, and ``new_obs``, ``rewards``, ``dones``,
            ``infos`` of ``env.step``.

    Returns:
        ``False`` where the callback ends the rollout (nothing is recorded then).
    """
    assert model.env is not None
    model.num_timesteps += model.env.num_envs
    callback.update_locals(transition)
    if not callback.on_step():
        return False
    infos, dones, rewards = transition["infos"], transition["dones"], transition["rewards"]
    model._update_info_buffer(infos, dones)
    actions = transition["actions"]
    if isinstance(model.action_space, gym.spaces.Discrete):
        actions = actions.reshape(-1, 1)
    for index, done in enumerate(dones):
        # SB3's bootstrap of episodes the time limit cut (its issue 633).
        if (
            done
            and infos[index].get("terminal_observation") is not None
            and infos[index].get("TimeLimit.truncated", False)
        ):
            terminal = model.policy.obs_to_tensor(infos[index]["terminal_observation"])[0]
            with torch.no_grad():
                rewards[index] += model.gamma * model.policy.predict_values(terminal)[0]
    model.rollout_buffer.add(
        model._last_obs,  # type: ignore[arg-type]
        actions,
        rewards,
        model._last_episode_starts,  # type: ignore[arg-type]
        transition["values"],
        transition["log_probs"],
    )
    model._last_obs = transition["new_obs"]
    model._last_episode_starts = dones
    return True


def end_rollout(
    model: OnPolicyAlgorithm, callback: BaseCallback, new_obs: np.ndarray, dones: np.ndarray
) -> None:
    """``collect_rollouts``' end: the last values, returns and advantages, the callback."""
    with torch.no_grad():
        values = model.policy.predict_values(obs_as_tensor(new_obs, model.device))
    model.rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
    callback.update_locals({"new_obs": new_obs, "dones": dones, "values": values})
    callback.on_rollout_end()


def train_after_rollout(model: OnPolicyAlgorithm, steps: int) -> None:
    """``learn``'s training phase after a complete rollout of ``steps`` env steps."""
    model._update_current_progress_remaining(model.num_timesteps, steps)
    model.train()


def finish_learning(callback: BaseCallback) -> None:
    """``learn``'s end."""
    callback.on_training_end()
