"""Find what ``reptile-rl evaluate`` and ``adapt`` work on: policies, baselines and tasks.

A source is a training run directory, a policy or checkpoint file, an SB3 ``.zip``, or the name
of a preset whose trained policies ship with the package (``reptile_rl/pretrained/<preset>/``).
Everything is resolved and checked here, before any work starts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from reptile_rl import environment
from reptile_rl.checkpoint import CheckpointError
from reptile_rl.config import Config, ConfigError, apply_overrides, config_from_dict
from reptile_rl.envs.base import Task, task_from_dict
from reptile_rl.evaluation import INIT_NAMES, check_policies
from reptile_rl.families import family_class
from reptile_rl.policies import PolicyFile, read_policy_file
from reptile_rl.rundir import RunDir, policy_filename

logger = logging.getLogger(__name__)

META_FILE = policy_filename("meta")


@dataclasses.dataclass
class EvaluationPlan:
    """What to evaluate.

    Attributes:
        config: The meta-policy's configuration with the evaluation overrides applied.
        policies: Init name -> policy (``None`` for ``random``).
        sources: Init name -> where its policy came from.
        default_out: Output folder when ``--out`` is not given.
        tasks: Explicit tasks (``--task-file``) instead of a test-split draw.
    """

    config: Config
    policies: dict[str, PolicyFile | None]
    sources: dict[str, str]
    default_out: Path
    tasks: list[Task] | None = None


def shipped_dir(preset: str) -> Path | None:
    """The folder of a preset's shipped policies, if the package has them."""
    folder = resources.files("reptile_rl") / "pretrained" / preset
    path = Path(str(folder))
    return path if (path / META_FILE).is_file() else None


def config_with_overrides(policy: PolicyFile, overrides: Sequence[str] = ()) -> Config:
    """A policy's configuration with ``key=value`` overrides (e.g. ``evaluation.updates=1``).

    Raises:
        ConfigError: Naming the first offending key.
    """
    return config_from_dict(apply_overrides(policy.config.to_dict(), list(overrides)))


def load_meta_policy(source: str | Path, base: Config | None = None) -> PolicyFile:
    """Load the meta-policy a source names (the ``SOURCE`` of ``evaluate`` and ``adapt``).

    Args:
        source: A run directory (its meta-policy, else its latest checkpoint), a policy or
            checkpoint file, an SB3 ``.zip``, or a preset name with shipped policies.
        base: The configuration a plain SB3 zip is used with (it names no env).

    Returns:
        The meta-policy's parameters with the configuration it was trained under.

    Raises:
        CheckpointError: If nothing loadable is found there.
    """
    path, _, _ = _meta_file(str(source))
    return read_policy_file(path, base)


def _meta_file(source: str) -> tuple[Path, Path, Path]:
    """Return (meta policy file, folder holding the baselines, default output folder)."""
    path = Path(source)
    if path.is_dir():
        run = RunDir(path)
        for candidate in (run.policy_file("meta"), run.latest_checkpoint):
            if candidate.is_file():
                return candidate, path, run.eval_dir
        raise CheckpointError(f"{path}: holds no {META_FILE} and no checkpoints/latest.safetensors")
    if path.is_file():
        return path, path.parent, RunDir(path.parent).eval_dir
    shipped = shipped_dir(source)
    if shipped is not None:
        return shipped / META_FILE, shipped, Path("runs") / f"{source}-shipped-eval"
    raise CheckpointError(
        f"{source}: no such run directory or file, and no preset with shipped policies"
    )


def base_config(overrides: list[str]) -> Config | None:
    """The configuration for a plain SB3 zip source: defaults with the overrides (its env).

    ``None`` unless the overrides name an env: a plain zip does not, and must be told.
    """
    data = apply_overrides({}, overrides)
    return config_from_dict(data) if "id" in data.get("env", {}) else None


def _baseline_file(role: str, given: Path | None, folder: Path) -> Path | None:
    if given is None:
        candidate = RunDir(folder).policy_file(role)
        return candidate if candidate.is_file() else None
    if given.is_dir():
        candidate = RunDir(given).policy_file(role)
        if not candidate.is_file():
            raise CheckpointError(f"--{role} {given}: holds no {candidate.name}")
        return candidate
    return given


