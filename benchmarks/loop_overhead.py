"""What the Reptile loop costs on top of the PPO training it drives (``navigation``, serial).

All parts use the ``navigation`` preset with ``parallel.backend=serial``,
``parallel.workers=1`` and ``outer.meta_batch_size=8``. Production code is measured as is:
``stable_baselines3.PPO.learn`` and ``reptile_rl.runlog.RunLog.record`` are wrapped (patched on
the class, in this process only) to time PPO and to timestamp each meta-iteration.

a. Reptile overhead: wall time of a meta-iteration (between two ``RunLog.record`` calls, so
   checkpointing and logging are included) divided by the wall time of the ``PPO.learn`` calls
   it made. Iteration 0 (set-up) is skipped. Target <= 1.05.
b. Versus plain PPO: env steps/s of ``Trainer.learn()`` (env steps from ``progress.csv``, time
   from the ``RunLog.record`` timestamps) against plain SB3 PPO with the same hyper-parameters,
   policy and VecEnv. The runs take turns (one meta-iteration, then the same number of training
   steps of plain PPO, ...), each in its own thread holding a baton, so only one ever runs.
   Two meta-training variants: ``outer.measure_adapted=false`` (every env step trains) and the
   default (``true``). Target ratio >= 0.95.
c. Versus the naive wrapper pattern: one meta-iteration of the reference implementation other
   Reptile-on-SB3 code uses (per task a fresh ``DummyVecEnv`` of ``gymnasium.make`` envs and a
   fresh ``PPO``, ``load_state_dict``, one ``learn`` call, ``deepcopy`` of the state dict,
   update with torch) against ``reptile_rl.reptile.meta_step`` with a ``SerialBackend`` on the
   same tasks, ``outer.measure_adapted=false``. Target: ours >= 1.5x faster.

Usage: ``python -m benchmarks.loop_overhead [--quick] [--iterations N] [--rounds R]
[--meta-batch-size M] [--parts abc]``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import itertools
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from benchmarks.common import (
    QUICK_NOTE,
    Spread,
    interleave,
    number,
    ratios,
    single_thread,
    table,
    verdict,
)
from reptile_rl import Trainer, load_config
from reptile_rl.config import Config
from reptile_rl.envs.base import Task
from reptile_rl.families import env_horizon, family_task_type
from reptile_rl.learners.sb3_onpolicy import algorithm_kwargs
from reptile_rl.parallel import SerialBackend
from reptile_rl.params import linear_schedule
from reptile_rl.reptile import MetaState, initial_state, meta_step
from reptile_rl.rundir import RunDir
from reptile_rl.runlog import RunLog
from reptile_rl.seeding import Stream, derive_seed
from reptile_rl.vec_env import make_vec_env

OVERHEAD_TARGET = 1.05
PLAIN_TARGET = 0.95
NAIVE_TARGET = 1.5
BASE_OVERRIDES = ["parallel.backend=serial", "parallel.workers=1"]
QUICK_OVERRIDES = ["inner.updates=2", "inner.n_epochs=4"]


def make_config(meta_batch_size: int, quick: bool, *overrides: str) -> Config:
    """The ``navigation`` preset, serial, with the given meta-batch and overrides."""
    extra = QUICK_OVERRIDES if quick else []
    config = load_config(
        "navigation",
        [*BASE_OVERRIDES, f"outer.meta_batch_size={meta_batch_size}", *extra, *overrides],
    )
    # Every part times, patches or imitates SB3's PPO: another inner learner would not be seen.
    if config.inner.algorithm != "ppo":
        raise ValueError(f"the benchmark needs inner.algorithm=ppo, not {config.inner.algorithm}")
    return config


def rollout_size(config: Config) -> int:
    """Env steps of one inner rollout."""
    return config.inner.n_envs * (config.inner.n_steps or env_horizon(config.env.id))


def training_steps(config: Config) -> int:
    """Env steps one meta-iteration trains on (measurement rollouts excluded)."""
    return config.outer.meta_batch_size * config.inner.updates * rollout_size(config)


def plain_ppo(config: Config, env: Any, seed: int) -> PPO:
    """Plain SB3 PPO with ``config``'s inner hyper-parameters and policy (SB3's own logger)."""
    kwargs = algorithm_kwargs(config)
    # Plain SB3: its default optimizer settings, not the multi-tensor Adam of our inner loop.
    kwargs["policy_kwargs"].pop("optimizer_kwargs")
    return PPO("MlpPolicy", env, **kwargs, seed=seed)


def read_env_steps(run_dir: Path) -> list[int]:
    """The cumulative ``env_steps`` column of a run's ``progress.csv``."""
    with RunDir(run_dir).progress_file.open(newline="") as file:
        return [int(row["env_steps"]) for row in csv.DictReader(file)]


