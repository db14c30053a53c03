"""Learner build cost: what building an inner learner costs, next to what reusing one costs.

Every worker builds one learner and reuses it for every task (``reptile_rl.learners``); this
measures what that saves. For each preset (``navigation`` and ``cheetah-vel``, as
``reptile_rl.load_config(preset)`` gives them), in one fresh child process (so that its first
build is the process's first, whatever ran before, e.g. in ``run_all``) with one torch thread:

- first build: the preset's first ``make_learner(config)`` in the process (the process's very
  first build also pays torch's and SB3's one-time set-up; the imports are done before);
- later build: ``make_learner(config)`` again (each learner closed after timing);
- model alone: ``ALGORITHMS[config.inner.algorithm]("MlpPolicy", env, **algorithm_kwargs(config))``
  on a VecEnv built once beforehand;
- VecEnv alone: ``make_vec_env(config.env.id, config.env.kwargs, config.inner.n_envs)`` (closed
  after timing);
- ``learner.parameters()`` and ``learner.load(params)`` with ``params`` from
  ``learner.parameters()`` (each the mean of a batch of calls per round);
- for context, one ``learner.update()`` (a rollout of ``n_envs`` episodes and the training
  phase), every round from the same parameters, task and seed.

All but the first build run interleaved, one of each per round in rotating order, after one
warm-up round. Absolute times drift on a shared machine, so the headline is ratios: the median
of the per-round ratios of measurements taken side by side. Garbage is collected before every
timed call (``gc.collect()``, untimed): a closed learner holds reference cycles, so otherwise a
build could pay for freeing an earlier one's envs (about 40 ms for 20 MuJoCo envs).

For reference, measured before the learner refactor (``InnerLoop``): first build about 0.86 s;
later navigation builds about 2 ms; PPO alone on a built env about 1.5 ms; the 20 cheetah envs
about 55 ms; ``load_state_dict`` about 0.2 ms.

Usage: ``python -m benchmarks.learner_build_cost [--quick] [--rounds N]
[--presets navigation,cheetah-vel] [--in-process]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import QUICK_NOTE, Spread, interleave, ratios, single_thread, table
from reptile_rl import load_config, make_learner
from reptile_rl.config import Config
from reptile_rl.families import family_task_type
from reptile_rl.learners.sb3_onpolicy import ALGORITHMS, OnPolicyLearner, algorithm_kwargs
from reptile_rl.vec_env import make_vec_env

PRESETS = ("navigation", "cheetah-vel")
ROOT = Path(__file__).resolve().parent.parent
CALLS_PER_ROUND = 20
"""Calls of ``parameters()`` / ``load()`` timed together per round (each well under 1 ms)."""

LATER_BUILD = "later build"
MODEL = "model alone"
VEC_ENV = "VecEnv alone"
PARAMETERS = "parameters()"
LOAD = "load(params)"
UPDATE = "one update()"


@dataclasses.dataclass(frozen=True)
class BuildCost:
    """The measurements of one preset.

    Attributes:
        preset: The preset's name.
        config: Its configuration.
        first: Seconds of the preset's first ``make_learner`` in this process.
        times: Candidate -> seconds per measured round, in round order.
    """

    preset: str
    config: Config
    first: float
    times: dict[str, list[float]]

    def median(self, name: str) -> float:
        """Median seconds of a candidate."""
        return Spread.of(self.times[name]).median

    def ratio(self, numerator: str, denominator: str) -> Spread:
        """Per-round ratios ``numerator / denominator``."""
        return Spread.of(ratios(self.times[numerator], self.times[denominator]))


def measure(preset: str, rounds: int) -> BuildCost:
    """Time the builds, the parameter copies and one update of ``preset``'s learner."""
    config = load_config(preset)
    gc.collect()
    start = time.perf_counter()
    learner = make_learner(config)
    first = time.perf_counter() - start
    assert isinstance(learner, OnPolicyLearner)  # its rollouts and updates are timed below
    env = make_vec_env(config.env.id, config.env.kwargs, config.inner.n_envs)
    algorithm = ALGORITHMS[config.inner.algorithm]
    theta = learner.parameters()
    task = family_task_type(config.env.id).sample(1, seed=0)[0]
    learner.set_tasks(task)

    # Every candidate collects garbage before its clock starts (see the module's docstring).
    def later_build() -> float:
        gc.collect()
        start = time.perf_counter()
        built = make_learner(config)
        seconds = time.perf_counter() - start
        built.close()
        return seconds

    def model_alone() -> float:
        gc.collect()
        start = time.perf_counter()
        algorithm("MlpPolicy", env, **algorithm_kwargs(config))
        return time.perf_counter() - start

    def vec_env_alone() -> float:
        gc.collect()
        start = time.perf_counter()
        built = make_vec_env(config.env.id, config.env.kwargs, config.inner.n_envs)
        seconds = time.perf_counter() - start
        built.close()
        return seconds

    def parameters() -> float:
        gc.collect()
        start = time.perf_counter()
        for _ in range(CALLS_PER_ROUND):
            learner.parameters()
        return (time.perf_counter() - start) / CALLS_PER_ROUND

    def load() -> float:
        gc.collect()
        start = time.perf_counter()
        for _ in range(CALLS_PER_ROUND):
            learner.load(theta)
        return (time.perf_counter() - start) / CALLS_PER_ROUND

    def update() -> float:
        # The same work every round: same parameters, task and seed.
        learner.load(theta)
        learner.seed(0)
        gc.collect()
        start = time.perf_counter()
        learner.update()
        return time.perf_counter() - start

    try:
        times = interleave(
            {
                LATER_BUILD: later_build,
                MODEL: model_alone,
                VEC_ENV: vec_env_alone,
                PARAMETERS: parameters,
                LOAD: load,
                UPDATE: update,
            },
            rounds,
        )
    finally:
        learner.close()
        env.close()
    return BuildCost(preset, config, first, times)


