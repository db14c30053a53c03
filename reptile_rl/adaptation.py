"""Adapt a meta-policy to one new task: the recipe's last step, for users.

:func:`adapt` takes a source (a run, a policy file, an SB3 zip or a preset's shipped policy),
runs ``K`` updates of the source's own evaluation settings on the task (its per-update rates,
its advantage baseline, its episodes per update) and returns an :class:`Adaptation`: the
returns after each update and the adapted policy, which saves as a plain SB3 zip.

:func:`sb3_adaptation` is the same adaptation for a user who holds an SB3 env: it returns an
SB3 model and a callback, and SB3's own ``model.learn`` adapts. Plain ``PPO.load`` + ``learn``
barely does: it keeps the zip's plain gradient step but takes the meta-initialised critic as
the advantage baseline and one rate for every update, not the per-rollout linear baseline and
the per-update rates the initialisation was meta-trained for (measured in
``benchmarks/sb3_native_adaptation.py``: -27 against -2 after 3 updates).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stable_baselines3.common.vec_env import VecEnv

from reptile_rl import learners
from reptile_rl.atomic import atomic_write_text
from reptile_rl.config import Config, ConfigError
from reptile_rl.envs.base import Task
from reptile_rl.learners import AdaptJob, initial_parameters, make_learner
from reptile_rl.metrics import METRICS
from reptile_rl.policies import PolicyFile, check_compatible, export_policy, save_policy
from reptile_rl.report import metric_columns
from reptile_rl.rundir import ensure_new_folder
from reptile_rl.seeding import Stream, derive_seed
from reptile_rl.sources import base_config, config_with_overrides, load_meta_policy, parse_task

KEY_COLUMNS = ["update", "env_steps"]
"""The columns saying what a row measured; a column per metric follows them."""


@dataclasses.dataclass
class Adaptation:
    """A policy adapted to one task, with every metric after every update.

    Attributes:
        policy: The adapted policy (its ``config`` holds the settings it was adapted with).
        task: The task.
        curves: Per metric name (:data:`~reptile_rl.metrics.METRICS`), its values after 0, 1,
            ..., K updates, for the metrics measured: ``curves["return"]`` the stochastic
            policy's mean return, ``"mean_action_return"`` the same acting on the mean action,
            the success rates where the env reports success (SB3's ``info["is_success"]``).
        rollout_size: Env steps of one update.
    """

    policy: PolicyFile
    task: Task
    curves: dict[str, list[float]]
    rollout_size: int

    @property
    def returns(self) -> list[float]:
        """The stochastic policy's mean return after 0, 1, ..., K updates."""
        return self.curves["return"]

    def columns(self) -> list[str]:
        """The keys of :meth:`rows`: a metric's column where it was measured or always given."""
        measured = [metric for metric in METRICS if self.curves.get(metric.name)]
        return KEY_COLUMNS + metric_columns(measured)

    def rows(self) -> list[dict[str, Any]]:
        """One row per update: ``update``, ``env_steps`` and a value per metric column.

        ``""`` where a metric was not measured at that update.
        """
        rows: list[dict[str, Any]] = []
        metrics = self.columns()[len(KEY_COLUMNS) :]
        for k in range(len(self.returns)):
            row: dict[str, Any] = {"update": k, "env_steps": k * self.rollout_size}
            for name in metrics:
                values = self.curves.get(name, [])
                row[name] = values[k] if k < len(values) else ""
            rows.append(row)
        return rows

    def to_sb3(self, env: VecEnv | None = None) -> Any:
        """The adapted policy as an SB3 model of the learner's class (PPO or A2C).

        Args:
            env: The env to attach (e.g. your own VecEnv of the task); ``None`` keeps a VecEnv
                of the task built from the configuration.
        """
        config = self.policy.config
        inner = config.evaluation_inner()
        model = learners.sb3_model(config, inner, self.policy.params, self.policy.oracle)
        model.get_env().env_method("set_task", self.task)
        if env is not None:
            model.set_env(env)
        return model

    def save(self, out_dir: str | Path) -> list[Path]:
        """Write ``policy.zip`` (plain SB3), ``policy.safetensors`` and ``adaptation.csv``.

        Raises:
            ConfigError: If ``out_dir`` exists and is not empty (nothing is written).
        """
        out = Path(out_dir)
        ensure_new_folder(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "policy.zip", out / "policy.safetensors", out / "adaptation.csv"]
        export_policy(self.policy, paths[0], inner=self.policy.config.evaluation_inner())
        save_policy(paths[1], self.policy)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        atomic_write_text(paths[2], buffer.getvalue())
        return paths


def resolve_source(source: str | Path | PolicyFile, base: Config | None = None) -> PolicyFile:
    """A policy from anything :func:`~reptile_rl.sources.load_meta_policy` takes, or as given."""
    return source if isinstance(source, PolicyFile) else load_meta_policy(source, base)


def adapt(
    source: str | Path | PolicyFile,
    task: Task | dict[str, Any] | str,
    updates: int | None = None,
    episodes: int | None = None,
    seed: int = 0,
    overrides: Sequence[str] = (),
) -> Adaptation:
    """Adapt a meta-policy to ``task`` with the source's own evaluation settings.

    Args:
        source: A run directory, a checkpoint or policy file, an SB3 ``.zip`` (a plain one
            needs ``env.id=...`` in ``overrides``), a preset name (its shipped meta-policy), or
            a loaded :class:`~reptile_rl.policies.PolicyFile`.
        task: A task of the source's family: a ``Task``, its ``to_dict()``, its JSON, or the
            path of a JSON file.
        updates: Updates to run; ``None``: the source's ``evaluation.updates``. 0 returns the
            initialisation unchanged (measured on the task).
        episodes: Episodes per update; ``None``: the source's ``evaluation.episodes``.
        seed: Seeds every random draw of the adaptation.
        overrides: ``key=value`` overrides of the source's configuration.

    Returns:
        The adapted policy and its returns (and success rates, where the env reports success)
        after every update.

    Raises:
        ConfigError: For a task of another family, bad values or overrides.
        CheckpointError: For an unreadable or incompatible source.
    """
    settings = (("updates", updates), ("episodes", episodes))
    extra = [f"evaluation.{key}={value}" for key, value in settings if value is not None]
    base = base_config(list(overrides))
    policy = resolve_source(source, base)
    config = config_with_overrides(policy, [*overrides, *extra])
    if seed < 0:
        raise ConfigError(f"--seed: must be a non-negative integer, got {seed}")
    the_task = parse_task(task, config)
    check_compatible(initial_parameters(config, 0, policy.oracle), policy.params, str(source))
    inner = config.evaluation_inner()
    learner = make_learner(config, policy.oracle, inner)
    try:
        job = AdaptJob(
            the_task,
            derive_seed(seed, Stream.USER_ADAPTATION),
            config.evaluation.updates,
            measure_final=True,
            measure_mean_action=True,
            inner_log_rates=policy.inner_log_rates,
        )
        result = learner.adapt(policy.params, job)
    finally:
        learner.close()
    info = {"task": the_task.to_dict(), "updates": config.evaluation.updates, "seed": seed}
    adapted = PolicyFile(result.params, config, "adapted", policy.oracle, info)  # rates used up
    curves = {metric.name: getattr(result, metric.field) for metric in METRICS}
    return Adaptation(adapted, the_task, curves, learner.rollout_size)


def sb3_adaptation(
    source: str | Path | PolicyFile, env: VecEnv, overrides: Sequence[str] = ()
) -> tuple[Any, Any]:
    """An SB3 model on your env, set up to adapt as :func:`adapt` does, and its callback.

    ``model.learn(K * model.n_steps * env.num_envs, callback=callback)`` then runs K updates
    of the source's evaluation settings (plain gradient steps with its per-update rates, its
    advantage baseline); ``env.num_envs`` is the episodes per update. The model is the
    source's learner's own SB3 class (``PPO`` or ``A2C``), the callback an SB3 callback.

    Args:
        source: As for :func:`adapt`.
        env: A VecEnv of the task (set the task on it first).
        overrides: ``key=value`` overrides of the source's configuration.
    """
    policy = resolve_source(source, base_config(list(overrides)))
    config = config_with_overrides(policy, overrides)
    inner = config.evaluation_inner().model_copy(update={"n_envs": env.num_envs})
    return learners.sb3_adaptation(config, inner, policy.params, policy.inner_log_rates, env)
