"""Known answers for the Navigation2D noise-cost benchmark (benchmarks/navigation_noise_cost)."""

import numpy as np
import pytest

from benchmarks.navigation_noise_cost import noise_cost


def test_noiseless_ideal_policy_walks_straight_to_the_goal() -> None:
    # Goal (0.25, 0): steps to x = 0.1, 0.2 (clipped moves), then 0.25 ends the episode;
    # rewards -0.15, -0.05, 0.
    assert noise_cost(np.array([[0.25, 0.0]]), 0.0, episodes=3, seed=0) == pytest.approx(-0.2)


def test_noise_costs_return_and_is_seeded() -> None:
    goals = np.array([[0.3, -0.2], [-0.4, 0.1]])
    quiet = noise_cost(goals, 0.03, episodes=200, seed=0)
    noisy = noise_cost(goals, 0.1, episodes=200, seed=0)
    assert noisy < quiet - 2.0
    assert noise_cost(goals, 0.1, episodes=200, seed=0) == noisy
