"""Configuration: one dataclass tree, YAML presets, ``--set key=value`` overrides, validation.

The dataclasses below are the single source of truth for every option: their defaults, the
help text and the allowed range of each field live in the field's metadata, and the CLI, the
presets and the checks are all derived from them. A preset is just a YAML file of values for
this tree (``reptile_rl/presets/*.yaml``).

Every check runs before any work starts, and every message names the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from reptile_rl.families import check_env_kwargs, env_horizon, family_task_type
from reptile_rl.vec_env import make_vec_env


class ConfigError(ValueError):
    """A user error in a configuration: the message names the key and what is allowed."""


def option(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    pattern: str | None = None,
) -> Any:
    """A dataclass field with its help text and allowed range.

    Args:
        default: Default value (lists and dicts are copied per instance).
        help: One sentence for ``--help`` and the docs.
        low: Smallest allowed value (numbers, and the items of lists of numbers).
        high: Largest allowed value.
        low_open: Whether ``low`` itself is excluded (``> low`` rather than ``>= low``).
        pattern: A regular expression string values must match.
    """
    metadata = {"help": help, "low": low, "high": high, "low_open": low_open, "pattern": pattern}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class EnvConfig:
    """Which task family to meta-learn on."""

    id: str = option("ReptileRL/Navigation2D-v0", "Registered Gymnasium id of a task family.")
    kwargs: dict[str, Any] = option({}, "Keyword arguments passed to gymnasium.make.")


@dataclasses.dataclass
class PolicyConfig:
    """The actor-critic network (SB3 ``MlpPolicy``; MAML used two hidden layers of 100)."""

    net_arch: list[int] = option([100, 100], "Hidden layer sizes of actor and critic.", low=1)
    activation: Literal["relu", "tanh"] = option("relu", "Hidden activation (MAML: relu).")
    log_std_init: float = option(0.0, "Initial log standard deviation of the Gaussian policy.")
    ortho_init: bool = option(True, "Orthogonal initialisation of the layers, as SB3's default.")


AUTO_BATCH_SIZE = 500
"""``inner.batch_size: auto``'s minibatch size where the rollout holds that many steps."""


@dataclasses.dataclass
class InnerConfig:
    """The inner loop: a stable-baselines3 on-policy learner (PPO or A2C) adapting to one task.

    One *update* is one rollout (``n_envs * n_steps`` steps) followed by the learner's training
    phase. By default a rollout is 20 episodes (20 envs, one horizon each), MAML's 20
    trajectories per adaptation step. ``n_epochs``, ``batch_size`` and ``clip_range`` are PPO's
    own settings; A2C takes one gradient step on the whole rollout per update.
    """

    algorithm: Literal["ppo", "a2c"] = option(
        "ppo",
        "SB3 learner of the inner loop: ppo, or a2c (one gradient step on the whole rollout per "
        "update; A2C ignores the PPO-only n_epochs, batch_size and clip_range).",
    )
    updates: int = option(3, "Learner updates per task during meta-training.", low=1)
    n_envs: int = option(20, "Parallel environments = episodes per rollout.", low=1)
    n_steps: int | None = option(
        None, "Steps per env per rollout; null means the env's horizon (one episode).", low=1
    )
    learning_rate: float = option(
        3e-4, "Learning rate of the inner updates.", low=0.0, low_open=True
    )
    update_learning_rates: list[float] = option(
        [],
        "Learning rate of the 1st, 2nd, ... update of each adaptation (the last one repeats), "
        "as MAML++'s per-step inner learning rates; empty: learning_rate for every update. "
        "Multi-task baselines always train with learning_rate.",
        low=0.0,
        low_open=True,
    )
    log_std_lr_scale: float = option(
        1.0,
        "Learning rate of the policy's log_std as a multiple of learning_rate (Meta-SGD's "
        "per-parameter inner rates, set by hand): above 1 an adaptation can shrink its "
        "exploration noise once it has found the task; 0 keeps the noise fixed. Values other "
        "than 0 and 1 need the sgd optimizer (Adam's steps ignore the gradient's scale).",
        low=0.0,
    )
    adapt_only: list[str] = option(
        [],
        "Regexes of the policy parameters the inner loop adapts (ANIL, Raghu et al. 2020: e.g. "
        "['action_net.*', 'log_std'] for the last layer and the noise); the others stay "
        "frozen. Empty: every parameter. With Reptile a frozen parameter is never meta-learned "
        "either (phi equals theta there).",
    )
    n_epochs: int = option(10, "PPO only: epochs over each rollout.", low=1)
    batch_size: int | Literal["auto"] | None = option(
        "auto",
        f"PPO only: minibatch size; null: the whole rollout (one gradient step per epoch); "
        f"auto: {AUTO_BATCH_SIZE}, or the whole rollout when it is smaller.",
        low=1,
    )
    clip_range: float = option(0.2, "PPO only: clipping parameter.", low=0.0, low_open=True)
    gamma: float = option(0.99, "Discount factor.", low=0.0, high=1.0)
    gae_lambda: float = option(0.95, "GAE lambda (1.0: Monte Carlo returns).", low=0.0, high=1.0)
    ent_coef: float = option(0.0, "Entropy bonus coefficient.", low=0.0)
    vf_coef: float = option(0.5, "Value loss coefficient.", low=0.0)
    max_grad_norm: float = option(0.5, "Gradient clipping norm.", low=0.0, low_open=True)
    normalize_advantage: bool = option(True, "Normalise advantages per minibatch.")
    advantage_baseline: Literal["critic", "linear"] = option(
        "critic",
        "Baseline of the advantages: the (meta-initialised) critic, or MAML's linear feature "
        "baseline fitted on each rollout (rllab's LinearFeatureBaseline).",
    )
    bootstrap_time_limit: bool = option(
        True,
        "Bootstrap returns with the critic where the time limit cuts an episode (SB3's "
        "default); false treats the horizon as the end of the task, as MAML's finite-horizon "
        "setting does.",
    )
    optimizer: Literal["adam", "sgd"] = option("adam", "Inner optimizer.")
    reset_optimizer: bool = option(
        True, "Fresh optimizer state for every task (else it carries over between tasks)."
    )

    def rollout_size(self, horizon: int) -> int:
        """Env steps of one rollout: ``n_envs`` envs for ``n_steps`` (default ``horizon``)."""
        return self.n_envs * (self.n_steps or horizon)

    def minibatch_size(self, horizon: int) -> int:
        """PPO's minibatch size: ``batch_size`` resolved against the rollout size."""
        rollout = self.rollout_size(horizon)
        if self.batch_size == "auto":
            return min(AUTO_BATCH_SIZE, rollout)
        return self.batch_size or rollout


