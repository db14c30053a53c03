"""Known-answer tests for the parameter arithmetic and Reptile's outer update."""

import itertools

import numpy as np
import pytest

from reptile_rl import params
from reptile_rl.params import AdamState


def arrays(**values: list[float]) -> params.Params:
    return {name: np.array(v, dtype=np.float32) for name, v in values.items()}


def test_subtract_add_scale():
    a, b = arrays(w=[3.0, 5.0]), arrays(w=[1.0, 2.0])
    np.testing.assert_array_equal(params.subtract(a, b)["w"], [2.0, 3.0])
    np.testing.assert_array_equal(params.add(a, b)["w"], [4.0, 7.0])
    scaled = params.scale(a, 0.5)["w"]
    np.testing.assert_array_equal(scaled, [1.5, 2.5])
    assert scaled.dtype == np.float32


def test_average_is_the_mean_in_list_order():
    mean = params.average([arrays(w=[1.0, 0.0]), arrays(w=[2.0, 4.0]), arrays(w=[6.0, 2.0])])
    np.testing.assert_array_equal(mean["w"], [3.0, 2.0])
    with pytest.raises(ValueError, match="empty"):
        params.average([])


def test_of_update_repeats_the_last_value():
    rates = [0.042, 0.02, 0.008]
    assert [params.of_update(rates, k) for k in range(5)] == [0.042, 0.02, 0.008, 0.008, 0.008]
    assert params.of_update([0.1], 3) == 0.1


def test_inputs_are_not_modified():
    a = arrays(w=[1.0, 2.0])
    params.average([a, arrays(w=[3.0, 4.0])])
    params.reptile_update(a, [arrays(w=[0.0, 0.0])], 0.5)
    params.scale(a, 2.0)
    np.testing.assert_array_equal(a["w"], [1.0, 2.0])


def test_reptile_update_known_answer():
    # theta = 1; phi = 3 and 5: mean(phi - theta) = 3; eps 0.5 -> theta = 1 + 1.5 = 2.5.
    theta = arrays(w=[1.0], b=[0.0])
    phis = [arrays(w=[3.0], b=[2.0]), arrays(w=[5.0], b=[-4.0])]
    new, adam = params.reptile_update(theta, phis, 0.5)
    assert new["w"][0] == 2.5
    assert new["b"][0] == -0.5  # 0 + 0.5 * mean(2, -4)
    assert adam is None
    # eps = 1 moves theta to the average of the adapted parameters.
    full, _ = params.reptile_update(theta, phis, 1.0)
    assert full["w"][0] == 4.0


def test_reptile_update_only_touches_meta_learned_names():
    theta = arrays(w=[1.0], log_std=[-1.0])
    phis = [arrays(w=[3.0], log_std=[5.0])]
    new, _ = params.reptile_update(theta, phis, 1.0, meta_learned=["w"])
    assert new["w"][0] == 3.0
    assert new["log_std"][0] == -1.0


def test_outer_step_known_answer():
    # steps 2 and -4 average to -1; step size 3 -> theta = 1 - 3 = -2; b is not meta-learned.
    theta = arrays(w=[1.0], b=[0.5])
    steps = [arrays(w=[2.0], b=[7.0]), arrays(w=[-4.0], b=[7.0])]
    new, adam = params.outer_step(theta, steps, 3.0, meta_learned=["w"])
    assert new["w"][0] == -2.0
    assert new["b"][0] == 0.5
    assert adam is None
    # Reptile's update is the outer step along phi - theta.
    phis = [params.add(theta, step) for step in steps]
    assert new["w"][0] == params.reptile_update(theta, phis, 3.0, meta_learned=["w"])[0]["w"][0]


def test_adam_step_known_answer():
    # First step: m = 0.1 g, v = 0.001 g^2; bias-corrected m = g, v = g^2; update = lr * g/|g|.
    theta = arrays(w=[1.0, 1.0])
    gradient = arrays(w=[2.0, -0.5])
    new, state = params.adam_step(theta, gradient, AdamState.zeros_like(theta), 0.1, epsilon=0.0)
    np.testing.assert_allclose(new["w"], [0.9, 1.1], rtol=1e-6)
    assert state.step == 1
    np.testing.assert_allclose(state.first_moment["w"], [0.2, -0.05], rtol=1e-6)
    np.testing.assert_allclose(state.second_moment["w"], [0.004, 0.00025], rtol=1e-5)


