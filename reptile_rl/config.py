"""Configuration: typed models (pydantic), YAML presets, ``--set key=value`` overrides.

The models below are the single source of truth for every option: its type, default, range
and description, from which pydantic checks values and the CLI lists ``--help``'s options. The
``inner`` section is the model of the learner its ``algorithm`` names (one per inner learner:
:data:`INNER_CONFIGS`). A preset is just a YAML file of values for these models
(``reptile_rl/presets/*.yaml``); the rules that involve several fields or the env registry are
ours (:func:`check_config`).

Every check runs before any work starts, and every message names the key and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from gymnasium import spaces
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
)

from reptile_rl.families import check_env_kwargs, env_horizon, family_class, family_task_type
from reptile_rl.vec_env import make_vec_env


class ConfigError(ValueError):
    """A user error in a configuration: the message names the key and what is allowed."""


def _yaml_float(value: Any) -> Any:
    """YAML 1.1 reads ``1e9`` (an exponent without a dot) as a string: read it as a number."""
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    return value


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
Float = Annotated[float, BeforeValidator(_yaml_float)]
"""A float option: finite, an int accepted, ``1e9`` read as a number."""


class Section(BaseModel):
    """A configuration section: typed fields with descriptions, no unknown keys."""

    # strict: no "5" for 5 and no true for 1; finite floats only.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class EnvConfig(Section):
    """Which task family to meta-learn on."""

    id: str = Field(
        "ReptileRL/Navigation2D-v0", description="Registered Gymnasium id of a task family."
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments passed to gymnasium.make."
    )


class PolicyConfig(Section):
    """The actor-critic network (SB3 ``MlpPolicy``; MAML used two hidden layers of 100)."""

    net_arch: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [100, 100], description="Hidden layer sizes of actor and critic."
    )
    activation: Literal["relu", "tanh"] = Field(
        "relu", description="Hidden activation (MAML: relu)."
    )
    log_std_init: Float = Field(
        0.0, description="Initial log standard deviation of the Gaussian policy."
    )
    ortho_init: bool = Field(
        True, description="Orthogonal initialisation of the layers, as SB3's default."
    )


AUTO_BATCH_SIZE = 500
"""``inner.batch_size: auto``'s minibatch size where the rollout holds that many steps."""


_ALGORITHM_HELP = (
    "SB3 learner of the inner loop: ppo (the default), a2c (one gradient step on the whole "
    "rollout per update; it has no n_epochs, batch_size or clip_range), dqn (discrete "
    "actions; off-policy: gradient steps on a replay buffer of the task) or sac (continuous "
    "actions; off-policy, as dqn)."
)


class InnerBase(Section):
    """The inner loop: a stable-baselines3 learner adapting to one task (shared settings).

    One *update* is one rollout (``n_envs * n_steps`` steps) followed by the learner's training
    phase. By default a rollout is 20 episodes (20 envs, one horizon each), MAML's 20
    trajectories per adaptation step.
    """

    algorithm: str = Field("ppo", description=_ALGORITHM_HELP)

    updates: int = Field(3, ge=1, description="Learner updates per task during meta-training.")
    n_envs: int = Field(20, ge=1, description="Parallel environments = episodes per rollout.")
    n_steps: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Steps per env per rollout; null means the env's horizon (one episode)."
    )
    learning_rate: Float = Field(3e-4, gt=0.0, description="Learning rate of the inner updates.")
    update_learning_rates: list[Annotated[Float, Field(gt=0.0)]] = Field(
        default_factory=list,
        description="Learning rate of the 1st, 2nd, ... update of each adaptation (the last one "
        "repeats), as MAML++'s per-step inner learning rates; empty: learning_rate for every "
        "update. Multi-task baselines always train with learning_rate.",
    )
    adapt_only: list[str] = Field(
        default_factory=list,
        description="Regexes of the policy parameters the inner loop adapts (ANIL, Raghu et al. "
        "2020: e.g. ['action_net.*', 'log_std'] for the last layer and the noise); the others "
        "stay frozen. Empty: every parameter. With Reptile a frozen parameter is never "
        "meta-learned either (phi equals theta there).",
    )
    gamma: Float = Field(0.99, ge=0.0, le=1.0, description="Discount factor.")
    max_grad_norm: Float = Field(0.5, gt=0.0, description="Gradient clipping norm.")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="Inner optimizer.")
    reset_optimizer: bool = Field(
        True,
        description="Fresh optimizer state for every task (else it carries over between tasks).",
    )

    def rollout_size(self, horizon: int) -> int:
        """Env steps of one rollout: ``n_envs`` envs for ``n_steps`` (default ``horizon``)."""
        return self.n_envs * (self.n_steps or horizon)

    def one_gradient_step(self, horizon: int) -> bool:
        """Whether an update is one plain gradient step on the whole rollout."""
        raise NotImplementedError

    def check(self, horizon: int, prefix: str) -> None:
        """The rules that need the env's horizon.

        Raises:
            ConfigError: Naming the key (after ``prefix``) and what is allowed.
        """
        if self.n_steps is not None and self.n_steps < horizon:
            raise ConfigError(
                f"{prefix}n_steps: must be at least the env's horizon ({horizon}) so that every "
                f"rollout holds a complete episode per env, got {self.n_steps}"
            )


