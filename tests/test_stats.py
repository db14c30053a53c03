"""Known answers for the confidence-interval maths (values from t tables)."""

import math

import pytest

from reptile_rl.stats import student_t_cdf, student_t_quantile, summarize


@pytest.mark.parametrize(
    ("dof", "quantile"),
    [
        (1, 12.7062047),
        (2, 4.3026527),
        (5, 2.5705818),
        (10, 2.2281389),
        (39, 2.0226909),
        (119, 1.9801014),
    ],
)
def test_t_quantile_matches_tables(dof, quantile):
    assert student_t_quantile(0.975, dof) == pytest.approx(quantile, abs=2e-6)


def test_t_cdf_known_values():
    assert student_t_cdf(0.0, 3) == 0.5
    assert student_t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-9)  # Cauchy: 1/2 + atan(1)/pi
    assert student_t_cdf(-1.0, 1) == pytest.approx(0.25, abs=1e-9)
    assert student_t_cdf(2.0, 2) == pytest.approx(0.5 + 1 / math.sqrt(6), abs=1e-9)


def test_quantile_is_symmetric_and_approaches_the_normal():
    assert student_t_quantile(0.025, 7) == pytest.approx(-student_t_quantile(0.975, 7))
    assert student_t_quantile(0.975, 10_000) == pytest.approx(1.9602012, abs=1e-6)
    assert student_t_quantile(0.975, 1e7) == pytest.approx(1.9599640, abs=1e-6)  # normal


def test_summarize_known_answer():
    # mean 2.5, sample std sqrt(5/3); half width = t(0.975, 3) * std / 2 = 3.182446 * 0.645497.
    summary = summarize([1.0, 2.0, 3.0, 4.0])
    assert summary.mean == 2.5
    assert summary.std == pytest.approx(math.sqrt(5 / 3))
    half = 3.1824463 * math.sqrt(5 / 3) / 2
    assert summary.low == pytest.approx(2.5 - half, abs=1e-6)
    assert summary.high == pytest.approx(2.5 + half, abs=1e-6)
    assert summary.n == 4


def test_summarize_edge_cases():
    single = summarize([-3.0])
    assert single.mean == -3.0 and math.isnan(single.low) and math.isnan(single.high)
    constant = summarize([2.0, 2.0, 2.0])
    assert constant.low == constant.high == 2.0
    with pytest.raises(ValueError, match="empty"):
        summarize([])
    with pytest.raises(ValueError, match="level"):
        summarize([1.0, 2.0], level=1.5)