# -- a. Reptile overhead ---------------------------------------------------------------------


def overhead(iterations: int, meta_batch_size: int, quick: bool) -> tuple[str, float]:
    """Part a; return its Markdown and the median per-iteration ratio."""
    config = make_config(meta_batch_size, quick, f"outer.iterations={iterations}")
    learn_seconds = [0.0]
    marks: list[tuple[float, float]] = []  # (time, learn seconds so far) after each record
    original_learn = PPO.learn
    original_record = RunLog.record

    def timed_learn(self: PPO, *args: Any, **kwargs: Any) -> PPO:
        start = time.perf_counter()
        try:
            return original_learn(self, *args, **kwargs)
        finally:
            learn_seconds[0] += time.perf_counter() - start

    def stamped_record(self: RunLog, *args: Any, **kwargs: Any) -> None:
        original_record(self, *args, **kwargs)
        marks.append((time.perf_counter(), learn_seconds[0]))

    with (
        tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp,
        mock.patch.object(PPO, "learn", timed_learn),
        mock.patch.object(RunLog, "record", stamped_record),
    ):
        Trainer(config, Path(tmp) / "run").learn()
    walls = [b[0] - a[0] for a, b in itertools.pairwise(marks)]
    learns = [b[1] - a[1] for a, b in itertools.pairwise(marks)]
    per_iteration = Spread.of(ratios(walls, learns))
    total = sum(walls) / sum(learns)
    rows = [
        [index + 1, f"{wall:.3f}", f"{learn:.3f}", f"{wall - learn:.3f}", f"{wall / learn:.4f}"]
        for index, (wall, learn) in enumerate(zip(walls, learns, strict=True))
    ]
    text = "\n\n".join(
        [
            "### 2a. Reptile overhead (serial)",
            f"`Trainer(config).learn()` for {iterations} meta-iterations, meta-batch "
            f"{meta_batch_size}, {config.inner.updates} inner updates, default "
            "`outer.measure_adapted` (its rollout runs inside `PPO.learn`). A meta-iteration "
            "runs from one `RunLog.record` to the next (task sampling, loading theta, PPO, "
            "parameter copies, the outer update, checkpoint, CSV and TensorBoard); iteration 0 "
            "is skipped.",
            table(["iteration", "wall s", "PPO.learn s", "outside learn s", "ratio"], rows),
            f"Wall / `PPO.learn` time (median of per-iteration ratios): "
            f"**{per_iteration.median:.4f}** (range {per_iteration.low:.4f}-"
            f"{per_iteration.high:.4f}; pooled {total:.4f}). Target <= {OVERHEAD_TARGET}: "
            f"{verdict(per_iteration.median, OVERHEAD_TARGET, higher_is_better=False)}.",
        ]
    )
    return text, per_iteration.median


# -- b. versus plain PPO ---------------------------------------------------------------------