class OnPolicyBase(InnerBase):
    """The settings of SB3's on-policy learners (PPO, A2C): advantages and the Gaussian noise."""

    log_std_lr_scale: Float = Field(
        1.0,
        ge=0.0,
        description="Learning rate of the policy's log_std as a multiple of learning_rate "
        "(Meta-SGD's per-parameter inner rates, set by hand): above 1 an adaptation can shrink "
        "its exploration noise once it has found the task; 0 keeps the noise fixed. Values other "
        "than 0 and 1 need the sgd optimizer (Adam's steps ignore the gradient's scale).",
    )
    gae_lambda: Float = Field(
        0.95, ge=0.0, le=1.0, description="GAE lambda (1.0: Monte Carlo returns)."
    )
    ent_coef: Float = Field(0.0, ge=0.0, description="Entropy bonus coefficient.")
    vf_coef: Float = Field(0.5, ge=0.0, description="Value loss coefficient.")
    normalize_advantage: bool = Field(True, description="Normalise advantages per minibatch.")
    advantage_baseline: Literal["critic", "linear"] = Field(
        "critic",
        description="Baseline of the advantages: the (meta-initialised) critic, or MAML's "
        "linear feature baseline fitted on each rollout (rllab's LinearFeatureBaseline).",
    )
    bootstrap_time_limit: bool = Field(
        True,
        description="Bootstrap returns with the critic where the time limit cuts an episode "
        "(SB3's default); false treats the horizon as the end of the task, as MAML's "
        "finite-horizon setting does.",
    )
    engine: Literal["sb3", "lockstep"] = Field(
        "lockstep",
        description="How a worker runs its adaptations: lockstep (the default) all of a "
        "worker's jobs together, their envs stepped side by side and their policies evaluated in "
        "one batched forward per step (each job's actions from a generator of its own, its "
        "training phase SB3's); sb3 (the reference) one after the other, each rollout by SB3's "
        "own learn(). Both give every job the same bits.",
    )

    def check(self, horizon: int, prefix: str) -> None:
        """The shared rules, and a log_std rate scale only plain SGD steps follow."""
        super().check(horizon, prefix)
        if self.log_std_lr_scale not in (0.0, 1.0) and self.optimizer != "sgd":
            raise ConfigError(
                f"{prefix}log_std_lr_scale: must be 0 or 1 with the {self.optimizer} "
                f"optimizer (other values need sgd), got {self.log_std_lr_scale}"
            )


