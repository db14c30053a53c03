"""Known answers for MAML's linear feature baseline."""

import numpy as np

from reptile_rl.linear_baseline import features, fit, linear_baseline, returns_to_go, time_indices

# Two envs, four steps. Env 0: an episode of 2 steps, then one cut off by the buffer's end.
# Env 1: one episode of 4 steps that ends exactly at the last step.
STARTS = np.array([[1, 1], [0, 0], [1, 0], [0, 0]], dtype=np.float32)
REWARDS = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
LAST_DONES = np.array([False, True])


def test_time_indices():
    assert time_indices(STARTS).tolist() == [[0, 0], [1, 1], [0, 2], [1, 3]]


def test_returns_to_go_known_answer():
    returns, complete = returns_to_go(REWARDS, STARTS, LAST_DONES, gamma=0.5)
    # Env 0: episode (1, 2) -> 1 + 0.5 * 2 = 2, 2; cut episode (3, 4) -> 3 + 2 = 5, 4.
    # Env 1: 1 + 0.5 (1 + 0.5 (1 + 0.5)) = 1.875, 1.75, 1.5, 1.
    np.testing.assert_allclose(returns[:, 0], [2.0, 2.0, 5.0, 4.0])
    np.testing.assert_allclose(returns[:, 1], [1.875, 1.75, 1.5, 1.0])
    assert complete[:, 0].tolist() == [True, True, False, False]
    assert complete[:, 1].tolist() == [True, True, True, True]


def test_features_layout():
    obs = np.arange(8, dtype=np.float32).reshape(4, 2, 1)
    phi = features(obs, time_indices(STARTS), horizon=2)
    assert phi.shape == (4, 2, 6)  # obs, obs^2, t, t^2, t^3, 1
    np.testing.assert_allclose(phi[3, 1], [7.0, 49.0, 1.5, 2.25, 3.375, 1.0])
    assert features(np.full((4, 2, 1), 50.0), time_indices(STARTS), 2)[0, 0, 0] == 10.0  # clipped


def test_fit_recovers_a_linear_function():
    rng = np.random.default_rng(0)
    design = np.column_stack([rng.normal(size=50), np.ones(50)])
    weights = fit(design, design @ np.array([2.0, -3.0]))
    np.testing.assert_allclose(weights, [2.0, -3.0], atol=1e-4)


def test_linear_baseline_is_exact_when_returns_are_linear_in_time():
    # Constant reward 1, gamma 1, one 4-step episode per env: return-to-go = 4 - t, which the
    # time features represent exactly; the observation carries no information (all zeros).
    starts = np.array([[1, 1], [0, 0], [0, 0], [0, 0]], dtype=np.float32)
    values, last = linear_baseline(
        observations=np.zeros((4, 2, 1)),
        rewards=np.ones((4, 2)),
        episode_starts=starts,
        last_observations=np.zeros((2, 1)),
        last_dones=np.array([True, True]),
        gamma=1.0,
        horizon=4,
    )
    np.testing.assert_allclose(values, [[4, 4], [3, 3], [2, 2], [1, 1]], atol=1e-3)
    assert last.tolist() == [0.0, 0.0]  # episodes ended: nothing follows


def test_no_complete_episode_gives_a_zero_baseline():
    values, last = linear_baseline(
        np.zeros((2, 1, 1)),
        np.ones((2, 1)),
        np.array([[1.0], [0.0]]),
        np.zeros((1, 1)),
        np.array([False]),
        0.9,
        10,
    )
    assert not values.any() and not last.any()