class Baton:
    """Lets threads take turns, round robin: exactly one participant runs at a time.

    Args:
        names: The participants, in turn order; the first holds the baton.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self._order = list(names)
        self._holder = self._order[0]
        self._condition = threading.Condition()

    def wait_for(self, name: str) -> None:
        """Block until ``name`` holds the baton."""
        with self._condition:
            self._condition.wait_for(lambda: self._holder == name)

    def _next_after(self, name: str) -> str:
        return self._order[(self._order.index(name) + 1) % len(self._order)]

    def pass_on(self, name: str) -> None:
        """``name`` hands the baton to the next participant."""
        with self._condition:
            self._holder = self._next_after(name)
            self._condition.notify_all()

    def retire(self, name: str) -> None:
        """``name`` leaves the rotation (handing the baton on if it held it)."""
        with self._condition:
            if self._holder == name and len(self._order) > 1:
                self._holder = self._next_after(name)
            self._order.remove(name)
            self._condition.notify_all()


class Participant:
    """One of the runs taking turns: records (seconds, env steps) per turn.

    Args:
        name: Its name in the baton's rotation.
        baton: The shared baton.
    """

    def __init__(self, name: str, baton: Baton) -> None:
        self.name = name
        self.baton = baton
        self.turn_start = 0.0
        self.seconds: list[float] = []
        self.error: BaseException | None = None

    def end_turn(self, last: bool) -> None:
        """Close the current turn; unless ``last``, hand over and wait for the next one."""
        self.seconds.append(time.perf_counter() - self.turn_start)
        if not last:
            self.baton.pass_on(self.name)
            self.baton.wait_for(self.name)
        self.turn_start = time.perf_counter()

    def thread(self, body: Callable[[], object]) -> threading.Thread:
        """A thread that waits for its first turn, runs ``body`` and retires."""

        def target() -> None:
            single_thread()
            self.baton.wait_for(self.name)
            self.turn_start = time.perf_counter()
            try:
                body()
            except BaseException as error:
                self.error = error
            finally:
                self.baton.retire(self.name)

        return threading.Thread(target=target, name=self.name, daemon=True)


def versus_plain(iterations: int, meta_batch_size: int, quick: bool) -> tuple[str, float]:
    """Part b; return its Markdown and the median ratio of the apples-to-apples variant."""
    variants = {"meta (measure_adapted=false)": "false", "meta (default: true)": "true"}
    configs = {
        name: make_config(
            meta_batch_size,
            quick,
            f"outer.iterations={iterations}",
            f"outer.measure_adapted={value}",
        )
        for name, value in variants.items()
    }
    names = [*variants, "plain PPO"]
    baton = Baton(names)
    participants = {name: Participant(name, baton) for name in names}
    run_names: dict[Path, str] = {}
    original_record = RunLog.record

    def record_and_yield(self: RunLog, row: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_record(self, row, *args, **kwargs)
        participant = participants[run_names[self.path.parent]]
        participant.end_turn(last=int(row["iteration"]) + 1 >= iterations)

    reference = configs[names[0]]
    chunk = training_steps(reference)
    plain_steps: list[int] = []

    def plain_body() -> None:
        participant = participants["plain PPO"]
        env = make_vec_env(reference.env.id, reference.env.kwargs, reference.inner.n_envs)
        model = plain_ppo(reference, env, seed=reference.seed)
        for index in range(iterations):
            before = model.num_timesteps
            model.learn(chunk, reset_num_timesteps=False)
            plain_steps.append(model.num_timesteps - before)
            participant.end_turn(last=index + 1 >= iterations)
        env.close()

    with (
        tempfile.TemporaryDirectory(prefix="bench-plain-") as tmp,
        mock.patch.object(RunLog, "record", record_and_yield),
    ):
        threads = []
        for index, name in enumerate(variants):
            run_dir = Path(tmp) / f"run{index}"
            run_names[run_dir] = name
            trainer = Trainer(configs[name], run_dir)
            threads.append(participants[name].thread(trainer.learn))
        threads.append(participants["plain PPO"].thread(plain_body))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for participant in participants.values():
            if participant.error is not None:
                raise participant.error
        steps = {
            name: np.diff([0, *read_env_steps(run_dir)]).tolist()
            for run_dir, name in run_names.items()
        }
    steps["plain PPO"] = plain_steps
    # Turn 0 of every run includes its set-up: skip it.
    rates = {
        name: ratios(steps[name][1:], participants[name].seconds[1:])
        for name in names  # env steps per second, per turn
    }
    rows = []
    results: dict[str, Spread] = {}
    for name in names:
        per_turn = Spread.of(rates[name])
        train_rate = Spread.of(ratios([chunk] * len(rates[name]), participants[name].seconds[1:]))
        if name == "plain PPO":
            relative = "1 (reference)"
        else:
            results[name] = Spread.of(ratios(rates[name], rates["plain PPO"]))
            relative = (
                f"**{results[name].median:.3f}** (IQR {results[name].p25:.3f}-"
                f"{results[name].p75:.3f})"
            )
        rows.append(
            [
                name,
                number(Spread.of(steps[name][1:]).median),
                f"{Spread.of(participants[name].seconds[1:]).median:.2f}",
                number(per_turn.median),
                number(train_rate.median),
                relative,
            ]
        )
    main_ratio = results[names[0]].median
    text = "\n\n".join(
        [
            "### 2b. Meta-training vs plain PPO (env steps/s)",
            f"Three runs take turns in one process ({iterations} turns each, turn 0 skipped): "
            f"one meta-iteration of `Trainer.learn()` (meta-batch {meta_batch_size}, "
            f"{reference.inner.updates} updates), then `PPO.learn({number(chunk)})` of plain "
            "SB3 PPO (same n_envs, n_steps, n_epochs, batch_size, learning rate, policy, and "
            "the same batched VecEnv + VecMonitor, SB3's default logger). Meta-training env "
            "steps come from `progress.csv`, its time from the `RunLog.record` timestamps.",
            table(
                [
                    "run",
                    "env steps per turn",
                    "median s per turn",
                    "median env steps/s",
                    "median training steps/s",
                    "env steps/s vs plain (median of per-turn ratios)",
                ],
                rows,
            ),
            f"Target >= {PLAIN_TARGET} for `measure_adapted=false` (every env step trains): "
            f"{main_ratio:.3f}, {verdict(main_ratio, PLAIN_TARGET, higher_is_better=True)}. "
            "With the default `measure_adapted=true` each task also runs one measurement "
            "rollout without training, which counts as env steps: its env steps/s is "
            f"{results[names[1]].median:.3f}x plain PPO's "
            f"({verdict(results[names[1]].median, PLAIN_TARGET, higher_is_better=True)}); "
            "its training steps/s column shows what the measurement costs.",
        ]
    )
    return text, main_ratio


# -- c. versus the naive wrapper pattern -----------------------------------------------------


def naive_meta_step(
    config: Config,
    theta: dict[str, torch.Tensor],
    tasks: Sequence[Task],
    seeds: Sequence[int],
    eps: float,
) -> dict[str, torch.Tensor]:
    """One Reptile meta-iteration as other Reptile-on-SB3 code writes it (the reference)."""
    inner = config.inner
    horizon = inner.n_steps or env_horizon(config.env.id)
    phis = []
    for task, seed in zip(tasks, seeds, strict=True):

        def make_env(task: Task = task) -> gym.Env[Any, Any]:
            env = gym.make(config.env.id, **config.env.kwargs)
            env.unwrapped.set_task(task)  # type: ignore[attr-defined]
            return env

        env = DummyVecEnv([make_env for _ in range(inner.n_envs)])
        model = plain_ppo(config, env, seed)
        model.policy.load_state_dict(copy.deepcopy(theta))
        model.learn(inner.updates * inner.n_envs * horizon)
        phis.append(copy.deepcopy(model.policy.state_dict()))
        env.close()
    with torch.no_grad():
        return {
            name: value + eps * torch.stack([phi[name] - value for phi in phis]).mean(dim=0)
            for name, value in theta.items()
        }


def versus_naive(rounds: int, meta_batch_size: int, quick: bool) -> tuple[str, float]:
    """Part c; return its Markdown and the median speed-up of ours over the naive pattern."""
    config = make_config(meta_batch_size, quick, "outer.measure_adapted=false")
    task_type = family_task_type(config.env.id)
    state: list[MetaState] = [initial_state(config)]
    backend = SerialBackend()
    naive_theta = [{name: torch.tensor(v) for name, v in state[0].theta.items()}]
    naive_iteration = [0]

    def ours() -> float:
        start = time.perf_counter()
        state[0], _ = meta_step(config, state[0], backend)
        return time.perf_counter() - start

    def naive() -> float:
        t = naive_iteration[0]
        tasks = task_type.sample(
            meta_batch_size, seed=derive_seed(config.seed, Stream.TRAIN_TASKS, t)
        )
        seeds = [derive_seed(config.seed, Stream.ADAPTATION, t, i) for i in range(len(tasks))]
        eps = linear_schedule(
            config.outer.eps_start, config.outer.eps_end, t, config.outer.iterations
        )
        start = time.perf_counter()
        naive_theta[0] = naive_meta_step(config, naive_theta[0], tasks, seeds, eps)
        naive_iteration[0] += 1
        return time.perf_counter() - start

    try:
        times = interleave({"ours": ours, "naive": naive}, rounds)
    finally:
        backend.close()
    speedup = Spread.of(ratios(times["naive"], times["ours"]))
    rows = [
        ["ours: `meta_step` + `SerialBackend`", f"{Spread.of(times['ours']).median:.2f}"],
        ["naive wrapper pattern", f"{Spread.of(times['naive']).median:.2f}"],
    ]
    text = "\n\n".join(
        [
            "### 2c. Ours vs the naive wrapper pattern",
            f"One meta-iteration each per round, meta-batch {meta_batch_size}, "
            f"{config.inner.updates} updates of {number(rollout_size(config))} steps per task, "
            "`outer.measure_adapted=false`, the same tasks and seeds; the naive pattern builds, "
            "per task, a `DummyVecEnv` of `gymnasium.make` envs and a fresh `PPO`, loads "
            "`deepcopy(theta)` with `load_state_dict`, calls `learn` once, deep-copies the "
            f"state dict and updates theta with torch. {rounds} interleaved rounds after one "
            "warm-up round (which builds our reused learner).",
            table(["implementation", "median s per meta-iteration"], rows),
            f"Speed-up naive / ours (median of per-round ratios): **{speedup.median:.2f}x** "
            f"(IQR {speedup.p25:.2f}-{speedup.p75:.2f}x). Target >= {NAIVE_TARGET}x: "
            f"{verdict(speedup.median, NAIVE_TARGET, higher_is_better=True)}.",
        ]
    )
    return text, speedup.median


def run(
    quick: bool,
    iterations: int | None = None,
    rounds: int | None = None,
    meta_batch_size: int | None = None,
    parts: str = "abc",
) -> str:
    """Run benchmark 2 and return its Markdown section.

    Args:
        quick: Small sizes for a smoke run.
        iterations: Meta-iterations of parts a and b (the first is skipped).
        rounds: Measured rounds of part c.
        meta_batch_size: Tasks per meta-iteration.
        parts: Which parts to run (letters of ``abc``).
    """
    single_thread()
    iterations = iterations or (3 if quick else 6)
    rounds = rounds or (2 if quick else 5)
    meta_batch_size = meta_batch_size or (2 if quick else 8)
    if iterations < 2 or rounds < 1:
        raise ValueError("need --iterations >= 2 (the first is skipped) and --rounds >= 1")
    sections = ["## 2. Loop overhead (`navigation`, serial)"]
    if quick:
        sections.append(QUICK_NOTE + f" Quick mode also sets {', '.join(QUICK_OVERRIDES)}.")
    if "a" in parts:
        sections.append(overhead(iterations, meta_batch_size, quick)[0])
    if "b" in parts:
        sections.append(versus_plain(iterations, meta_batch_size, quick)[0])
    if "c" in parts:
        sections.append(versus_naive(rounds, meta_batch_size, quick)[0])
    return "\n\n".join(sections) + "\n"


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--iterations", type=int, help="meta-iterations of parts a and b")
    parser.add_argument("--rounds", type=int, help="measured rounds of part c")
    parser.add_argument("--meta-batch-size", type=int, help="tasks per meta-iteration")
    parser.add_argument("--parts", default="abc", help="which parts to run, e.g. 'ac'")
    args = parser.parse_args()
    print(run(args.quick, args.iterations, args.rounds, args.meta_batch_size, args.parts))


if __name__ == "__main__":
    main()