def _ms(seconds: float) -> str:
    """Milliseconds with about three significant digits."""
    value = seconds * 1e3
    digits = 0 if value >= 100 else 1 if value >= 10 else 2 if value >= 1 else 3
    return f"{value:,.{digits}f}"


def _ratio(spread: Spread) -> str:
    return f"**{spread.median:.3g}** (IQR {spread.p25:.3g}-{spread.p75:.3g})"


def _label(cost: BuildCost) -> str:
    config = cost.config
    return (
        f"`{cost.preset}` ({config.env.id}, {config.inner.algorithm}, "
        f"{config.inner.n_envs} envs, net {list(config.policy.net_arch)})"
    )


def markdown(costs: Sequence[BuildCost], rounds: int, quick: bool) -> str:
    """The section: ratios first (the headline), then the milliseconds."""
    ratio_rows = []
    for cost in costs:
        first_over_later = cost.first / cost.median(LATER_BUILD)
        ratio_rows.append(
            [
                _label(cost),
                _ratio(cost.ratio(LATER_BUILD, UPDATE)),
                _ratio(cost.ratio(MODEL, VEC_ENV)),
                _ratio(cost.ratio(VEC_ENV, LATER_BUILD)),
                _ratio(cost.ratio(MODEL, LATER_BUILD)),
                _ratio(cost.ratio(LATER_BUILD, LOAD)),
                f"{first_over_later:.3g}",
            ]
        )
    ms_rows = [
        [
            _label(cost),
            _ms(cost.first),
            *(_ms(cost.median(name)) for name in (LATER_BUILD, MODEL, VEC_ENV, PARAMETERS, LOAD)),
            _ms(cost.median(UPDATE)),
        ]
        for cost in costs
    ]
    first_preset = costs[0].preset if costs else "-"
    parts = ["## 5. Learner build cost"]
    if quick:
        parts.append(QUICK_NOTE)
    parts += [
        f"One fresh process, one torch thread; per preset the first `make_learner(config)`, then "
        f"{rounds} interleaved rounds after one warm-up round, each round one of: a later "
        "`make_learner(config)`, the SB3 model alone on an already built VecEnv "
        '(`ALGORITHMS[inner.algorithm]("MlpPolicy", env, **algorithm_kwargs(config))`), the '
        "VecEnv alone (`make_vec_env`, `inner.n_envs` envs), `learner.parameters()` and "
        f"`learner.load(params)` (each the mean of {CALLS_PER_ROUND} calls), and one "
        "`learner.update()` from the same parameters, task and seed; garbage collected "
        "(untimed) before every timed call.",
        "Ratios of measurements taken side by side (median of per-round ratios; first / later "
        "build divides the single first build by the median later build):",
        table(
            [
                "preset",
                "later build / one update",
                "model alone / VecEnv alone",
                "VecEnv alone / later build",
                "model alone / later build",
                "later build / load",
                "first build / later build",
            ],
            ratio_rows,
        ),
        "Median milliseconds (absolute times drift on a shared machine):",
        table(
            [
                "preset",
                "first build",
                "later build",
                "model alone",
                "VecEnv alone",
                "parameters()",
                "load(params)",
                "one update()",
            ],
            ms_rows,
        ),
        f"The first build of `{first_preset}` is the process's first: it also pays torch's and "
        "SB3's one-time set-up (imports excluded).",
    ]
    return "\n\n".join(parts) + "\n"


