"""What exploration noise costs on Navigation2D: a straight-to-the-goal controller plus noise.

The adaptation curves are measured on the episodes the stochastic policy collects (MAML's
protocol), so the noise itself costs return: near the goal every noisy step moves the point
away again, and an episode ends only within 0.01 of the goal. This script measures that cost
with the env's own dynamics (``reptile_rl.envs.navigation.navigation_step``) for the controller
whose mean action goes straight to the goal (``goal - position``, clipped by the env), plus
Gaussian noise of standard deviation ``sigma`` per coordinate, on the held-out test-split goals.

It is a reference, not a bound: a policy can do somewhat better under the same noise (e.g. by
saturating its actions, which the env's clipping makes deterministic). benchmarks/ABLATIONS.md
compares it with the navigation preset's adapted policies.

Usage: ``python -m benchmarks.navigation_noise_cost [--tasks 40] [--task-seed 0]``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from reptile_rl.envs.navigation import HORIZON, Navigation2DEnv, navigation_step

LOG_STDS = (-math.inf, -4.0, -3.5, -3.25, -3.0, -2.6, -2.38, -2.3, -1.6)


def noise_cost(goals: np.ndarray, sigma: float, episodes: int, seed: int) -> float:
    """Mean return of the straight-to-the-goal mean action plus Gaussian noise.

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
    """Print the mean return for a range of log_std values as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40, help="test-split goals (default 40)")
    parser.add_argument(
        "--task-seed", type=int, default=0, help="evaluation seed whose goals to use (default 0)"
    )
    parser.add_argument("--episodes", type=int, default=500, help="episodes per goal")
    parser.add_argument("--seed", type=int, default=0, help="seed of the action noise")
    args = parser.parse_args()
    # The held-out goals `reptile-rl evaluate --tasks N --seed S` adapts to.
    tasks = Navigation2DEnv().sample_tasks(args.tasks, seed=args.task_seed, split="test")
    goals = np.array([[task.goal_x, task.goal_y] for task in tasks])
    print("| log_std | noise | mean return, straight to the goal plus noise |")
    print("|---|---|---|")
    for log_std in LOG_STDS:
        sigma = math.exp(log_std)
        ret = noise_cost(goals, sigma, args.episodes, args.seed)
        print(f"| {log_std:.2f} | {sigma:.3f} | {ret:.2f} |")


if __name__ == "__main__":
    main()