@dataclasses.dataclass
class OuterConfig:
    """The Reptile outer loop (Nichol, Achiam and Schulman 2018)."""

    iterations: int = option(100, "Meta-iterations.", low=1)
    meta_batch_size: int = option(10, "Tasks adapted to per meta-iteration.", low=1)
    eps_start: float = option(
        1.0,
        "Outer step size at the first iteration (at most 1 with direction reptile).",
        low=0.0,
    )
    eps_end: float = option(
        0.0,
        "Outer step size at the last iteration (linear; at most 1 with direction reptile).",
        low=0.0,
    )
    eps_hold: int = option(
        0,
        "Iterations eps stays at eps_start before its linear anneal to eps_end (reached at the "
        "last iteration) begins; a run of no more iterations keeps eps_start throughout.",
        low=0,
    )
    direction: Literal["reptile", "last_step"] = option(
        "reptile",
        "What theta moves along: reptile, phi - theta; or last_step, the last inner update "
        "phi_K - phi_(K-1), which with plain SGD inner steps is first-order MAML's gradient of "
        "the return after K-1 updates.",
    )
    optimizer: Literal["interpolate", "adam"] = option(
        "interpolate",
        "theta += eps * mean(phi - theta), or Adam fed with theta - mean(phi) as gradient and "
        "eps as its learning rate (then use small eps, e.g. 0.001).",
    )
    adam_beta1: float = option(0.9, "Outer Adam's first-moment decay.", low=0.0, high=1.0)
    adam_beta2: float = option(0.999, "Outer Adam's second-moment decay.", low=0.0, high=1.0)
    measure_adapted: bool = option(
        True,
        "Roll out once more after the last inner update to log the adapted return "
        "(costs up to one rollout per task; no effect on theta).",
    )
    exclude: list[str] = option(
        [], "Regexes of parameter names that are not meta-learned (they keep their initial value)."
    )
    inner_rates: Literal["fixed", "tensor", "element"] = option(
        "fixed",
        "Meta-learned inner learning rates (Meta-SGD, Li et al. 2017, first order): fixed, the "
        "configured rates; tensor, a learned rate per parameter tensor; element, one per "
        "parameter. Initialised at the training rates, stored with theta, used by evaluate "
        "and adapt for the meta-policy. Needs plain SGD steps (sgd, one epoch, one batch).",
    )
    inner_rates_per_update: bool = option(
        False, "A learned rate for each inner update (as MAML++'s per-step rates), else one."
    )
    inner_rates_learning_rate: float = option(
        0.01, "Outer Adam's learning rate for the log inner rates.", low=0.0, low_open=True
    )