def _checked(quick: bool, rounds: int | None, presets: Sequence[str]) -> int:
    """The number of rounds to run; raise ``ValueError`` for impossible arguments."""
    rounds = rounds or (3 if quick else 30)
    if rounds < 1:
        raise ValueError(f"--rounds must be at least 1, got {rounds}")
    if not presets:
        raise ValueError("no presets to measure")
    return rounds


def run_in_process(quick: bool, rounds: int | None = None, presets: Sequence[str] = PRESETS) -> str:
    """Measure in this process and return the Markdown section.

    The first build is the process's first only if nothing built a learner here before.
    """
    single_thread()
    rounds = _checked(quick, rounds, presets)
    costs = [measure(preset, rounds) for preset in presets]
    return markdown(costs, rounds, quick)


def run(quick: bool, rounds: int | None = None, presets: Sequence[str] = PRESETS) -> str:
    """Run benchmark 5 in a fresh child process and return its Markdown section.

    Args:
        quick: Few rounds (a smoke run).
        rounds: Measured rounds per preset (after one warm-up round).
        presets: Presets to measure, in order (the first pays the one-time set-up).

    Raises:
        RuntimeError: If the child process fails (with the end of its stderr).
    """
    rounds = _checked(quick, rounds, presets)
    command = [
        sys.executable,
        "-m",
        "benchmarks.learner_build_cost",
        "--in-process",
        "--rounds",
        str(rounds),
        "--presets",
        ",".join(presets),
        *(["--quick"] if quick else []),
    ]
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    sys.stderr.write(process.stderr)
    if process.returncode != 0:
        tail = "\n".join(process.stderr.splitlines()[-20:])
        raise RuntimeError(
            f"the measuring process failed (exit code {process.returncode}):\n{tail}"
        )
    return process.stdout


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few rounds (smoke run)")
    parser.add_argument("--rounds", type=int, help="measured rounds per preset (default 30)")
    parser.add_argument(
        "--presets", default=",".join(PRESETS), help="comma-separated presets to measure"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="measure in this process instead of a fresh child process",
    )
    args = parser.parse_args(argv)
    presets = tuple(name for name in args.presets.split(",") if name)
    if args.in_process:
        print(run_in_process(args.quick, args.rounds, presets), end="")
    else:
        print(run(args.quick, args.rounds, presets))


if __name__ == "__main__":
    main()
