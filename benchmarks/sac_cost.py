"""SAC's cost: a meta-iteration's adaptations with SAC against the PPO preset's, side by side.

One worker (serial, one torch thread) adapts the same tasks as a meta-iteration's jobs
(``inner.updates`` updates, the measurement after them) with the ``cheetah-vel`` preset (PPO, on
its default engine) and with a SAC configuration (``--sac``, default the first SAC row's); they
run interleaved after a warm-up round, and the headline is the median of the per-round ratios.
Both collect the same env steps per update (20 episodes of 200 steps); SAC then takes its
gradient steps on the task's buffer, and the time inside ``SAC.train`` says how much of its
adaptation they are.

Usage: ``python -m benchmarks.sac_cost [--quick] [--rounds N] [--jobs N] [--sac PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from stable_baselines3 import SAC

from benchmarks.common import QUICK_NOTE, Spread, interleave, ratios, single_thread, table, timed
from reptile_rl import load_config
from reptile_rl.config import Config, SACConfig
from reptile_rl.families import family_task_type
from reptile_rl.learners import AdaptJob, adapt_all, initial_parameters, make_learner

SAC_CONFIG = Path(__file__).resolve().parent / "configs" / "cheetah-vel-sac-S0.yaml"
SERIAL = ["parallel.backend=serial", "parallel.workers=1"]


def jobs_of(config: Config, count: int) -> list[AdaptJob]:
    """``count`` training tasks as a meta-iteration's jobs."""
    tasks = family_task_type(config.env.id).sample(count, seed=1)
    return [
        AdaptJob(task, seed=100 + i, updates=config.inner.updates, measure_final=True)
        for i, task in enumerate(tasks)
    ]


@contextlib.contextmanager
def train_timer(seconds: list[float]) -> Iterator[None]:
    """Within: the time spent in ``SAC.train`` (the gradient steps) is added to ``seconds``."""
    original = SAC.train

    def timed_train(self: SAC, *args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        original(self, *args, **kwargs)
        seconds[0] += time.perf_counter() - start

    with mock.patch.object(SAC, "train", timed_train):
        yield


def run(rounds: int, quick: bool, jobs: int, sac: Path = SAC_CONFIG) -> str:
    """Measure and return the Markdown section."""
    single_thread()
    configs = {"PPO (`cheetah-vel`)": load_config("cheetah-vel", SERIAL)}
    configs[f"SAC (`{sac.stem}`)"] = load_config(str(sac), SERIAL)
    count = 2 if quick else jobs
    work = {}
    steps = {}
    for name, config in configs.items():
        learner = make_learner(config)
        theta = initial_parameters(config, seed=0)
        tasks = jobs_of(config, count)
        thetas = [theta] * count
        steps[name] = sum(r.env_steps for r in adapt_all(learner, thetas, tasks))
        work[name] = functools.partial(adapt_all, learner, thetas, tasks)
    times = interleave({name: timed(job) for name, job in work.items()}, rounds)
    ppo, sac_name = list(configs)
    spent = [0.0]
    with train_timer(spent):
        start = time.perf_counter()
        work[sac_name]()
        whole = time.perf_counter() - start
    ratio = Spread.of(ratios(times[sac_name], times[ppo]))
    settings = configs[sac_name].inner
    if not isinstance(settings, SACConfig):
        raise ValueError(f"{sac}: inner.algorithm must be sac, got {settings.algorithm}")
    rows = [
        [
            name,
            count,
            f"{steps[name]:,}",
            f"{Spread.of(times[name]).median:.1f}",
            f"{steps[name] / Spread.of(times[name]).median:,.0f}",
        ]
        for name in configs
    ]
    lines = [
        "## 7. SAC against PPO: a meta-iteration's adaptations",
        "",
        f"`python -m benchmarks.sac_cost`: one worker adapts {count} `cheetah-vel` tasks as a "
        f"meta-iteration's jobs ({configs[ppo].inner.updates} updates of 20 episodes of 200 "
        "steps, then the measurement), serial, one torch thread; "
        f"{rounds} interleaved rounds after a warm-up, medians.",
        "",
        table(["learner", "jobs", "env steps", "seconds", "env steps/s"], rows),
        "",
        f"SAC / PPO time: **{ratio.median:.2f}x** ({ratio.p25:.2f}-{ratio.p75:.2f}). "
        f"SAC's {settings.gradient_steps} gradient steps per update (batch "
        f"{settings.batch_size}) took {100 * spent[0] / whole:.0f}% of its adaptations' time "
        f"({spent[0]:.1f} of {whole:.1f} s, one more round), the rollouts and the rest "
        f"{100 * (1 - spent[0] / whole):.0f}%.",
    ]
    if quick:
        lines += ["", QUICK_NOTE]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 jobs, 2 rounds")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--jobs", type=int, default=8, help="jobs (default 8: a worker's share)")
    parser.add_argument("--sac", type=Path, default=SAC_CONFIG, help="the SAC configuration")
    args = parser.parse_args(argv)
    print(run(2 if args.quick else args.rounds, args.quick, args.jobs, args.sac))


if __name__ == "__main__":
    main()
