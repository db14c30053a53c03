"""Environment throughput: the batched Navigation2D and the cost of the MuJoCo task rewards.

a. ``reptile_rl.envs.Navigation2DVecEnv(20)`` against SB3's ``DummyVecEnv`` of 20
   ``gymnasium.make("ReptileRL/Navigation2D-v0")``: env steps/s with the same pre-generated
   random actions (half of them outside the action box, clipped inside the env). Target: the
   batched env is at least 10x faster.
b. ``gymnasium.make("ReptileRL/HalfCheetahVel-v0")`` against
   ``gymnasium.make("HalfCheetah-v5", max_episode_steps=200)`` (the same horizon, so both reset
   equally often): single-env steps/s with the same actions and reset seeds, so both simulate
   exactly the same trajectories and differ only in the reward. Target: ratio >= 0.95.
c. The same for each ant family against ``Ant-v5`` with the same horizon and the
   same health check (``AntGoal``: positions observed, no termination, as the family).
d. With Meta-World installed (its own venv): ``ReptileRL/ML1-reach-v0`` against Meta-World's
   own reach env set to the same goal (goal 0 of ``metaworld.ML1("reach-v3", seed=0)``), both
   truncated at 500 steps.

Usage: ``python -m benchmarks.env_throughput [--quick] [--nav-steps N] [--nav-rounds R]
[--cheetah-steps N] [--cheetah-rounds R]`` (the ants take the cheetah's sizes).
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from benchmarks.common import (
    QUICK_NOTE,
    Spread,
    interleave,
    number,
    quiet_mujoco,
    ratios,
    single_thread,
    table,
    timed,
    verdict,
)
from reptile_rl import envs
from reptile_rl.envs.metaworld import metaworld

N_ENVS = 20
NAV_TARGET = 10.0
CHEETAH_TARGET = 0.95
# (family, reference id, reference kwargs): the reference simulates what the family simulates.
MUJOCO_FAMILIES: list[tuple[str, str, dict[str, Any]]] = [
    (envs.HALF_CHEETAH_VEL, "HalfCheetah-v5", {}),
    (envs.ANT_VEL, "Ant-v5", {}),
    (envs.ANT_DIR, "Ant-v5", {}),
    (
        envs.ANT_GOAL,
        "Ant-v5",
        {"terminate_when_unhealthy": False, "exclude_current_positions_from_observation": False},
    ),
]


def _step_vec_env(env: VecEnv, actions: np.ndarray) -> None:
    env.reset()
    for action in actions:
        env.step(action)


def _array(value: object) -> np.ndarray:
    """``value``, which must be a NumPy array (a Box observation)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"expected an array, got {type(value).__name__}")
    return value


def _same_navigation_outputs(batched: VecEnv, dummy: VecEnv, actions: np.ndarray) -> bool:
    """Whether both vectorized envs give the same observations, rewards and dones."""
    obs_a, obs_b = batched.reset(), dummy.reset()
    same = bool(np.array_equal(_array(obs_a), _array(obs_b)))
    for action in actions:
        obs_a, reward_a, done_a, _ = batched.step(action)
        obs_b, reward_b, done_b, _ = dummy.step(action)
        same &= bool(
            np.array_equal(_array(obs_a), _array(obs_b))
            and np.array_equal(reward_a, reward_b)
            and np.array_equal(done_a, done_b)
        )
    return same


