"""Shared helpers of the benchmark suite: interleaved timing, robust statistics, Markdown.

Every benchmark compares alternatives side by side in one process, interleaving their repeats
(A, B, B, A, A, B, ...), and reports the median of the per-round ratios next to the raw medians:
on a shared, noisy machine absolute times mean little, ratios taken a few seconds apart much
more.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

QUICK_NOTE = (
    "> `--quick`: a smoke run with reduced sizes; the numbers below only show that the "
    "benchmark works, not how fast the code is."
)


def single_thread() -> None:
    """Give torch one intra-op thread, as every worker of the project does."""
    torch.set_num_threads(1)


@dataclasses.dataclass(frozen=True)
class Spread:
    """Median and spread of a sample.

    Attributes:
        median: The median.
        p25: First quartile.
        p75: Third quartile.
        low: Smallest value.
        high: Largest value.
        n: Sample size.
    """

    median: float
    p25: float
    p75: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarise ``values`` (at least one)."""
        if not values:
            raise ValueError("no values to summarise")
        ordered = sorted(values)
        if len(ordered) == 1:
            p25 = p75 = ordered[0]
        else:
            p25, _, p75 = statistics.quantiles(ordered, n=4, method="inclusive")
        return cls(statistics.median(ordered), p25, p75, ordered[0], ordered[-1], len(ordered))

    def describe(self, digits: int = 3) -> str:
        """``median (IQR p25-p75, range low-high, n rounds)``."""
        f = f"{{:.{digits}f}}"
        return (
            f"{f.format(self.median)} (IQR {f.format(self.p25)}-{f.format(self.p75)}, "
            f"range {f.format(self.low)}-{f.format(self.high)}, n={self.n})"
        )


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per-round ratios ``numerators[i] / denominators[i]``."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators for {len(denominators)} denominators")
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def interleave(
    candidates: Mapping[str, Callable[[], float]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Run every candidate once per round, in an order that alternates between rounds.

    Round ``r`` runs the candidates rotated by ``r`` (A B, B A, A B, ... for two), so slow
    drifts of the machine hit all candidates alike.

    Args:
        candidates: Name -> a callable that does one round's work and returns its measurement
            (e.g. seconds).
        rounds: Measured rounds.
        warmup: Rounds run first and discarded.

    Returns:
        Name -> the measurements of the measured rounds, in round order.
    """
    names = list(candidates)
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            value = candidates[name]()
            if index >= warmup:
                results[name].append(value)
    return results


def timed(work: Callable[[], object]) -> Callable[[], float]:
    """Wrap ``work`` into a callable returning its wall time in seconds."""

    def run() -> float:
        start = time.perf_counter()
        work()
        return time.perf_counter() - start

    return run


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    """``**met**`` or ``**NOT met**`` for ``value`` against ``target``."""
    met = value >= target if higher_is_better else value <= target
    return "**met**" if met else "**NOT met**"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def number(value: float, digits: int = 0) -> str:
    """A number with thousands separators."""
    return f"{value:,.{digits}f}"


@contextlib.contextmanager
def quiet_mujoco() -> Iterator[None]:
    """Silence MuJoCo's deprecation notice about Gymnasium's half_cheetah.xml while building."""
    import mujoco

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(lambda message: None)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def read_status(pid: int | str = "self") -> dict[str, int]:
    """The ``Vm*`` and ``Rss*`` lines of ``/proc/<pid>/status``, in bytes (empty if gone)."""
    try:
        with open(f"/proc/{pid}/status") as file:
            lines = file.read().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if key.startswith(("Vm", "Rss")) and len(parts) == 2 and parts[1] == "kB":
            values[key] = int(parts[0]) * 1024
    return values


def mib(value: float) -> str:
    """Bytes as MiB."""
    return f"{value / 2**20:,.0f} MiB"


def cpu_count() -> int:
    """CPUs this process may use."""
    return len(os.sched_getaffinity(0))
