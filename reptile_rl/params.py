"""Pure parameter arithmetic on named arrays: the whole of Reptile's maths.

Parameters are ``dict[str, np.ndarray]`` (a policy's ``state_dict`` as NumPy). Every function
here is pure -- no SB3, no torch, no I/O -- and returns new arrays, so each has a known-answer
test. Sums run in a fixed order (the order of the list given), which keeps results bit-identical
whatever the number of workers that produced the inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

Params = dict[str, np.ndarray]
T = TypeVar("T")


def subtract(a: Params, b: Params) -> Params:
    """Return ``a - b``, name by name."""
    return {name: a[name] - b[name] for name in a}


def add(a: Params, b: Params) -> Params:
    """Return ``a + b``, name by name."""
    return {name: a[name] + b[name] for name in a}


def scale(a: Params, factor: float) -> Params:
    """Return ``factor * a``, keeping each array's dtype."""
    return {name: (a[name] * factor).astype(a[name].dtype) for name in a}


def average(params: Sequence[Params]) -> Params:
    """Return the mean of several parameter sets, summed in list order."""
    if not params:
        raise ValueError("cannot average an empty list of parameters")
    total = {name: value.copy() for name, value in params[0].items()}
    for other in params[1:]:
        for name in total:
            total[name] += other[name]
    return {name: (value / len(params)).astype(value.dtype) for name, value in total.items()}


def all_finite(params: Params) -> bool:
    """Whether every value is finite (no NaN or infinity)."""
    return all(bool(np.isfinite(value).all()) for value in params.values())


def select(names: Iterable[str], exclude: Sequence[str]) -> list[str]:
    """Return the names that match none of the ``exclude`` regular expressions (``re.search``)."""
    patterns = [re.compile(pattern) for pattern in exclude]
    return [name for name in names if not any(p.search(name) for p in patterns)]


def of_update(values: Sequence[T], update: int) -> T:
    """The value of inner update ``update`` (from 0): ``values[update]``, the last one repeating."""
    return values[min(update, len(values) - 1)]


def linear_schedule(start: float, end: float, step: int, total: int, hold: int = 0) -> float:
    """Stay at ``start`` up to step ``hold``, then anneal linearly to ``end`` at ``total - 1``."""
    if step <= hold or total - 1 <= hold:
        return start
    return start + (end - start) * (step - hold) / (total - 1 - hold)


@dataclass(frozen=True)
class AdamState:
    """Moment estimates of the outer Adam optimizer (Kingma and Ba 2015).

    Attributes:
        step: Number of updates taken so far.
        first_moment: Exponential average of gradients, per parameter.
        second_moment: Exponential average of squared gradients, per parameter.
    """

    step: int
    first_moment: Params
    second_moment: Params

    @classmethod
    def zeros_like(cls, params: Params) -> AdamState:
        """A fresh state for ``params``."""
        zeros = {name: np.zeros_like(value) for name, value in params.items()}
        return cls(0, zeros, {name: value.copy() for name, value in zeros.items()})


def adam_step(
    params: Params,
    gradient: Params,
    state: AdamState,
    learning_rate: float,
    betas: tuple[float, float] = (0.9, 0.999),
    epsilon: float = 1e-8,
) -> tuple[Params, AdamState]:
    """One Adam update of ``params`` against ``gradient``, with bias correction.

    Returns:
        The new parameters and the new optimizer state.
    """
    beta1, beta2 = betas
    step = state.step + 1
    new_params: Params = {}
    first: Params = {}
    second: Params = {}
    for name, value in params.items():
        grad = gradient[name]
        first[name] = (beta1 * state.first_moment[name] + (1 - beta1) * grad).astype(value.dtype)
        second[name] = (beta2 * state.second_moment[name] + (1 - beta2) * grad * grad).astype(
            value.dtype
        )
        corrected_first = first[name] / (1 - beta1**step)
        corrected_second = second[name] / (1 - beta2**step)
        update = learning_rate * corrected_first / (np.sqrt(corrected_second) + epsilon)
        new_params[name] = (value - update).astype(value.dtype)
    return new_params, AdamState(step, first, second)