def navigation(steps: int, rounds: int, seed: int = 0) -> tuple[str, float]:
    """Benchmark 1a; return its Markdown and the median speed-up."""
    rng = np.random.default_rng(seed)
    # Uniform in [-0.2, 0.2]: about half of the components get clipped to [-0.1, 0.1].
    actions = rng.uniform(-0.2, 0.2, size=(steps, N_ENVS, 2)).astype(np.float32)
    task = envs.NavigationTask.sample(1, seed=seed)[0]
    batched = envs.Navigation2DVecEnv(N_ENVS, tasks=task)

    def make_single() -> gym.Env[Any, Any]:
        env = gym.make(envs.NAVIGATION_2D)
        env.unwrapped.set_task(task)  # type: ignore[attr-defined]
        return env

    dummy = DummyVecEnv([make_single for _ in range(N_ENVS)])
    identical = _same_navigation_outputs(batched, dummy, actions[: min(steps, 300)])
    times = interleave(
        {
            "batched": timed(lambda: _step_vec_env(batched, actions)),
            "dummy": timed(lambda: _step_vec_env(dummy, actions)),
        },
        rounds,
    )
    dummy.close()
    speedup = Spread.of(ratios(times["dummy"], times["batched"]))
    env_steps = steps * N_ENVS
    rows = [
        [
            f"`Navigation2DVecEnv({N_ENVS})`",
            number(env_steps / Spread.of(times["batched"]).median),
            f"{Spread.of(times['batched']).median * 1e3:.1f}",
        ],
        [
            f"`DummyVecEnv` of {N_ENVS} `gymnasium.make`",
            number(env_steps / Spread.of(times["dummy"]).median),
            f"{Spread.of(times['dummy']).median * 1e3:.1f}",
        ],
    ]
    text = "\n\n".join(
        [
            "### 1a. Batched Navigation2D vs `DummyVecEnv`",
            f"{steps} vectorized steps ({number(env_steps)} env steps) per round with the same "
            f"pre-generated actions in [-0.2, 0.2] (clipped inside the envs); {rounds} "
            "interleaved rounds after one warm-up round. Same observations, rewards and dones "
            f"on the first {min(steps, 300)} steps: {'yes' if identical else '**NO**'}.",
            table(["env", "median env steps/s", "median ms per round"], rows),
            f"Speed-up (median of per-round ratios): **{speedup.median:.1f}x** "
            f"(IQR {speedup.p25:.1f}-{speedup.p75:.1f}x). Target >= {NAV_TARGET:.0f}x: "
            f"{verdict(speedup.median, NAV_TARGET, higher_is_better=True)}.",
        ]
    )
    return text, speedup.median


def _step_single(env: gym.Env[Any, Any], actions: np.ndarray, seed: int) -> None:
    env.reset(seed=seed)
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()


def _side_by_side(
    ours: gym.Env[Any, Any], reference: gym.Env[Any, Any], steps: int, rounds: int, seed: int
) -> tuple[dict[str, list[float]], Spread]:
    """Seconds per round of both envs, interleaved, and the throughput ratio ours / reference.

    Both get the same pre-generated actions and, per round, the same reset seed: identical
    trajectories where the reference simulates what ours does, so only the wrapper differs.
    """
    rng = np.random.default_rng(seed)
    shape = ours.action_space.shape or ()
    actions = rng.uniform(-1.0, 1.0, size=(steps, *shape)).astype(np.float32)
    counter = {"ours": 0, "reference": 0}

    def round_of(name: str, env: gym.Env[Any, Any]) -> float:
        counter[name] += 1
        return timed(lambda: _step_single(env, actions, seed + counter[name]))()

    times = interleave(
        {
            "ours": lambda: round_of("ours", ours),
            "reference": lambda: round_of("reference", reference),
        },
        rounds,
    )
    # Throughput ratio ours / reference = time(reference) / time(ours).
    return times, Spread.of(ratios(times["reference"], times["ours"]))


def mujoco_family(
    env_id: str,
    reference_id: str,
    reference_kwargs: dict[str, Any],
    steps: int,
    rounds: int,
    seed: int = 0,
) -> tuple[list[str], float]:
    """One family against its Gymnasium env; return its table row and the median ratio."""
    with quiet_mujoco():
        ours = gym.make(env_id)
        reference = gym.make(reference_id, max_episode_steps=200, **reference_kwargs)
    times, ratio = _side_by_side(ours, reference, steps, rounds, seed)
    ours.close()
    reference.close()
    overhead = (1.0 / ratio.median - 1.0) * 100.0
    extra = ", ".join(f"{k}={v}" for k, v in reference_kwargs.items())
    row = [
        f"`{env_id}`",
        f"`{reference_id}`" + (f" ({extra})" if extra else ""),
        number(steps / Spread.of(times["ours"]).median),
        number(steps / Spread.of(times["reference"]).median),
        f"**{ratio.median:.3f}** ({overhead:+.1f}%)",
        f"{ratio.p25:.3f}-{ratio.p75:.3f}",
        verdict(ratio.median, CHEETAH_TARGET, higher_is_better=True),
    ]
    return row, ratio.median