class PPOConfig(OnPolicyBase):
    """The inner loop with SB3's PPO: ``n_epochs`` epochs of minibatches per update."""

    algorithm: Literal["ppo"] = Field("ppo", description=_ALGORITHM_HELP)
    n_epochs: int = Field(10, ge=1, description="PPO: epochs over each rollout.")
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] | None = Field(
        "auto",
        description=f"PPO: minibatch size; null: the whole rollout (one gradient step per "
        f"epoch); auto: {AUTO_BATCH_SIZE}, or the whole rollout when it is smaller.",
    )
    clip_range: Float = Field(0.2, gt=0.0, description="PPO: clipping parameter.")

    def minibatch_size(self, horizon: int) -> int:
        """PPO's minibatch size: ``batch_size`` resolved against the rollout size."""
        rollout = self.rollout_size(horizon)
        if self.batch_size == "auto":
            return min(AUTO_BATCH_SIZE, rollout)
        return self.batch_size or rollout

    def one_gradient_step(self, horizon: int) -> bool:
        """One epoch of one minibatch: the whole rollout."""
        return self.n_epochs == 1 and self.minibatch_size(horizon) == self.rollout_size(horizon)

    def check(self, horizon: int, prefix: str) -> None:
        """The shared rules, and a minibatch no larger than the rollout."""
        super().check(horizon, prefix)
        rollout = self.rollout_size(horizon)
        if isinstance(self.batch_size, int) and self.batch_size > rollout:
            raise ConfigError(
                f"{prefix}batch_size: must be at most the rollout size n_envs * n_steps = "
                f"{rollout}, got {self.batch_size}"
            )


class A2CConfig(OnPolicyBase):
    """The inner loop with SB3's A2C: one gradient step on the whole rollout per update."""

    algorithm: Literal["a2c"] = Field("a2c", description=_ALGORITHM_HELP)

    def one_gradient_step(self, horizon: int) -> bool:
        """Always: A2C takes one step per update."""
        return True


