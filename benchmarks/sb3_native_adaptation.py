"""Which SB3-native routes adapt the shipped navigation meta-policy.

A user holding ``meta_policy.zip`` and an SB3 env can adapt with SB3's own ``learn()``. This
compares, on held-out goals, the return after 3 updates of 20 episodes:

- ``PPO.load(zip, env)`` then ``learn``: SB3 with the settings saved in the zip (the preset's
  plain SGD step and its first rate) but the meta-initialised critic as baseline and one rate;
- the same with the policy's meta-learned per-tensor, per-update rates only (``LearnedRates``);
- the same with MAML's linear baseline only (``EpisodeReturns``);
- ``reptile_rl.sb3_adaptation``: both, as ``reptile-rl adapt`` adapts.

Returns are measured with SB3's ``evaluate_policy`` (20 stochastic episodes) after adapting.
Usage: ``python -m benchmarks.sb3_native_adaptation [--tasks 10] [--seeds 3]``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from reptile_rl.adaptation import resolve_source, sb3_adaptation
from reptile_rl.envs import Navigation2DEnv, Navigation2DVecEnv, NavigationTask
from reptile_rl.learners import sb3_hooks
from reptile_rl.learners.sb3_onpolicy import rate_sets
from reptile_rl.policies import export_policy

UPDATES = 3
EPISODES = 20

Route = Callable[[Path, VecEnv], tuple[PPO, BaseCallback | None]]


def plain(zip_path: Path, env: VecEnv) -> tuple[PPO, BaseCallback | None]:
    return PPO.load(zip_path, env=env, device="cpu"), None


def rates_only(zip_path: Path, env: VecEnv) -> tuple[PPO, BaseCallback | None]:
    rates = rate_sets(resolve_source(zip_path).inner_log_rates)
    return PPO.load(zip_path, env=env, device="cpu"), sb3_hooks.LearnedRates(rates)


def baseline_only(zip_path: Path, env: VecEnv) -> tuple[PPO, BaseCallback | None]:
    horizon = Navigation2DEnv.horizon
    return PPO.load(zip_path, env=env, device="cpu"), sb3_hooks.EpisodeReturns(False, horizon)


def both(zip_path: Path, env: VecEnv) -> tuple[PPO, BaseCallback | None]:
    model, callback = sb3_adaptation(zip_path, env)
    assert isinstance(model, PPO)
    return model, callback


ROUTES: dict[str, Route] = {
    "`PPO.load` + `learn` (plain SB3)": plain,
    "+ meta-learned rates only": rates_only,
    "+ linear baseline only": baseline_only,
    "`reptile_rl.sb3_adaptation` (both)": both,
}


def export_shipped(folder: Path) -> Path:
    """The shipped navigation meta-policy as an SB3 zip (what `reptile-rl export` writes)."""
    policy = resolve_source("navigation")
    path = folder / "navigation.zip"
    export_policy(policy, path, inner=policy.config.evaluation_inner())
    return path


def stochastic_return(model: PPO, task: NavigationTask, seed: int) -> float:
    """Mean return of 20 stochastic episodes, measured by SB3."""
    env = VecMonitor(Navigation2DVecEnv(EPISODES, task))
    env.seed(seed)
    returns, _ = evaluate_policy(
        model, env, n_eval_episodes=EPISODES, deterministic=False, return_episode_rewards=True
    )
    return float(np.mean(returns))


def adapted_return(route: Route, zip_path: Path, task: NavigationTask, seed: int) -> float:
    env = VecMonitor(Navigation2DVecEnv(EPISODES, task))
    model, callback = route(zip_path, env)
    model.set_random_seed(seed)
    model.learn(
        UPDATES * model.n_steps * env.num_envs,
        callback=CallbackList([callback] if callback else []),
    )
    return stochastic_return(model, task, seed)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10, help="held-out goals")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per goal")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tasks = NavigationTask.split_list("test", args.tasks)
    with tempfile.TemporaryDirectory() as folder:
        zip_path = export_shipped(Path(folder))
        unadapted = PPO.load(zip_path, device="cpu")
        unadapted.set_random_seed(0)  # its episodes' action noise, as learn's seed does after
        before = [stochastic_return(unadapted, task, 0) for task in tasks]
        print(
            f"{args.tasks} held-out goals x {args.seeds} seeds, {UPDATES} updates of "
            f"{EPISODES} episodes"
        )
        print()
        print("| route | return after 3 updates (mean over goals and seeds) | per seed |")
        print("|---|---|---|")
        print(f"| no adaptation | {np.mean(before):.2f} | |")
        for name, route in ROUTES.items():
            per_seed = [
                np.mean([adapted_return(route, zip_path, task, seed) for task in tasks])
                for seed in range(args.seeds)
            ]
            cells = " / ".join(f"{value:.2f}" for value in per_seed)
            print(f"| {name} | {np.mean(per_seed):.2f} | {cells} |")


if __name__ == "__main__":
    main()