def _parse_inits(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError(f"--inits: expected names among {', '.join(INIT_NAMES)}, got {text!r}")
    for name in names:
        if name not in INIT_NAMES:
            raise ConfigError(
                f"--inits: unknown init {name!r}; choose from {', '.join(INIT_NAMES)}"
            )
    return names


def read_task_file(path: Path, config: Config) -> list[Task]:
    """Read a JSON list of tasks (``Task.to_dict`` objects) for ``config``'s env family.

    Raises:
        ConfigError: Naming the file, the task's index and what is wrong with it.
    """
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"--task-file {path}: cannot read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"--task-file {path}: invalid JSON: {error}") from None
    if not isinstance(data, list) or not data:
        raise ConfigError(f"--task-file {path}: expected a non-empty JSON list of tasks")
    family = family_class(config.env.id)
    tasks = []
    for index, item in enumerate(data):
        try:
            tasks.append(family.validate_task(task_from_dict(item)))
        except ValueError as error:
            raise ConfigError(f"--task-file {path}: task {index}: {error}") from None
    return tasks


def parse_task(task: str | dict[str, Any] | Task, config: Config) -> Task:
    """A task of ``config``'s family from a Task, its ``to_dict``, its JSON, or a JSON file.

    Raises:
        ConfigError: Naming what is wrong (unreadable, another family, a bad field or value).
    """
    data: Any = task
    if isinstance(task, str):
        text = task
        if not task.lstrip().startswith("{"):
            try:
                text = Path(task).read_text()
            except OSError as error:
                raise ConfigError(
                    f"--task: neither a JSON object nor a readable file: {task!r} "
                    f"({error.strerror})"
                ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"--task: invalid JSON: {error}") from None
    try:
        parsed = data if isinstance(data, Task) else task_from_dict(data)
        valid: Task = family_class(config.env.id).validate_task(parsed)
        return valid
    except ValueError as error:
        raise ConfigError(f"--task: {error}") from None


def resolve_evaluation(
    source: str,
    inits: str | None,
    pretrained: Path | None,
    oracle: Path | None,
    overrides: list[str],
    task_file: Path | None = None,
) -> EvaluationPlan:
    """Load and check everything an evaluation needs.

    Args:
        source: Run directory, policy/checkpoint file, or preset with shipped policies.
        inits: Comma-separated init names; ``None`` for meta, random and the baselines found.
        pretrained: Pretrained baseline (run directory or file); default: next to the source.
        oracle: Oracle baseline (run directory or file); default: next to the source.
        overrides: ``key=value`` overrides of the meta-policy's configuration.
        task_file: A JSON list of tasks to evaluate on instead of a test-split draw.

    Raises:
        ConfigError: For unknown init names or bad overrides.
        CheckpointError: For missing, corrupt or incompatible policy files.
    """
    wanted = _parse_inits(inits)
    meta_path, folder, default_out = _meta_file(source)
    meta = read_policy_file(meta_path, base_config(overrides))
    config = config_with_overrides(meta, overrides)
    policies: dict[str, PolicyFile | None] = {}
    sources: dict[str, str] = {}
    if wanted is None or "meta" in wanted:
        policies["meta"], sources["meta"] = meta, str(meta_path)
    for role, given in (("pretrained", pretrained), ("oracle", oracle)):
        path = _baseline_file(role, given, folder)
        if path is None:
            if wanted is not None and role in wanted:
                command = "pretrain --oracle" if role == "oracle" else "pretrain"
                raise CheckpointError(
                    f"--inits: the {role} init needs --{role} PATH (a `reptile-rl {command}` run)"
                )
            continue
        if wanted is None or role in wanted:
            policy = read_policy_file(path, config)
            if policy.role == "sb3":  # a plain SB3 zip is whatever it is given as
                policy = dataclasses.replace(policy, role=role, oracle=role == "oracle")
            policies[role], sources[role] = policy, str(path)
    if wanted is None or "random" in wanted:
        policies["random"], sources["random"] = None, "fresh policy per task"
    check_policies(config, {k: v for k, v in policies.items() if v is not None}, sources)
    tasks = None if task_file is None else read_task_file(task_file, config)
    for init, made in policies.items():
        recorded = {} if made is None or made.environment is None else made.environment
        warning = environment.difference_warning(f"the {init} policy ({sources[init]})", recorded)
        if warning is not None:
            logger.warning("evaluating: %s", warning)
    return EvaluationPlan(config, policies, sources, default_out, tasks)
