"""Lockstep speed: a worker's share of a meta-iteration on the ``lockstep`` and ``sb3`` engines.

For each preset (as ``reptile_rl.load_config(preset)`` gives it, one torch thread, serial), one
worker adapts the whole meta-batch (``outer.meta_batch_size`` jobs of ``inner.updates``
updates, as a meta-iteration's jobs: ``measure_final`` and, where the preset meta-learns inner
rates, the rate hypergradient) with each engine, and for the MuJoCo families also with the sb3
engine on ``gymnasium.make``'d envs in a ``DummyVecEnv`` (as before their envs were stepped
directly). They run interleaved (A B C, B C A, ...) from the same parameters and jobs, after
one warm-up round; the headline is the median of the per-round ratios to ``lockstep``. Every
candidate gives every job the same bits (``tests/test_lockstep.py``,
``tests/test_mujoco_batch.py``), so they do the same work.

Then one lockstep round under cProfile says where its time goes, grouped: the batched policy
forward, the envs' steps, SB3's rollout bookkeeping (buffer, callbacks, monitor), the training
phases, and the rest.

With ``--evaluate PRESETS``, the same for an evaluation: the preset's shipped meta-policy
adapted to ``--tasks`` held-out tasks (``reptile-rl evaluate PRESET --inits meta`` on one worker)
on each engine, interleaved, with the share of the lockstep evaluation's time spent inside
``mujoco.mj_step`` (the physics: what no engine can batch away on one core).

Usage: ``python -m benchmarks.lockstep_speed [--quick] [--rounds N] [--presets navigation]
[--jobs N] [--evaluate ant-dir] [--tasks 8]``.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
from collections.abc import Sequence
from unittest import mock

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

from benchmarks.common import QUICK_NOTE, Spread, interleave, ratios, single_thread, table, timed
from reptile_rl import load_config
from reptile_rl.config import Config
from reptile_rl.evaluation import evaluate
from reptile_rl.families import family_class, family_task_type
from reptile_rl.learners import AdaptJob, adapt_all, initial_parameters, make_learner
from reptile_rl.learners.base import Learner
from reptile_rl.parallel import SerialBackend
from reptile_rl.params import Params
from reptile_rl.reptile import initial_log_rates
from reptile_rl.sources import resolve_evaluation

# Where a function's own time is counted in the profile, by its file or (torch's and NumPy's
# built-ins) its name.
_GROUPS = (
    (
        "policy forward (stacked)",
        ("stacked.py", "torch/nn/", "torch.tanh", "torch.relu", "baddbmm", "_nn.linear", "unbind"),
    ),
    ("training phase (SB3 train, backward)", ("ppo/ppo.py", "a2c/a2c.py", "run_backward", "optim")),
    ("envs' steps", ("reptile_rl/envs/", "gymnasium/", "mujoco")),
    (
        "action draws and log-probabilities",
        ("distributions", "normal_", "multinomial", "'pow'", "'log'", "'sum'", "torch.empty"),
    ),
    (
        "SB3 rollout bookkeeping",
        ("stable_baselines3/", "sb3_hooks.py", "linear_baseline.py", "'clone'", "'numpy'"),
    ),
)


def work(config: Config, quick: bool, count: int | None = None) -> tuple[Params, list[AdaptJob]]:
    """A meta-iteration's jobs (``count``, default all) and the parameters they start from."""
    theta = initial_parameters(config, seed=0)
    rates = initial_log_rates(config, theta) if config.outer.inner_rates != "fixed" else None
    count = 2 if quick else count or config.outer.meta_batch_size
    tasks = family_task_type(config.env.id).sample(count, seed=1)
    jobs = [
        AdaptJob(
            task,
            seed=100 + index,
            updates=config.inner.updates,
            measure_final=True,
            inner_log_rates=rates,
            rate_gradient=rates is not None,
        )
        for index, task in enumerate(tasks)
    ]
    return theta, jobs