class DQNConfig(InnerBase):
    """The inner loop with SB3's DQN (Mnih et al. 2015), an off-policy learner.

    One *update* adds ``n_envs`` episodes of new epsilon-greedy experience to the task's replay
    buffer (fresh for every task), then takes ``gradient_steps`` gradient steps on minibatches
    of ``batch_size`` transitions from it. Theta is the Q-network; the target network starts
    every task as its copy and is copied again after each update's new experience, so that it
    stays fixed during the update's gradient steps.
    """

    algorithm: Literal["dqn"] = Field("dqn", description=_ALGORITHM_HELP)
    max_grad_norm: Float = Field(
        10.0, gt=0.0, description="Gradient clipping norm (SB3's DQN: 10)."
    )
    gradient_steps: int = Field(
        50, ge=1, description="DQN: gradient steps on the replay buffer per update."
    )
    batch_size: int = Field(64, ge=1, description="DQN: transitions per gradient step.")
    exploration_rates: list[Annotated[Float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=lambda: [0.3, 0.1, 0.05],
        min_length=1,
        description="DQN: epsilon of the epsilon-greedy experience of the 1st, 2nd, ... update "
        "(the last one repeats, also for the measurement after the last update).",
    )

    def one_gradient_step(self, horizon: int) -> bool:
        """Never: an update is ``gradient_steps`` steps on replayed minibatches."""
        return False


class SACConfig(InnerBase):
    """The inner loop with SB3's SAC (Haarnoja et al. 2018), an off-policy actor-critic.

    One *update* adds ``n_envs`` episodes of new experience (the actor's stochastic actions)
    to the task's replay buffer (fresh for every task), then takes ``gradient_steps`` gradient
    steps on minibatches of ``batch_size`` transitions from it, each one step of the critics,
    the actor and (with ``ent_coef: auto``) the entropy coefficient, SB3's ``SAC.train``.
    Theta is the actor, the two critics and the log entropy coefficient; the target critics
    start every task as copies of the critics and follow them by Polyak averaging (``tau``).
    SAC's actor computes its log standard deviation from the state, so ``policy.log_std_init``
    and ``policy.ortho_init`` do not apply; nor does ``max_grad_norm`` (SB3's SAC does not clip
    gradients).
    """

    algorithm: Literal["sac"] = Field("sac", description=_ALGORITHM_HELP)
    gradient_steps: int = Field(
        200, ge=1, description="SAC: gradient steps on the replay buffer per update."
    )
    batch_size: int = Field(256, ge=1, description="SAC: transitions per gradient step.")
    tau: Float = Field(
        0.005, gt=0.0, le=1.0, description="SAC: Polyak coefficient of the target critics."
    )
    ent_coef: Literal["auto"] | Annotated[Float, Field(ge=0.0)] = Field(
        "auto",
        description="SAC: entropy coefficient, or auto to learn it towards target entropy "
        "-dim(actions) (SB3's default); learned, its log is part of theta.",
    )
    ent_coef_init: Float = Field(
        1.0, gt=0.0, description="SAC: the entropy coefficient's initial value with auto."
    )

    def one_gradient_step(self, horizon: int) -> bool:
        """Never: an update is ``gradient_steps`` steps on replayed minibatches."""
        return False

    def check(self, horizon: int, prefix: str) -> None:
        """The shared rules, and fresh optimizers for every task."""
        super().check(horizon, prefix)
        if not self.reset_optimizer:
            raise ConfigError(
                f"{prefix}reset_optimizer: sac starts every task with fresh optimizers (its "
                "actor, critics and entropy coefficient each have one): needs true"
            )


INNER_CONFIGS: dict[str, type[InnerBase]] = {
    "ppo": PPOConfig,
    "a2c": A2CConfig,
    "dqn": DQNConfig,
    "sac": SACConfig,
}
"""``inner.algorithm`` -> the model of its settings."""


def _algorithm_of(value: Any) -> str | None:
    """The tag of an inner section: its ``algorithm``, ``ppo`` where it names none."""
    if isinstance(value, InnerBase):
        return value.algorithm
    if isinstance(value, Mapping):
        algorithm = value.get("algorithm", "ppo")
        return algorithm if algorithm in INNER_CONFIGS else None
    return None


InnerConfig = Annotated[
    Annotated[PPOConfig, Tag("ppo")]
    | Annotated[A2CConfig, Tag("a2c")]
    | Annotated[DQNConfig, Tag("dqn")]
    | Annotated[SACConfig, Tag("sac")],
    Discriminator(
        _algorithm_of,
        custom_error_type="algorithm",
        custom_error_message=f"expected one of {', '.join(map(repr, INNER_CONFIGS))}",
    ),
]
"""The inner section: the model of the learner ``algorithm`` names (PPO by default)."""
_INNER = TypeAdapter(InnerConfig)


class OuterConfig(Section):
    """The Reptile outer loop (Nichol, Achiam and Schulman 2018)."""

    iterations: int = Field(100, ge=1, description="Meta-iterations.")
    meta_batch_size: int = Field(10, ge=1, description="Tasks adapted to per meta-iteration.")
    eps_start: Float = Field(
        1.0,
        ge=0.0,
        description="Outer step size at the first iteration (at most 1 with direction reptile).",
    )
    eps_end: Float = Field(
        0.0,
        ge=0.0,
        description="Outer step size at the last iteration (linear; at most 1 with direction "
        "reptile).",
    )
    eps_hold: int = Field(
        0,
        ge=0,
        description="Iterations eps stays at eps_start before its linear anneal to eps_end "
        "(reached at the last iteration) begins; a run of no more iterations keeps eps_start "
        "throughout.",
    )
    direction: Literal["reptile", "last_step"] = Field(
        "reptile",
        description="What theta moves along: reptile, phi - theta; or last_step, the last inner "
        "update phi_K - phi_(K-1), which with plain SGD inner steps is first-order MAML's "
        "gradient of the return after K-1 updates.",
    )
    optimizer: Literal["interpolate", "adam"] = Field(
        "interpolate",
        description="theta += eps * mean(phi - theta), or Adam fed with theta - mean(phi) as "
        "gradient and eps as its learning rate (then use small eps, e.g. 0.001).",
    )
    adam_beta1: Float = Field(0.9, ge=0.0, le=1.0, description="Outer Adam's first-moment decay.")
    adam_beta2: Float = Field(
        0.999, ge=0.0, le=1.0, description="Outer Adam's second-moment decay."
    )
    measure_adapted: bool = Field(
        True,
        description="Roll out once more after the last inner update to log the adapted return "
        "(costs up to one rollout per task; no effect on theta).",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Regexes of parameter names that are not meta-learned (they keep their "
        "initial value).",
    )
    inner_rates: Literal["fixed", "tensor", "element"] = Field(
        "fixed",
        description="Meta-learned inner learning rates (Meta-SGD, Li et al. 2017, first order): "
        "fixed, the configured rates; tensor, a learned rate per parameter tensor; element, one "
        "per parameter. Initialised at the training rates, stored with theta, used by evaluate "
        "and adapt for the meta-policy. Needs plain SGD steps (sgd, one epoch, one batch).",
    )
    inner_rates_per_update: bool = Field(
        False,
        description="A learned rate for each inner update (as MAML++'s per-step rates), else one.",
    )
    inner_rates_learning_rate: Float = Field(
        0.01, gt=0.0, description="Outer Adam's learning rate for the log inner rates."
    )


class BaselineConfig(Section):
    """Multi-task baselines (``reptile-rl pretrain``): pretrained and oracle."""

    env_steps: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="Training env steps; null means the meta-training budget "
        "(iterations x meta_batch_size x updates x rollout size).",
    )
    inner: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the inner settings for baseline training, e.g. {n_envs: 100}.",
    )
    log_std_init: Float | None = Field(
        None,
        description="Initial log standard deviation of the baselines' policy; null: "
        "policy.log_std_init. Multi-task training can need more exploration noise than "
        "adaptation does.",
    )


