"""Serial vs Ray backend with 2 workers: wall time of a meta-iteration, in steady state.

For each family (``navigation`` and ``cheetah-vel`` presets, meta-batch 8), two ``MetaState``
copies from ``reptile_rl.reptile.initial_state`` advance side by side: each round runs one
``reptile_rl.reptile.meta_step`` with a ``SerialBackend`` and one with a ``RayBackend(2)``, in
alternating order, both backends staying alive. Each backend's first iteration (building its
learners; for Ray, starting the actors) is skipped. Speed-up = serial time / Ray time, per round.
Target >= 1.7x with 2 workers. Ray is shut down at the end.

Usage: ``python -m benchmarks.ray_scaling [--quick] [--rounds R] [--meta-batch-size M]
[--families navigation,cheetah-vel]``.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import (
    QUICK_NOTE,
    Spread,
    cpu_count,
    interleave,
    number,
    ratios,
    single_thread,
    table,
    verdict,
)
from reptile_rl import load_config
from reptile_rl.config import Config
from reptile_rl.parallel import Backend, RayBackend, SerialBackend
from reptile_rl.reptile import MetaState, initial_state, meta_step

WORKERS = 2
TARGET = 1.7
FAMILIES = ("navigation", "cheetah-vel")
# Quick mode shrinks the inner loop (for the cheetah also the number of envs, hence the batch;
# the baselines' batch too, which must fit in their rollout of the same 4 envs to validate).
QUICK_OVERRIDES = {
    "navigation": ["inner.updates=1", "inner.n_epochs=4"],
    "cheetah-vel": [
        "inner.updates=1",
        "inner.n_epochs=4",
        "inner.n_envs=4",
        "inner.batch_size=400",
        "baseline.inner.batch_size=400",
    ],
}


def make_config(family: str, meta_batch_size: int, quick: bool) -> Config:
    """The family's preset with ``meta_batch_size`` tasks (and quick-mode reductions)."""
    overrides = [f"outer.meta_batch_size={meta_batch_size}"]
    if quick:
        overrides += QUICK_OVERRIDES[family]
    return load_config(family, overrides)


def scaling(family: str, rounds: int, meta_batch_size: int, quick: bool) -> tuple[list[str], float]:
    """Benchmark one family; return its table row and the median speed-up."""
    config = make_config(family, meta_batch_size, quick)
    initial = initial_state(config)
    states: dict[str, MetaState] = {"serial": initial, "ray": initial}
    backends: dict[str, Backend] = {"serial": SerialBackend(), "ray": RayBackend(WORKERS)}

    def step(name: str) -> float:
        start = time.perf_counter()
        states[name], _ = meta_step(config, states[name], backends[name])
        return time.perf_counter() - start

    try:
        times = interleave({"serial": lambda: step("serial"), "ray": lambda: step("ray")}, rounds)
    finally:
        for backend in backends.values():
            backend.close()
    speedup = Spread.of(ratios(times["serial"], times["ray"]))
    steps = states["serial"].env_steps // max(states["serial"].iteration, 1)
    row = [
        f"`{family}` ({config.env.id}, {config.inner.n_envs} envs, {config.inner.updates} updates)",
        number(steps),
        f"{Spread.of(times['serial']).median:.2f}",
        f"{Spread.of(times['ray']).median:.2f}",
        f"**{speedup.median:.2f}x** (IQR {speedup.p25:.2f}-{speedup.p75:.2f})",
        verdict(speedup.median, TARGET, higher_is_better=True),
    ]
    return row, speedup.median


def run(
    quick: bool,
    rounds: int | None = None,
    meta_batch_size: int | None = None,
    families: tuple[str, ...] = FAMILIES,
) -> str:
    """Run benchmark 3 and return its Markdown section.

    Args:
        quick: Small sizes for a smoke run.
        rounds: Measured rounds per family (after one warm-up round).
        meta_batch_size: Tasks per meta-iteration.
        families: Presets to benchmark.
    """
    import ray

    single_thread()
    rounds = rounds or (2 if quick else 4)
    meta_batch_size = meta_batch_size or (4 if quick else 8)
    if rounds < 1:
        raise ValueError(f"--rounds must be at least 1, got {rounds}")
    rows = []
    try:
        for family in families:
            rows.append(scaling(family, rounds, meta_batch_size, quick)[0])
    finally:
        ray.shutdown()
    parts = ["## 3. Ray scaling (serial vs `RayBackend(2)`)"]
    if quick:
        overrides = "; ".join(f"{k}: {', '.join(v)}" for k, v in QUICK_OVERRIDES.items())
        parts.append(f"{QUICK_NOTE} Quick mode also sets {overrides}.")
    parts += [
        f"Meta-batch {meta_batch_size}; {rounds} interleaved rounds per family after one "
        "warm-up round (builds the serial learner, starts the Ray actors), each round one "
        "`meta_step` per backend, both backends alive throughout. Machine: "
        f"{cpu_count()} CPUs usable by this process.",
        table(
            [
                "family",
                "env steps per iteration",
                "median serial s",
                f"median Ray ({WORKERS} workers) s",
                "speed-up (median of per-round ratios)",
                f"target >= {TARGET}x",
            ],
            rows,
        ),
    ]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--rounds", type=int, help="measured rounds per family")
    parser.add_argument("--meta-batch-size", type=int, help="tasks per meta-iteration")
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help="comma-separated presets to benchmark"
    )
    args = parser.parse_args()
    families = tuple(name for name in args.families.split(",") if name)
    print(run(args.quick, args.rounds, args.meta_batch_size, families))


if __name__ == "__main__":
    main()