def physics_rates(env_id: str, steps: int) -> dict[str, float]:
    """Env steps per second of one env: Gymnasium's ``env.step``, and raw ``mj_step``.

    The raw rate is the physical limit: ``mujoco.mj_step(model, data, nstep=frame_skip)`` on
    the env's own data after setting the controls, nothing else. Both take the same random
    actions.
    """
    env = gym.make(env_id, disable_env_checker=True)
    env.reset(seed=0)
    base = env.unwrapped
    assert isinstance(base, MujocoEnv)
    # Random actions as in an adaptation: a resting body simulates faster.
    rng = np.random.default_rng(0)
    space = env.action_space
    assert isinstance(space, gym.spaces.Box)
    actions = rng.uniform(space.low, space.high, (steps, *space.shape)).astype(np.float32)

    def gymnasium_steps() -> None:
        for action in actions:
            if any(env.step(action)[2:4]):
                env.reset()

    def raw_steps() -> None:
        for action in actions:
            base.data.ctrl[:] = action
            mujoco.mj_step(base.model, base.data, nstep=base.frame_skip)

    times = interleave({"env.step": timed(gymnasium_steps), "mj_step": timed(raw_steps)}, 5)
    env.close()
    return {name: steps / Spread.of(values).median for name, values in times.items()}


def _group(path: str) -> str:
    for name, markers in _GROUPS:
        if any(marker in path for marker in markers):
            return name
    return "the rest (Python around them)"


def profile(learner: Learner, theta: Params, jobs: Sequence[AdaptJob]) -> dict[str, float]:
    """Seconds of own time per group in one round."""
    profiler = cProfile.Profile()
    profiler.runcall(adapt_all, learner, [theta] * len(jobs), jobs)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}
    for (path, _, function), (_, _, own, _, _) in stats.items():
        group = _group(f"{path}:{function}")
        totals[group] = totals.get(group, 0.0) + own
    return totals


def evaluation_row(preset: str, tasks: int, rounds: int) -> list[object]:
    """One row: a serial evaluation of the shipped meta-policy on each engine, and the physics."""
    evaluations = {}
    for engine in ("sb3", "lockstep"):
        overrides = [
            "parallel.backend=serial",
            "parallel.workers=1",
            f"inner.engine={engine}",
            f"evaluation.tasks={tasks}",
        ]
        plan = resolve_evaluation(preset, "meta", None, None, overrides)
        evaluations[engine] = functools.partial(
            evaluate, plan.config, plan.policies, SerialBackend()
        )
    times = interleave({engine: timed(work) for engine, work in evaluations.items()}, rounds)
    speedup = Spread.of(ratios(times["sb3"], times["lockstep"]))
    profiler = cProfile.Profile()
    profiler.runcall(evaluations["lockstep"])
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    whole = sum(own for (_, _, own, _, _) in stats.values())
    physics = sum(own for (_, _, name), (_, _, own, _, _) in stats.items() if "mj_step" in name)
    return [
        f"`{preset}`",
        tasks,
        f"{Spread.of(times['sb3']).median:.1f}",
        f"{Spread.of(times['lockstep']).median:.1f}",
        f"**{speedup.median:.2f}x** ({speedup.p25:.2f}-{speedup.p75:.2f})",
        f"{100 * physics / whole:.0f}%",
    ]