class EvaluationConfig(Section):
    """Adaptation curves on held-out tasks (``reptile-rl evaluate``), MAML's protocol."""

    tasks: int = Field(40, ge=1, description="Held-out test-split tasks.")
    seed: int = Field(
        0, ge=0, description="Seed of the held-out tasks and adaptations (not the run seed)."
    )
    updates: int = Field(
        3, ge=0, description="Learner updates per task (returns are reported after 0..updates)."
    )
    episodes: int = Field(20, ge=1, description="Episodes per update (the rollout's n_envs).")
    protocol: Literal["toolkit", "metaworld"] = Field(
        "toolkit",
        description="toolkit: MAML's (test-split tasks drawn by the seed, updates and episodes "
        "as set); metaworld: Meta-World's meta-learning evaluation (its families only): 1 update "
        "of 10 episodes on each test goal of each test skill in Meta-World's order (tasks is "
        "then goals per test skill: evaluate --protocol metaworld takes all 50), then the "
        "adapted policy's deterministic episodes, an episode a success if the success flag is "
        "set at any step.",
    )
    inner: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the inner settings during evaluation, e.g. "
        "{learning_rate: 0.01}.",
    )


class ParallelConfig(Section):
    """Where inner loops run."""

    backend: Literal["auto", "serial", "ray"] = Field(
        "auto",
        description="serial (in-process), ray, or auto (ray when workers > 1 and Ray is "
        "installed).",
    )
    workers: int = Field(1, ge=1, description="Parallel inner-loop workers.")
    address: str | None = Field(
        None, description="Ray cluster address ('auto', 'ray://host:10001'), or null."
    )


class Config(Section):
    """A complete meta-training run: a pure function of these values."""

    env: EnvConfig = Field(default_factory=EnvConfig, description="Which task family.")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="The policy network.")
    inner: InnerConfig = Field(default_factory=PPOConfig, description="The inner learner.")
    outer: OuterConfig = Field(default_factory=OuterConfig, description="The Reptile outer loop.")
    parallel: ParallelConfig = Field(default_factory=ParallelConfig, description="Workers.")
    baseline: BaselineConfig = Field(default_factory=BaselineConfig, description="Baselines.")
    evaluation: EvaluationConfig = Field(
        default_factory=EvaluationConfig, description="Evaluation."
    )
    seed: int = Field(0, ge=0, description="Run seed: every random draw derives from it.")
    checkpoint_every: int = Field(
        10, ge=1, description="Write a checkpoint every N meta-iterations."
    )
    name: str = Field(
        "run",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Run name (used for default output directories).",
    )

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain, YAML-ready data."""
        return self.model_dump()

    def horizon(self) -> int:
        """The env's episode length."""
        return env_horizon(self.env.id)

    def baseline_inner(self) -> InnerConfig:
        """Inner settings for baseline training: ``inner`` updated by ``baseline.inner``."""
        return _inner_with(self.inner, self.baseline.inner, "baseline.inner")

    def evaluation_inner(self) -> InnerConfig:
        """Inner settings for evaluation.

        ``inner`` with ``evaluation.episodes`` envs, then the ``evaluation.inner`` overrides.
        """
        with_episodes = self.inner.model_copy(update={"n_envs": self.evaluation.episodes})
        return _inner_with(with_episodes, self.evaluation.inner, "evaluation.inner")

    def baseline_env_steps(self) -> int:
        """Env-step budget of the baselines (default: meta-training's training steps)."""
        if self.baseline.env_steps is not None:
            return self.baseline.env_steps
        rollout = self.inner.rollout_size(self.horizon())
        return self.outer.iterations * self.outer.meta_batch_size * self.inner.updates * rollout


