"""Baselines to compare a meta-initialisation against, trained with plain multi-task PPO.

- **pretrained**: one PPO policy trained on the whole train-split task distribution (MAML's
  "pretrained" baseline): before every rollout each env gets a new task, so the policy learns
  the best behaviour *on average* over tasks. It starts from the same initial parameters as
  meta-training and, by default, gets the same env-step budget.
- **oracle**: the same, but the task is appended to the observation (``TaskInObservation``),
  so the policy can be optimal for every task without adapting: an upper reference line.

The run directory holds ``config.yaml``, ``progress.csv`` (one row per rollout), TensorBoard
events, ``<role>_policy.safetensors`` (safe; what ``reptile-rl evaluate`` loads) and
``<role>_policy.zip`` (plain SB3).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from reptile_rl import checkpoint
from reptile_rl.config import Config, ConfigError, config_to_yaml
from reptile_rl.envs_factory import family_task_type
from reptile_rl.inner import InnerLoop
from reptile_rl.policies import PolicyFile, export_sb3, save_policy
from reptile_rl.runlog import RunLog
from reptile_rl.seeding import Stream, derive_seed

logger = logging.getLogger(__name__)

PROGRESS_COLUMNS = ["rollout", "env_steps", "wall_s", "return"]


def policy_filename(role: str) -> str:
    """File name of a baseline's safe policy file in its run directory."""
    return f"{role}_policy.safetensors"


class MultiTaskPPO:
    """Train the pretrained (``oracle=False``) or oracle (``oracle=True``) baseline.

    Args:
        config: Configuration; ``baseline.*`` sets the budget and PPO overrides.
        oracle: Observe the task.
        run_dir: Output directory; ``None`` for ``runs/<name>-<role>-seed<seed>-<time>``. It
            must not already hold a run.
        progress: Show a progress bar.
    """

    def __init__(
        self,
        config: Config,
        oracle: bool,
        run_dir: str | Path | None = None,
        progress: bool = False,
    ) -> None:
        self.config = config
        self.oracle = oracle
        self.role = "oracle" if oracle else "pretrained"
        self.progress = progress
        stamp = time.strftime("%Y%m%d-%H%M%S")
        default = Path("runs") / f"{config.name}-{self.role}-seed{config.seed}-{stamp}"
        self.run_dir = Path(run_dir) if run_dir is not None else default

    def learn(self) -> PolicyFile:
        """Train for the budget and write the run directory; return the trained policy."""
        config = self.config
        if (self.run_dir / "config.yaml").exists():
            raise ConfigError(
                f"--out: {self.run_dir} already holds a run; choose another directory"
            )
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            checkpoint.atomic_write_text(self.run_dir / "config.yaml", config_to_yaml(config))
        except OSError as error:
            raise ConfigError(f"--out: cannot write to {self.run_dir}: {error.strerror}") from None
        loop = InnerLoop(config, oracle=self.oracle, inner=config.baseline_inner())
        initial = loop.initial_parameters(derive_seed(config.seed, Stream.INITIAL_PARAMETERS))
        if config.baseline.log_std_init is not None:
            # SB3 initialises log_std to the constant log_std_init and draws nothing for it, so
            # this is the policy built with that value (the other parameters are unchanged).
            initial["log_std"] = np.full_like(initial["log_std"], config.baseline.log_std_init)
        loop.load(initial)
        loop.ppo.set_random_seed(derive_seed(config.seed, Stream.BASELINE))
        task_type = family_task_type(config.env.id)
        rollouts = math.ceil(config.baseline_env_steps() / loop.rollout_size)
        log = RunLog(
            self.run_dir,
            PROGRESS_COLUMNS,
            0,
            rollouts,
            self.progress,
            {"return": "return"},
            tag=self.role,
        )
        env_steps, wall = 0, 0.0
        try:
            for index in range(rollouts):
                start = time.perf_counter()
                # A fresh task for every env before every rollout (none changes mid-episode).
                seed = derive_seed(config.seed, Stream.BASELINE, index)
                loop.set_tasks(task_type.sample(loop.ppo.n_envs, seed=seed))
                rollout = loop.update()
                elapsed = time.perf_counter() - start
                env_steps += rollout.env_steps
                wall += elapsed
                row = {
                    "rollout": index,
                    "env_steps": env_steps,
                    "wall_s": round(wall, 3),
                    "return": rollout.mean_return,
                }
                scalars = {
                    f"ppo/{k.removeprefix('train/')}": v for k, v in rollout.train_stats.items()
                }
                log.record(row, scalars, rollout.env_steps / max(elapsed, 1e-9))
        finally:
            log.close()
        info = {"env_steps": env_steps, "rollouts": rollouts}
        policy = PolicyFile(loop.parameters(), config, self.role, self.oracle, info)
        save_policy(self.run_dir / policy_filename(self.role), policy)
        export_sb3(loop, policy.params, self.run_dir / f"{self.role}_policy.zip")
        loop.close()
        return policy