def test_reptile_update_with_adam_moves_toward_the_adapted_parameters():
    theta = arrays(w=[0.0, 0.0])
    adam = AdamState.zeros_like(theta)
    new, adam = params.reptile_update(theta, [arrays(w=[1.0, -3.0])], 0.01, adam=adam)
    # Adam's first step has magnitude lr in the sign of the Reptile direction.
    np.testing.assert_allclose(new["w"], [0.01, -0.01], rtol=1e-4)
    assert adam is not None and adam.step == 1


def test_linear_schedule():
    assert params.linear_schedule(1.0, 0.0, 0, 5) == 1.0
    assert params.linear_schedule(1.0, 0.0, 4, 5) == 0.0
    assert params.linear_schedule(1.0, 0.0, 2, 5) == 0.5
    assert params.linear_schedule(0.3, 0.1, 0, 1) == 0.3


def test_linear_schedule_holds_the_start_then_anneals():
    # 90 iterations, held at 1 for 60: 1 up to iteration 60, 0 at 89, halfway at 74.5.
    schedule = [params.linear_schedule(1.0, 0.0, t, 90, hold=60) for t in range(90)]
    assert schedule[:61] == [1.0] * 61
    assert schedule[89] == 0.0
    assert schedule[75] == 1.0 - 15 / 29
    assert all(a > b for a, b in itertools.pairwise(schedule[60:]))
    # A run shorter than the hold (e.g. a smoke test of the preset) keeps the start.
    assert [params.linear_schedule(1.0, 0.0, t, 4, hold=60) for t in range(4)] == [1.0] * 4


def test_select_excludes_by_regex():
    names = ["log_std", "action_net.weight", "value_net.bias"]
    assert params.select(names, ["^log_std$"]) == ["action_net.weight", "value_net.bias"]
    assert params.select(names, ["value"]) == ["log_std", "action_net.weight"]
    assert params.select(names, []) == names


def test_all_finite():
    assert params.all_finite(arrays(w=[1.0]))
    assert not params.all_finite(arrays(w=[np.nan]))
    assert not params.all_finite(arrays(w=[1.0], b=[np.inf]))


def test_rate_hypergradient_known_answer_on_a_quadratic():
    # J(phi) = -0.5 * ||phi - c||^2, g(phi) = c - phi; one inner step phi_1 = theta + alpha * g.
    # theta = 0, c = (1, 2), alpha = 0.5: g_0 = (1, 2), phi_1 = (0.5, 1), g(phi_1) = (0.5, 1).
    # Exactly: J(phi_1) = -0.5 * (1 - alpha)^2 * ||c||^2, dJ/dalpha = (1 - alpha) * ||c||^2 = 2.5,
    # dJ/drho = alpha * 2.5 = 1.25 (one step: the first-order form is exact).
    theta, c, alpha = np.zeros(2), np.array([1.0, 2.0]), 0.5
    g0 = c - theta
    phi = theta + alpha * g0
    per_tensor = params.rate_hypergradient(
        [{"w": np.array(alpha)}], [{"w": g0}], {"w": c - phi}, per_element=False
    )
    assert per_tensor[0]["w"] == pytest.approx(1.25)
    elementwise = params.rate_hypergradient(
        [{"w": np.full(2, alpha)}], [{"w": g0}], {"w": c - phi}, per_element=True
    )
    np.testing.assert_allclose(elementwise[0]["w"], [0.25, 1.0])

    # Finite difference of the exact objective in rho = log(alpha).
    def objective(rho):
        return -0.5 * np.sum((theta + np.exp(rho) * g0 - c) ** 2)

    step = 1e-6
    numeric = (objective(np.log(alpha) + step) - objective(np.log(alpha) - step)) / (2 * step)
    assert per_tensor[0]["w"] == pytest.approx(numeric, rel=1e-6)


def test_rate_hypergradient_is_zero_when_the_post_gradient_is():
    zero = params.rate_hypergradient(
        [{"w": np.array(0.3)}, {"w": np.array(0.1)}],
        [{"w": np.ones(3)}, {"w": -np.ones(3)}],
        {"w": np.zeros(3)},
        per_element=False,
    )
    assert [z["w"] for z in zero] == [0.0, 0.0]