def _inner_with(base: InnerConfig, overrides: Mapping[str, Any], key: str) -> InnerConfig:
    """``base`` updated by ``overrides``, checked by the model of the algorithm it names."""
    algorithm = overrides.get("algorithm", base.algorithm)
    data = _switched({**base.model_dump(), **overrides}, base.algorithm, algorithm, overrides)
    inner: InnerConfig = _validated(_INNER, data, key)
    return inner


def _switched(
    section: Mapping[str, Any], previous: str, algorithm: Any, kept: Iterable[str] = ()
) -> dict[str, Any]:
    """An inner section's settings once its learner changes from ``previous`` to ``algorithm``.

    A setting stays only where both learners inherit it from one model (A2C keeps PPO's
    ``gae_lambda``): the same name declared apart (PPO's and DQN's ``batch_size``) need not
    mean the same thing. Settings named in ``kept`` (given with the switch) stay, to be
    checked by the new learner's model.
    """
    model = INNER_CONFIGS.get(algorithm) if isinstance(algorithm, str) else None
    old = INNER_CONFIGS.get(previous)
    if model is None or old is None or model is old:
        return dict(section)  # no switch, or one refused with the right message when checked
    common = next(base for base in old.__mro__ if base in model.__mro__ and base is not object)
    shared = common.model_fields if issubclass(common, BaseModel) else {}
    own = set(old.model_fields) - set(shared)
    return {
        key: value
        for key, value in section.items()
        if key in kept or (key in model.model_fields and key not in own)
    }


# -- building and checking ------------------------------------------------------------------


def _validated(adapter: TypeAdapter[Any], data: Any, key: str = "") -> Any:
    """``data`` checked by ``adapter``; a :class:`ConfigError` naming the first bad key."""
    try:
        return adapter.validate_python(data)
    except ValidationError as error:
        raise ConfigError(_message(error, key)) from None


def _message(error: ValidationError, prefix: str) -> str:
    """The first error of ``error`` in one line: the dotted key, what was expected, what came."""
    first = error.errors()[0]
    where = _key(first["loc"], prefix)
    same_key = [e for e in error.errors() if _key(e["loc"], prefix) == where]
    if first["type"] == "extra_forbidden":
        allowed = sorted(_fields_at(first["loc"], prefix))
        return f"{where}: unknown key; allowed keys here: {', '.join(allowed)}"
    expected = ", or ".join(dict.fromkeys(e["msg"] for e in same_key))
    got = first.get("input")
    if first["type"] == "algorithm" and isinstance(got, Mapping):  # the learner is unknown
        where, got = f"{where}.algorithm", got.get("algorithm")
    elif first["type"] in ("algorithm", "model_type", "dict_type", "model_attributes_type"):
        expected = "expected a mapping of keys"
    return f"{where or 'the configuration'}: {expected}, got {type(got).__name__} {got!r}"


def _key(loc: tuple[int | str, ...], prefix: str) -> str:
    """``("policy", "net_arch", 1)`` -> ``"policy.net_arch[1]"``, without union members' tags."""
    key = prefix
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part.isidentifier() and part not in _UNION_TAGS:
            key += f".{part}" if key else part
    return key