def metaworld_ml1(steps: int, rounds: int) -> str:
    """Benchmark 1d (needs Meta-World): the ML1 family against Meta-World's env, as Markdown."""
    title = "### 1d. ML1 reach vs Meta-World's own env (single env)"
    if metaworld is None:
        return f"{title}\n\nSkipped: Meta-World is not installed (run in `.venv-metaworld`)."
    benchmark = metaworld.ML1("reach-v3", seed=0)
    raw = benchmark.train_classes["reach-v3"]()
    raw.set_task(benchmark.train_tasks[0])
    reference = gym.wrappers.TimeLimit(raw, 500)
    ours = gym.make(envs.ML1_REACH, task=envs.ML1Task(0))
    times, ratio = _side_by_side(ours, reference, steps, rounds, 0)
    rows = [
        [f"`{label}`", number(steps / Spread.of(times[key]).median)]
        for key, label in (("ours", envs.ML1_REACH), ("reference", "Meta-World reach-v3"))
    ]
    return "\n\n".join(
        [
            title,
            f"{number(steps)} steps per round with the same actions, {rounds} interleaved rounds "
            "after one warm-up round.",
            table(["env", "median steps/s"], rows),
            f"Throughput ratio ours / Meta-World: **{ratio.median:.3f}** (IQR "
            f"{ratio.p25:.3f}-{ratio.p75:.3f}).",
        ]
    )


def mujoco_families(steps: int, rounds: int) -> str:
    """Benchmarks 1b and 1c: every MuJoCo family against its Gymnasium env, as Markdown."""
    rows = [
        mujoco_family(env_id, reference_id, kwargs, steps, rounds)[0]
        for env_id, reference_id, kwargs in MUJOCO_FAMILIES
    ]
    header = ["family", "Gymnasium env", "steps/s", "its steps/s", "ratio (overhead)", "IQR", ""]
    return "\n\n".join(
        [
            "### 1b, 1c. MuJoCo families vs their Gymnasium env (single env)",
            f"{number(steps)} steps per round with the same pre-generated actions and the same "
            f"reset seed (identical trajectories, reset when terminated or truncated; both "
            f"truncate at 200 steps); {rounds} interleaved rounds after one warm-up round. "
            "Ratio: the median of per-round throughput ratios, family / Gymnasium env. "
            f"Target >= {CHEETAH_TARGET} (overhead <= 5%).",
            table(header, rows),
        ]
    )


def run(
    quick: bool,
    nav_steps: int | None = None,
    nav_rounds: int | None = None,
    cheetah_steps: int | None = None,
    cheetah_rounds: int | None = None,
) -> str:
    """Run benchmark 1 and return its Markdown section.

    Args:
        quick: Small sizes for a smoke run.
        nav_steps: Vectorized steps per round of 1a.
        nav_rounds: Measured rounds of 1a.
        cheetah_steps: Steps per round of 1b.
        cheetah_rounds: Measured rounds of 1b.
    """
    single_thread()
    given = [nav_steps, nav_rounds, cheetah_steps, cheetah_rounds]
    if any(value is not None and value < 1 for value in given):
        raise ValueError("step and round counts must be at least 1")
    nav_text, _ = navigation(
        nav_steps or (500 if quick else 5000), nav_rounds or (3 if quick else 15)
    )
    cheetah_text = mujoco_families(
        cheetah_steps or (2000 if quick else 10000), cheetah_rounds or (5 if quick else 41)
    )
    parts = ["## 1. Environment throughput"]
    if quick:
        parts.append(QUICK_NOTE)
    ml1_text = metaworld_ml1(2000 if quick else 5000, 3 if quick else 11)
    parts += [nav_text, cheetah_text, ml1_text]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--nav-steps", type=int, help="vectorized steps per round (1a)")
    parser.add_argument("--nav-rounds", type=int, help="measured rounds (1a)")
    parser.add_argument("--cheetah-steps", type=int, help="steps per round (1b)")
    parser.add_argument("--cheetah-rounds", type=int, help="measured rounds (1b)")
    args = parser.parse_args()
    print(run(args.quick, args.nav_steps, args.nav_rounds, args.cheetah_steps, args.cheetah_rounds))


if __name__ == "__main__":
    main()
