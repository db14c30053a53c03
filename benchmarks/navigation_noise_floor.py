"""The best return a Gaussian policy can reach on Navigation2D, by its exploration noise.

The adaptation curves are measured on the episodes the stochastic policy collects (MAML's
protocol), so the noise itself costs return: near the goal every noisy step moves the point
away again, and an episode ends only within 0.01 of the goal. This script measures that floor
with the env's own dynamics (``envs.navigation.navigation_step``): the policy whose mean action
is the ideal one (straight to the goal, ``goal - position``, clipped by the env) plus Gaussian
noise of standard deviation ``sigma`` per coordinate, on the held-out test-split goals.

It explains the presets' numbers (benchmarks/RESULTS.md): with the navigation preset's noise
0.1 (log_std -2.3) no adapted policy can reach MAML's -3.3, however good its mean.

Usage: ``python -m benchmarks.navigation_noise_floor [--tasks 40] [--episodes 500]``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from envs.navigation import HORIZON, Navigation2DEnv, navigation_step

LOG_STDS = (-math.inf, -4.0, -3.5, -3.2, -3.0, -2.6, -2.38, -2.3, -1.6)


def noise_floor(goals: np.ndarray, sigma: float, episodes: int, seed: int) -> float:
    """Mean return of the ideal mean action plus Gaussian noise, over goals and episodes.

    Args:
        goals: Goal positions, shape ``(n_goals, 2)``.
        sigma: Standard deviation of the action noise per coordinate.
        episodes: Episodes per goal.
        seed: Seed of the noise.

    Returns:
        The mean undiscounted return of an episode of at most ``HORIZON`` steps.
    """
    rng = np.random.default_rng(seed)
    goal = np.repeat(goals, episodes, axis=0)
    position = np.zeros_like(goal)
    running = np.ones(len(goal), dtype=bool)
    returns = np.zeros(len(goal))
    for _ in range(HORIZON):
        action = goal - position + sigma * rng.standard_normal(goal.shape)
        new_position, reward, terminated = navigation_step(position, action, goal)
        returns += np.where(running, reward, 0.0)
        position = np.where(running[:, None], new_position, position)
        running &= ~terminated
    return float(returns.mean())


def main() -> None:
    """Print the floor for a range of log_std values as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40, help="test-split goals (default 40)")
    parser.add_argument("--episodes", type=int, default=500, help="episodes per goal")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tasks = Navigation2DEnv().task_split("test", args.tasks)
    goals = np.array([[task.goal_x, task.goal_y] for task in tasks])
    print("| log_std | noise | mean return of the ideal mean action |")
    print("|---|---|---|")
    for log_std in LOG_STDS:
        sigma = math.exp(log_std)
        floor = noise_floor(goals, sigma, args.episodes, args.seed)
        print(f"| {log_std:.2f} | {sigma:.3f} | {floor:.2f} |")


if __name__ == "__main__":
    main()