def run(
    presets: Sequence[str],
    rounds: int,
    quick: bool,
    evaluations: Sequence[str] = (),
    tasks: int = 8,
    jobs_per_worker: int | None = None,
) -> str:
    """Measure and return the Markdown section."""
    single_thread()
    rows = []
    profiles = []
    physics: list[str] = []
    for preset in presets:
        overrides = ["parallel.backend=serial", "parallel.workers=1"]
        engines = {
            engine: load_config(preset, [*overrides, f"inner.engine={engine}"])
            for engine in ("sb3", "lockstep")
        }
        theta, jobs = work(engines["sb3"], quick, jobs_per_worker)
        learners = {engine: make_learner(config) for engine, config in engines.items()}
        family = family_class(engines["sb3"].env.id)
        if issubclass(family, MujocoEnv):
            # The sb3 engine on gymnasium.make'd envs in a DummyVecEnv: before direct stepping.
            with mock.patch.object(family, "batched_vec_env", return_value=None):
                learners["sb3, DummyVecEnv"] = make_learner(engines["sb3"])
        thetas = [theta] * len(jobs)
        env_steps = sum(r.env_steps for r in adapt_all(learners["sb3"], thetas, jobs))
        times = interleave(
            {
                engine: timed(functools.partial(adapt_all, learner, thetas, jobs))
                for engine, learner in learners.items()
            },
            rounds,
        )
        speedup = Spread.of(ratios(times["sb3"], times["lockstep"]))
        before = times.get("sb3, DummyVecEnv")
        overall = Spread.of(ratios(before, times["lockstep"])) if before else None
        rows.append(
            [
                f"`{preset}`",
                len(jobs),
                f"{Spread.of(before).median:.3f}" if before else "-",
                f"{Spread.of(times['sb3']).median:.3f}",
                f"{Spread.of(times['lockstep']).median:.3f}",
                f"**{speedup.median:.2f}x** ({speedup.p25:.2f}-{speedup.p75:.2f})",
                f"**{overall.median:.2f}x** ({overall.p25:.2f}-{overall.p75:.2f})"
                if overall
                else "-",
            ]
        )
        if issubclass(family, MujocoEnv):
            rates = physics_rates(engines["sb3"].env.id, 200 if quick else 2000)
            rate = env_steps / Spread.of(times["lockstep"]).median
            gym_rate, raw_rate = rates["env.step"], rates["mj_step"]
            physics.append(
                f"`{preset}`: the lockstep engine adapts at {rate:,.0f} env steps/s on one core, "
                f"**{rate / gym_rate:.2f}** of the family's own `env.step` ({gym_rate:,.0f}/s) "
                f"and {rate / raw_rate:.2f} of raw `mj_step` with its frame skip "
                f"({raw_rate:,.0f}/s, the physical limit), measured in the same run."
            )
        totals = profile(learners["lockstep"], theta, jobs)
        whole = sum(totals.values())
        profiles.append(
            f"`{preset}`, one lockstep round under cProfile ({whole:.2f} s of own time): "
            + ", ".join(
                f"{name} {100 * seconds / whole:.0f}%"
                for name, seconds in sorted(totals.items(), key=lambda item: -item[1])
            )
            + "."
        )
        for learner in learners.values():
            learner.close()
    lines = [
        "## 6. Lockstep engine: a worker's share of a meta-iteration",
        "",
        "`python -m benchmarks.lockstep_speed`: one worker adapts a meta-iteration's jobs on "
        f"each engine, serial, one torch thread; {rounds} interleaved rounds after a warm-up, "
        "medians (speed-up: median of the per-round ratios, quartiles in brackets).",
        "",
        table(
            [
                "preset",
                "jobs",
                "sb3, DummyVecEnv (s)",
                "sb3 (s)",
                "lockstep (s)",
                "sb3 / lockstep",
                "sb3, DummyVecEnv / lockstep",
            ],
            rows,
        ),
        "",
        "`sb3, DummyVecEnv`: the sb3 engine on `gymnasium.make`'d envs in SB3's `DummyVecEnv`, "
        "as both engines stepped the MuJoCo families before their envs were stepped directly "
        "(`reptile_rl/envs/mujoco_batch.py`); navigation has always had its batched env.",
        "",
        *physics,
        "",
        *profiles,
    ]
    if evaluations:
        rows = [evaluation_row(p, 2 if quick else tasks, rounds) for p in evaluations]
        lines += [
            "",
            "An evaluation (`reptile-rl evaluate PRESET --inits meta`, the shipped meta-policy, "
            "one worker, the same interleaved rounds):",
            "",
            table(
                [
                    "preset",
                    "tasks",
                    "sb3 (s)",
                    "lockstep (s)",
                    "sb3 / lockstep",
                    "`mj_step` share (lockstep, cProfile)",
                ],
                rows,
            ),
        ]
    if quick:
        lines += ["", QUICK_NOTE]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 jobs, 2 rounds")
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument("--presets", default="navigation", help="comma-separated presets")
    parser.add_argument("--evaluate", default="", help="presets whose evaluation is timed too")
    parser.add_argument("--tasks", type=int, default=8, help="tasks of a timed evaluation")
    parser.add_argument("--jobs", type=int, help="jobs per round (default: the meta-batch)")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    evaluations = [p for p in args.evaluate.split(",") if p]
    presets = [p for p in args.presets.split(",") if p]
    print(run(presets, rounds, args.quick, evaluations, args.tasks, args.jobs))


if __name__ == "__main__":
    main()
