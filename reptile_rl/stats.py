"""Confidence intervals for mean returns over tasks (Student's t, no SciPy needed)."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence


def _student_t_pdf(t: float, dof: float) -> float:
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    return math.exp(log_norm - (dof + 1) / 2 * math.log1p(t * t / dof))


def student_t_cdf(t: float, dof: float) -> float:
    """CDF of Student's t distribution, by Simpson's rule on the density (error < 1e-9).

    The substitution ``t = tan(u)`` maps the infinite tail onto a finite, smooth integrand,
    so even one degree of freedom (the Cauchy distribution) integrates accurately.
    """
    if dof <= 0:
        raise ValueError(f"dof must be positive, got {dof}")
    upper = math.atan(abs(t))
    steps = 2000  # even, for Simpson's rule
    width = upper / steps
    total = 0.0
    for i in range(steps + 1):
        u = i * width
        weight = 1 if i in (0, steps) else (4 if i % 2 else 2)
        total += weight * _student_t_pdf(math.tan(u), dof) / math.cos(u) ** 2
    half = total * width / 3
    return 0.5 + half if t >= 0 else 0.5 - half


@functools.cache  # a report asks for the same few quantiles many times; each costs 0.1 s
def student_t_quantile(probability: float, dof: float) -> float:
    """Inverse CDF of Student's t, by bisection on :func:`student_t_cdf` (error < 1e-7)."""
    if not 0 < probability < 1:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    if probability < 0.5:
        return -student_t_quantile(1 - probability, dof)
    low, high = 0.0, 1.0
    while student_t_cdf(high, dof) < probability:
        high *= 2
    while high - low > 1e-8:
        middle = (low + high) / 2
        if student_t_cdf(middle, dof) < probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@dataclasses.dataclass(frozen=True)
class Summary:
    """Mean of a sample with its t-based confidence interval.

    Attributes:
        mean: Sample mean.
        std: Sample standard deviation (``ddof=1``; 0 for a single value).
        low: Lower end of the confidence interval (NaN for fewer than 2 values).
        high: Upper end of the confidence interval (NaN for fewer than 2 values).
        n: Sample size.
        level: Confidence level, e.g. 0.95.
    """

    mean: float
    std: float
    low: float
    high: float
    n: int
    level: float


def summarize(values: Sequence[float], level: float = 0.95) -> Summary:
    """Mean and two-sided ``level`` confidence interval ``mean +- t * std / sqrt(n)``.

    Raises:
        ValueError: For an empty sample or a level outside (0, 1).
    """
    n = len(values)
    if n == 0:
        raise ValueError("cannot summarize an empty sample")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    mean = math.fsum(values) / n
    if n == 1:
        return Summary(mean, 0.0, math.nan, math.nan, 1, level)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half_width = student_t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return Summary(mean, std, mean - half_width, mean + half_width, n, level)