def reptile_update(
    theta: Params,
    adapted: Sequence[Params],
    step_size: float,
    meta_learned: Sequence[str] | None = None,
    adam: AdamState | None = None,
    adam_betas: tuple[float, float] = (0.9, 0.999),
) -> tuple[Params, AdamState | None]:
    """Reptile's outer update (Nichol, Achiam and Schulman 2018, Algorithm 2, batched).

    Plain: ``theta <- theta + step_size * mean_i(phi_i - theta)``. With ``adam``, the Reptile
    direction is treated as a negative gradient, ``g = -mean_i(phi_i - theta)``, and fed to
    Adam with learning rate ``step_size`` (the paper's remark that Reptile can use any
    gradient-based optimizer on this direction).

    Args:
        theta: Current meta-parameters.
        adapted: Adapted parameters ``phi_i``, one per task of the meta-batch.
        step_size: The outer step size ``eps`` (or Adam's learning rate).
        meta_learned: Names to update; others keep their value. ``None`` updates all.
        adam: Adam state, to use Adam instead of plain interpolation.
        adam_betas: Adam's moment decay rates.

    Returns:
        The new meta-parameters and the new Adam state (``None`` without Adam).
    """
    steps = [subtract(phi, theta) for phi in adapted]
    return outer_step(theta, steps, step_size, meta_learned, adam, adam_betas)


def outer_step(
    theta: Params,
    steps: Sequence[Params],
    step_size: float,
    meta_learned: Sequence[str] | None = None,
    adam: AdamState | None = None,
    adam_betas: tuple[float, float] = (0.9, 0.999),
) -> tuple[Params, AdamState | None]:
    """Move theta along the mean of per-task steps: ``theta + step_size * mean_i(steps_i)``.

    With ``adam``, ``-mean_i(steps_i)`` is Adam's gradient and ``step_size`` its learning rate.
    Arguments and return value as :func:`reptile_update`, whose steps are ``phi_i - theta``;
    first-order MAML's are the last inner updates ``phi_K - phi_(K-1)``.
    """
    names = list(theta) if meta_learned is None else list(meta_learned)
    current = {name: theta[name] for name in names}
    direction = average([{name: step[name] for name in names} for step in steps])
    if adam is None:
        updated, new_adam = add(current, scale(direction, step_size)), None
    else:
        updated, new_adam = adam_step(current, scale(direction, -1.0), adam, step_size, adam_betas)
    return {**theta, **updated}, new_adam


def rate_hypergradient(
    rates: Sequence[Params],
    step_gradients: Sequence[Params],
    post_gradient: Params,
    per_element: bool,
) -> list[Params]:
    """First-order Meta-SGD hypergradient of the post-adaptation objective w.r.t. log-rates.

    The inner updates are ``phi_(k+1) = phi_k + alpha_k * g_k`` (``g`` an objective's gradient;
    Li et al. 2017, Meta-SGD). To first order (later gradients' dependence on ``alpha_k``
    dropped, as first-order MAML drops it) ``dJ(phi_K) / dalpha_k = g(phi_K) * g_k``, so with
    ``alpha_k = exp(rho_k)``: ``dJ / drho_k = alpha_k * g(phi_K) * g_k``. The same holds for the
    gradients of a loss ``-J`` (both factors change sign).

    Args:
        rates: ``alpha_k`` of each update, per parameter name (scalars for per-tensor rates).
        step_gradients: ``g_k``, the gradient each update stepped along.
        post_gradient: ``g(phi_K)``, the gradient at the adapted parameters.
        per_element: Rates per element (else per tensor: summed over each tensor's elements).

    Returns:
        ``dJ / drho_k`` per update, shaped like ``rates``.
    """
    result = []
    for rate, gradient in zip(rates, step_gradients, strict=True):
        update: Params = {}
        for name, alpha in rate.items():
            product = alpha * post_gradient[name] * gradient[name]
            total = product if per_element else np.full(np.shape(alpha), np.sum(product))
            update[name] = np.asarray(total, dtype=alpha.dtype)
        result.append(update)
    return result