_UNION_TAGS = {"int", "float", "str", "bool", "none", *INNER_CONFIGS}


def _fields_at(loc: tuple[int | str, ...], prefix: str) -> list[str]:
    """The keys allowed in the section where ``loc`` (its last part the unknown key) points."""
    model: type[BaseModel] = PPOConfig if prefix else Config  # prefix: an inner section alone
    for part in loc[:-1]:
        if isinstance(part, str) and part in INNER_CONFIGS:  # the inner union's tag
            model = INNER_CONFIGS[part]
        elif isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
            model = annotation if is_model else PPOConfig  # type: ignore[assignment]
    return list(model.model_fields)


_CONFIG = TypeAdapter(Config)


def config_from_dict(data: Mapping[str, Any], written: bool = False) -> Config:
    """Build and fully check a :class:`Config` from plain data.

    Args:
        data: The values (a preset with overrides, or a resolved configuration).
        written: The data is a configuration reptile-rl wrote (a run's ``config.yaml``, a
            file's record): one written before the inner section was per-algorithm may hold
            PPO's settings for an A2C learner, which are dropped.

    Raises:
        ConfigError: Naming the first offending key and what is allowed.
    """
    inner = data.get("inner")
    if written and isinstance(inner, Mapping) and inner.get("algorithm", "ppo") in INNER_CONFIGS:
        fields = INNER_CONFIGS[inner.get("algorithm", "ppo")].model_fields
        data = {**data, "inner": {k: v for k, v in inner.items() if k in fields}}
    config: Config = _validated(_CONFIG, data)
    check_config(config)
    return config


METAWORLD_PROTOCOL = {"updates": 1, "episodes": 10}
"""The settings of ``metaworld.evaluation.metalearning_evaluation`` (Meta-World 3.1.1) that
``evaluation.protocol: metaworld`` fixes: one adaptation step (``adaptation_steps=1``) on 10
episodes (``adaptation_episodes=10``)."""


def _check_protocol(config: Config) -> None:
    """The protocol's family, and the settings Meta-World's protocol fixes."""
    protocol = config.evaluation.protocol
    # A user's family may implement the task-family API without TaskFamily's defaults.
    protocols = getattr(family_class(config.env.id), "evaluation_protocols", ("toolkit",))
    if protocol not in protocols:
        raise ConfigError(
            f"evaluation.protocol: {protocol} is not a protocol of {config.env.id} (it has "
            f"{', '.join(protocols)})"
        )
    if protocol == "metaworld":
        for key, value in METAWORLD_PROTOCOL.items():
            if getattr(config.evaluation, key) != value:
                raise ConfigError(
                    f"evaluation.{key}: Meta-World's protocol adapts with {key} {value}, got "
                    f"{getattr(config.evaluation, key)}"
                )


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
    _check_protocol(config)
    horizon = env_horizon(config.env.id)
    for prefix, settings in [
        ("inner.", config.inner),
        ("baseline.inner.", config.baseline_inner()),
        ("evaluation.inner.", config.evaluation_inner()),
    ]:
        settings.check(horizon, prefix)
    if config.outer.inner_rates != "fixed":
        for prefix, inner in (
            ("inner.", config.inner),
            ("evaluation.inner.", config.evaluation_inner()),
        ):
            if not isinstance(inner, OnPolicyBase):
                raise ConfigError(
                    f"outer.inner_rates: {config.outer.inner_rates} learns the rates of plain "
                    f"gradient steps, which {prefix}algorithm {inner.algorithm} does not take: "
                    "needs fixed"
                )
            one_step = inner.one_gradient_step(horizon)
            scaled = isinstance(inner, OnPolicyBase) and inner.log_std_lr_scale != 1.0
            if inner.optimizer != "sgd" or not one_step or scaled:
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
    if config.baseline.log_std_init is not None and not isinstance(
        config.baseline_inner(), OnPolicyBase
    ):
        raise ConfigError(
            f"baseline.log_std_init: {config.baseline_inner().algorithm}'s policy has no log_std "
            f"parameter to start from; give null, got {config.baseline.log_std_init}"
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
    """Build one env of ``config`` to check the values of ``env.kwargs`` and its action space.

    :func:`check_config` checks their names without building anything; a command that is
    about to start work calls this once (a MuJoCo env takes tens of milliseconds to build).

    Raises:
        ConfigError: If the family rejects the arguments, or a learner its actions.
    """
    try:
        env = make_vec_env(config.env.id, config.env.kwargs, n_envs=1)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"env.kwargs: {config.env.id} rejects {config.env.kwargs}: {error}"
        ) from None
    actions = env.action_space
    env.close()
    check_action_space(config, actions)