@dataclasses.dataclass
class BaselineConfig:
    """Multi-task baselines (``reptile-rl pretrain``): pretrained and oracle."""

    env_steps: int | None = option(
        None,
        "Training env steps; null means the meta-training budget "
        "(iterations x meta_batch_size x updates x rollout size).",
        low=1,
    )
    inner: dict[str, Any] = option(
        {}, "Overrides of the inner settings for baseline training, e.g. {n_envs: 100}."
    )
    log_std_init: float | None = option(
        None,
        "Initial log standard deviation of the baselines' policy; null: policy.log_std_init. "
        "Multi-task training can need more exploration noise than adaptation does.",
    )


@dataclasses.dataclass
class EvaluationConfig:
    """Adaptation curves on held-out tasks (``reptile-rl evaluate``), MAML's protocol."""

    tasks: int = option(40, "Held-out test-split tasks.", low=1)
    seed: int = option(0, "Seed of the held-out tasks and adaptations (not the run seed).", low=0)
    updates: int = option(
        3, "Learner updates per task (returns are reported after 0..updates).", low=0
    )
    episodes: int = option(20, "Episodes per update (the rollout's n_envs).", low=1)
    inner: dict[str, Any] = option(
        {}, "Overrides of the inner settings during evaluation, e.g. {learning_rate: 0.01}."
    )


@dataclasses.dataclass
class ParallelConfig:
    """Where inner loops run."""

    backend: Literal["auto", "serial", "ray"] = option(
        "auto", "serial (in-process), ray, or auto (ray when workers > 1 and Ray is installed)."
    )
    workers: int = option(1, "Parallel inner-loop workers.", low=1)
    address: str | None = option(None, "Ray cluster address ('auto', 'ray://host:10001'), or null.")


