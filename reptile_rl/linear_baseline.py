"""MAML's per-rollout linear feature baseline for advantages (Duan et al. 2016, rllab).

In an adaptation's first update the critic is the meta-initialised one: it knows nothing of
the new task, so advantages computed from it are biased toward what is good *on average*.
MAML avoids this by fitting, on every batch of trajectories, a linear regression of the
returns-to-go on features of the state and of time (rllab's ``LinearFeatureBaseline``), and
using it as the baseline. This module computes those values for an SB3 rollout buffer.

All functions are pure NumPy on arrays shaped like SB3's ``RolloutBuffer``: ``(n_steps, n_envs,
...)``, where ``episode_starts[s, j]`` marks the first step of an episode.
"""

from __future__ import annotations

import numpy as np


def time_indices(episode_starts: np.ndarray) -> np.ndarray:
    """Steps since the start of the current episode, per buffer entry (the first entry is 0)."""
    times = np.zeros(episode_starts.shape, dtype=np.int64)
    for step in range(1, len(episode_starts)):
        times[step] = np.where(episode_starts[step] > 0, 0, times[step - 1] + 1)
    return times


def features(observations: np.ndarray, times: np.ndarray, horizon: int) -> np.ndarray:
    """Rllab's features: clipped obs, their squares, t, t^2, t^3 (t in horizons) and 1."""
    obs = np.clip(observations.reshape(*times.shape, -1), -10, 10)
    t = (times / horizon)[..., None]
    ones = np.ones_like(t)
    return np.concatenate([obs, obs**2, t, t**2, t**3, ones], axis=-1)


def returns_to_go(
    rewards: np.ndarray, episode_starts: np.ndarray, last_dones: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Discounted returns-to-go within each episode, and which entries have exact ones.

    An entry's return is exact when its episode ended inside the buffer (an episode start
    follows it, or the last step ended it); an episode cut off by the end of the buffer has
    only a partial return.

    Args:
        rewards: ``(n_steps, n_envs)`` rewards.
        episode_starts: ``(n_steps, n_envs)``, 1 at the first step of an episode.
        last_dones: ``(n_envs,)``, whether the last step ended an episode.
        gamma: Discount factor.

    Returns:
        ``(returns, complete)``, both ``(n_steps, n_envs)``.
    """
    # ends_after[s] is true when the episode of entry s ends at s (the next entry starts one).
    ends_after = np.concatenate([episode_starts[1:] > 0, (last_dones > 0)[None]], axis=0)
    returns = np.zeros(rewards.shape)
    complete = np.zeros(rewards.shape, dtype=bool)
    following = np.zeros(rewards.shape[1])
    seen_end = np.zeros(rewards.shape[1], dtype=bool)
    for step in reversed(range(len(rewards))):
        following = np.where(ends_after[step], 0.0, following)
        seen_end |= ends_after[step]
        returns[step] = rewards[step] + gamma * following
        complete[step] = seen_end
        following = returns[step]
    return returns, complete


def fit(design: np.ndarray, targets: np.ndarray, regularisation: float = 1e-5) -> np.ndarray:
    """Ridge regression weights; the regularisation grows tenfold until the solve is finite."""
    gram = design.T @ design
    rhs = design.T @ targets
    identity = np.eye(len(gram))
    for _ in range(5):
        weights = np.linalg.lstsq(gram + regularisation * identity, rhs, rcond=None)[0]
        if np.all(np.isfinite(weights)):
            return np.asarray(weights)
        regularisation *= 10
    return np.zeros(len(gram))


def linear_baseline(
    observations: np.ndarray,
    rewards: np.ndarray,
    episode_starts: np.ndarray,
    last_observations: np.ndarray,
    last_dones: np.ndarray,
    gamma: float,
    horizon: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline values for a rollout, fitted on its own completed episodes.

    Args:
        observations: ``(n_steps, n_envs, obs_dim)``.
        rewards: ``(n_steps, n_envs)``.
        episode_starts: ``(n_steps, n_envs)``.
        last_observations: ``(n_envs, obs_dim)``, the observations after the last step.
        last_dones: ``(n_envs,)``, whether the last step ended an episode.
        gamma: Discount factor.
        horizon: Episode length, the time unit of the features.

    Returns:
        ``(values, last_values)``: the baseline for every entry, and for the observations
        after the last step (0 where an episode just ended).
    """
    times = time_indices(episode_starts)
    design = features(observations, times, horizon)
    returns, complete = returns_to_go(rewards, episode_starts, last_dones, gamma)
    ended_last = last_dones > 0
    if not complete.any():
        return np.zeros(rewards.shape), np.zeros(rewards.shape[1])
    weights = fit(design[complete], returns[complete])
    values = design @ weights
    last_times = np.where(ended_last, 0, times[-1] + 1)
    last_design = features(last_observations[None], last_times[None], horizon)[0]
    last_values = np.where(ended_last, 0.0, last_design @ weights)
    return values, last_values