def check_action_space(config: Config, actions: spaces.Space[Any]) -> None:
    """The rules between the learners' settings and the family's actions.

    Raises:
        ConfigError: If a learner cannot act in ``actions``, or a setting means nothing there.
    """
    for key, inner in (("inner", config.inner), ("baseline.inner", config.baseline_inner())):
        if isinstance(inner, DQNConfig) and not isinstance(actions, spaces.Discrete):
            raise ConfigError(
                f"{key}.algorithm: dqn needs discrete actions; {config.env.id} has {actions}"
            )
        if isinstance(inner, SACConfig) and not isinstance(actions, spaces.Box):
            raise ConfigError(
                f"{key}.algorithm: sac needs continuous (Box) actions; {config.env.id} has "
                f"{actions}"
            )
    if config.baseline.log_std_init is not None and not isinstance(actions, spaces.Box):
        raise ConfigError(
            f"baseline.log_std_init: {config.env.id}'s actions ({actions}) have no Gaussian "
            f"noise to set; give null, got {config.baseline.log_std_init}"
        )


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
    data = load_preset_data(preset_or_path)
    for override in overrides or []:
        inner = data.get("inner")
        previous = inner.get("algorithm", "ppo") if isinstance(inner, dict) else "ppo"
        data = apply_overrides(data, [override])
        key, algorithm = parse_override(override)
        if key == ["inner", "algorithm"]:
            # Another learner: the settings given so far of the previous one (PPO's n_epochs,
            # its batch_size, ...) mean nothing to it and go, in every inner section; so does
            # the baselines' initial log_std where the new learner's policy has none.
            data = _deep_copy(data)
            sections = [data, data.get("baseline", {}), data.get("evaluation", {})]
            for section in sections:
                if isinstance(section, dict) and isinstance(section.get("inner"), dict):
                    section["inner"] = _switched(section["inner"], previous, algorithm)
            new = INNER_CONFIGS.get(algorithm) if isinstance(algorithm, str) else None
            baseline = data.get("baseline")
            policy_without_log_std = new is not None and not issubclass(new, OnPolicyBase)
            if policy_without_log_std and isinstance(baseline, dict) and "log_std_init" in baseline:
                baseline["log_std_init"] = None
    if seed is not None:
        data["seed"] = seed
    return config_from_dict(data)


def config_from_yaml(text: str, source: str) -> Config:
    """Parse and check a resolved ``config.yaml`` that reptile-rl wrote."""
    return config_from_dict(_read_yaml(text, source), written=True)


def config_to_yaml(config: Config) -> str:
    """Return the resolved configuration as YAML (keys in declaration order)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def iter_options(
    model: type[BaseModel] = Config, prefix: str = ""
) -> Iterator[tuple[str, Any, str]]:
    """Yield ``(dotted key, default, help)`` for every option, for ``--help`` and the docs.

    The ``inner`` section lists the default learner's (PPO's) options, each other learner's
    own ones after them.
    """
    instance = model()
    for name, field in model.model_fields.items():
        value = getattr(instance, name)
        if isinstance(value, InnerBase):
            seen: set[str] = set()
            for inner in INNER_CONFIGS.values():
                for key, default, help_text in iter_options(inner, f"{prefix}{name}."):
                    if key not in seen:
                        seen.add(key)
                        yield key, default, help_text
        elif isinstance(value, BaseModel):
            yield from iter_options(type(value), f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value, field.description or ""