@dataclasses.dataclass
class Config:
    """A complete meta-training run: a pure function of these values."""

    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    policy: PolicyConfig = dataclasses.field(default_factory=PolicyConfig)
    inner: InnerConfig = dataclasses.field(default_factory=InnerConfig)
    outer: OuterConfig = dataclasses.field(default_factory=OuterConfig)
    parallel: ParallelConfig = dataclasses.field(default_factory=ParallelConfig)
    baseline: BaselineConfig = dataclasses.field(default_factory=BaselineConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    seed: int = option(0, "Run seed: every random draw derives from it.", low=0)
    checkpoint_every: int = option(10, "Write a checkpoint every N meta-iterations.", low=1)
    name: str = option(
        "run", "Run name (used for default output directories).", pattern=r"^[A-Za-z0-9_.-]+$"
    )

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain, YAML-ready data."""
        return dataclasses.asdict(self)

    def horizon(self) -> int:
        """The env's episode length."""
        return env_horizon(self.env.id)

    def baseline_inner(self) -> InnerConfig:
        """Inner settings for baseline training: ``inner`` updated by ``baseline.inner``."""
        return _inner_with(self.inner, self.baseline.inner, "baseline.inner.")

    def evaluation_inner(self) -> InnerConfig:
        """Inner settings for evaluation.

        ``inner`` with ``evaluation.episodes`` envs, then the ``evaluation.inner`` overrides.
        """
        with_episodes = dataclasses.replace(self.inner, n_envs=self.evaluation.episodes)
        return _inner_with(with_episodes, self.evaluation.inner, "evaluation.inner.")

    def baseline_env_steps(self) -> int:
        """Env-step budget of the baselines (default: meta-training's training steps)."""
        if self.baseline.env_steps is not None:
            return self.baseline.env_steps
        rollout = self.inner.rollout_size(self.horizon())
        return self.outer.iterations * self.outer.meta_batch_size * self.inner.updates * rollout


def _inner_with(base: InnerConfig, overrides: Mapping[str, Any], prefix: str) -> InnerConfig:
    inner: InnerConfig = _build(InnerConfig, {**dataclasses.asdict(base), **overrides}, prefix)
    return inner


# -- building and checking ------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(arg) for arg in get_args(tp))
    if _is_optional(tp):
        return f"{_type_name(_strip_optional(tp))} or null"
    if _is_union(tp):
        return " or ".join(_type_name(arg) for arg in get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _is_optional(tp: Any) -> bool:
    return _is_union(tp) and type(None) in get_args(tp)


def _strip_optional(tp: Any) -> Any:
    rest = tuple(arg for arg in get_args(tp) if arg is not type(None))
    return rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007 (a runtime tuple)


def _check_range(key: str, value: float, meta: Mapping[str, Any]) -> None:
    low, high, low_open = meta.get("low"), meta.get("high"), meta.get("low_open")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        left = "(" if low_open else "["
        bounds = (
            f"{left}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        )
        raise ConfigError(f"{key}: must be in {bounds}, got {value!r}")


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(key: str, value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    """Return ``value`` checked against type ``tp`` and the field's range, or raise."""
    if _is_optional(tp) and value is None:
        return None
    if _is_union(tp) and any(get_origin(arg) is Literal for arg in get_args(tp)):
        # A type with named choices (int | Literal["auto"] | None): a choice, else the other type.
        choices = [arg for arg in get_args(tp) if get_origin(arg) is Literal]
        (other,) = [arg for arg in get_args(_strip_optional(tp)) if get_origin(arg) is not Literal]
        if any(value in get_args(choice) for choice in choices):
            return value
        if isinstance(value, str) and other is not str:
            raise ConfigError(
                f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
            )
        return _coerce(key, value, other, meta)
    if _is_optional(tp):
        return _coerce(key, value, _strip_optional(tp), meta)
    origin = get_origin(tp)
    wrong = ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            raise wrong
        return value
    if origin is list:
        (item_type,) = get_args(tp)
        if not isinstance(value, list):
            raise wrong
        return [_coerce(f"{key}[{i}]", item, item_type, meta) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise wrong
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        _check_range(key, value, meta)
        return value
    if tp is float:
        if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e9 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        _check_range(key, float(value), meta)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise wrong
        if meta.get("pattern") and not re.match(meta["pattern"], value):
            raise ConfigError(f"{key}: must match {meta['pattern']}, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp} for {key}")


def _build(cls: type[Any], data: Mapping[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, checking keys, types and ranges."""
    if not isinstance(data, Mapping):
        where = prefix.rstrip(".") or "the configuration"
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown key; allowed keys here: {', '.join(sorted(fields))}"
        )
    values: dict[str, Any] = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, value, f"{prefix}{name}.")  # type: ignore[arg-type]
        else:
            values[name] = _coerce(prefix + name, value, tp, fields[name].metadata)
    return cls(**values)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build and fully check a :class:`Config` from plain data.

    Raises:
        ConfigError: Naming the first offending key and what is allowed.
    """
    config: Config = _build(Config, data)
    check_config(config)
    return config


def check_config(config: Config) -> None:
    """Checks that involve several fields or the environment registry; builds no env.

    Raises:
        ConfigError: Naming the key and what is allowed.
    """
    try:
        family_task_type(config.env.id)
    except ValueError as error:
        raise ConfigError(f"env.id: {error}") from None
    try:
        check_env_kwargs(config.env.id, config.env.kwargs)
    except ValueError as error:
        raise ConfigError(f"env.kwargs: {error}") from None
    horizon = env_horizon(config.env.id)
    for prefix, settings in [
        ("inner.", config.inner),
        ("baseline.inner.", config.baseline_inner()),
        ("evaluation.inner.", config.evaluation_inner()),
    ]:
        if settings.n_steps is not None and settings.n_steps < horizon:
            raise ConfigError(
                f"{prefix}n_steps: must be at least the env's horizon ({horizon}) so that every "
                f"rollout holds a complete episode per env, got {settings.n_steps}"
            )
        if settings.log_std_lr_scale not in (0.0, 1.0) and settings.optimizer != "sgd":
            raise ConfigError(
                f"{prefix}log_std_lr_scale: must be 0 or 1 with the {settings.optimizer} "
                f"optimizer (other values need sgd), got {settings.log_std_lr_scale}"
            )
        rollout = settings.rollout_size(horizon)
        if isinstance(settings.batch_size, int) and settings.batch_size > rollout:
            raise ConfigError(
                f"{prefix}batch_size: must be at most the rollout size n_envs * n_steps = "
                f"{rollout}, got {settings.batch_size}"
            )
    if config.outer.inner_rates != "fixed":
        for prefix, inner in (
            ("inner.", config.inner),
            ("evaluation.inner.", config.evaluation_inner()),
        ):
            one_step = inner.algorithm == "a2c" or (
                inner.n_epochs == 1 and inner.minibatch_size(horizon) == inner.rollout_size(horizon)
            )
            if inner.optimizer != "sgd" or not one_step or inner.log_std_lr_scale != 1.0:
                raise ConfigError(
                    f"outer.inner_rates: {config.outer.inner_rates} learns the rates of plain "
                    f"gradient steps: needs {prefix}optimizer sgd, one gradient step per update "
                    f"({prefix}n_epochs 1, batch_size null) and log_std_lr_scale 1"
                )
        if not config.outer.measure_adapted:
            raise ConfigError(
                "outer.inner_rates: the rates' gradient comes from the rollout after the last "
                "update: needs outer.measure_adapted true"
            )
    if config.outer.direction == "reptile":
        # Reptile interpolates between theta and the adapted parameters (Nichol et al. 2018).
        for key in ("eps_start", "eps_end"):
            value = getattr(config.outer, key)
            if value > 1.0:
                raise ConfigError(
                    f"outer.{key}: must be in [0.0, 1.0] with outer.direction reptile (an "
                    f"interpolation; larger steps need direction last_step), got {value!r}"
                )
    _check_regexes("outer.exclude", config.outer.exclude)
    _check_regexes("inner.adapt_only", config.inner.adapt_only)
    _check_regexes("evaluation.inner.adapt_only", config.evaluation_inner().adapt_only)


def _check_regexes(key: str, patterns: list[str]) -> None:
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigError(f"{key}[{index}]: invalid regex {pattern!r}: {error}") from None


def check_env_builds(config: Config) -> None:
    """Build one env of ``config`` to check the values of ``env.kwargs``.

    :func:`check_config` checks their names without building anything; a command that is
    about to start work calls this once (a MuJoCo env takes tens of milliseconds to build).

    Raises:
        ConfigError: If the family rejects the arguments.
    """
    try:
        make_vec_env(config.env.id, config.env.kwargs, n_envs=1).close()
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"env.kwargs: {config.env.id} rejects {config.env.kwargs}: {error}"
        ) from None


# -- presets, YAML and overrides ------------------------------------------------------------


def preset_names() -> list[str]:
    """Names of the packaged presets."""
    folder = resources.files("reptile_rl") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(
            f"{source}: invalid YAML{where}: {getattr(error, 'problem', error)}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    return data


def load_preset_data(preset_or_path: str) -> dict[str, Any]:
    """Return the raw values of a packaged preset name or a YAML file path.

    Raises:
        ConfigError: If it is neither a preset nor a readable YAML file.
    """
    if preset_or_path in preset_names():
        text = (resources.files("reptile_rl") / "presets" / f"{preset_or_path}.yaml").read_text()
        data = _read_yaml(text, f"preset {preset_or_path}")
        data.setdefault("name", preset_or_path)
        return data
    path = Path(preset_or_path)
    if not path.is_file():
        raise ConfigError(
            f"unknown preset or file {preset_or_path!r}: presets are {', '.join(preset_names())}"
        )
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    data = _read_yaml(text, str(path))
    data.setdefault("name", re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem) or "run")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b=value"`` into its key path and YAML-typed value.

    Raises:
        ConfigError: If the text is not ``key=value``.
    """
    key, sep, raw = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise ConfigError(
            f"--set {text!r}: expected key=value with a dotted key, e.g. inner.n_epochs=5"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``key=value`` overrides applied (nested keys allowed)."""
    result = _deep_copy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(path[: depth + 1])} is not a section")
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def load_config(
    preset_or_path: str, overrides: list[str] | None = None, seed: int | None = None
) -> Config:
    """Resolve a preset or YAML file, apply overrides (and a seed), and check everything.

    Args:
        preset_or_path: A packaged preset name (``navigation``...) or a YAML file.
        overrides: ``key=value`` strings, e.g. ``["inner.learning_rate=0.01"]``.
        seed: Replaces ``seed`` when given.

    Raises:
        ConfigError: Naming the first offending key and what is allowed.
    """
    data = apply_overrides(load_preset_data(preset_or_path), overrides or [])
    if seed is not None:
        data["seed"] = seed
    return config_from_dict(data)


def config_from_yaml(text: str, source: str) -> Config:
    """Parse and check a resolved ``config.yaml``."""
    return config_from_dict(_read_yaml(text, source))


def config_to_yaml(config: Config) -> str:
    """Return the resolved configuration as YAML (keys in declaration order)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def iter_options(cls: type[Any] = Config, prefix: str = "") -> Iterator[tuple[str, Any, str]]:
    """Yield ``(dotted key, default, help)`` for every option, for ``--help`` and the docs."""
    instance = cls()
    for field in dataclasses.fields(cls):
        value = getattr(instance, field.name)
        if dataclasses.is_dataclass(value):
            yield from iter_options(type(value), f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", value, field.metadata.get("help", "")
