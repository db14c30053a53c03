"""Policy files: the safe ``*.safetensors`` form every command writes, and SB3 ``.zip`` read in.

SB3 ``.zip`` exports are written by the learner (:meth:`reptile_rl.learners.Learner.export`)
with the same record as a ``.safetensors`` policy inside; both load here without unpickling.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from reptile_rl import checkpoint, environment, learners, sb3_zip
from reptile_rl.config import Config, ConfigError, InnerConfig, config_from_dict
from reptile_rl.params import Params

POLICY_KIND = "policy"


@dataclasses.dataclass
class PolicyFile:
    """A policy's parameters with what is needed to rebuild and adapt it.

    Attributes:
        params: The policy ``state_dict`` as arrays (actor, critic, log_std).
        config: The configuration it was trained with (env, architecture, inner learner).
        role: ``"meta"``, ``"pretrained"``, ``"oracle"`` or ``"random"``.
        oracle: Whether it observes the task (env wrapped with ``TaskInObservation``).
        info: Free-form facts about its training (env steps, iterations...).
        inner_log_rates: Its meta-learned log inner rates (``outer.inner_rates``), which
            evaluate and adapt use for it; ``None``: the configured rates.
        environment: The software and machine it was made with
            (:func:`reptile_rl.environment.describe`); ``None``: this process, which made it;
            empty: unknown (a file written before environments were recorded).
    """

    params: Params
    config: Config
    role: str
    oracle: bool = False
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    inner_log_rates: Params | None = None
    environment: dict[str, Any] | None = None


_RATES = "inner_log_rates/"


def policy_record(policy: PolicyFile, rates_inside: bool = True) -> dict[str, Any]:
    """The JSON record stored with a policy's tensors (in ``.safetensors`` and SB3 zips).

    Args:
        policy: The policy.
        rates_inside: Keep its learned inner rates in the record as lists (for SB3 zips, whose
            tensors are the SB3 policy's only); a ``.safetensors`` file stores them as tensors.
    """
    record: dict[str, Any] = {
        "kind": POLICY_KIND,
        "role": policy.role,
        "oracle": policy.oracle,
        "config": policy.config.to_dict(),
        "info": policy.info,
        "environment": environment.describe() if policy.environment is None else policy.environment,
    }
    if policy.inner_log_rates is not None and rates_inside:
        record["inner_log_rates"] = {k: v.tolist() for k, v in policy.inner_log_rates.items()}
    return record


def save_policy(path: Path, policy: PolicyFile) -> None:
    """Atomically write a policy file (safetensors + JSON record, no pickle)."""
    tensors = dict(policy.params)
    if policy.inner_log_rates is not None:
        tensors.update(checkpoint.prefixed(policy.inner_log_rates, _RATES))
    checkpoint.save(path, tensors, policy_record(policy, rates_inside=False))


def export_policy(
    policy: PolicyFile,
    path: Path,
    config: Config | None = None,
    inner: InnerConfig | None = None,
) -> None:
    """Write a policy as its learner's plain SB3 zip, with its reptile-rl record inside.

    ``PPO.load`` (``A2C.load``, ``DQN.load``) opens it; reptile-rl reads it back without unpickling
    (:mod:`reptile_rl.sb3_zip`).

    Args:
        policy: The policy.
        path: The ``.zip`` to write.
        config: The configuration to build the learner from; ``None``: the policy's.
        inner: Learner settings instead of that configuration's ``inner`` (e.g. its evaluation
            settings), saved in the zip as the model's hyperparameters.
    """
    learner = learners.make_learner(config or policy.config, policy.oracle, inner)
    try:
        learner.export(policy.params, path, policy_record(policy))
    finally:
        learner.close()


def read_policy_file(path: Path, base: Config | None = None) -> PolicyFile:
    """Read a policy file, the latest meta-parameters of a checkpoint, or an SB3 zip.

    Args:
        path: A ``.safetensors`` policy or checkpoint, or an SB3 ``.zip``.
        base: For a plain SB3 zip (one reptile-rl did not write), the configuration it is
            used with: its env and settings, with the zip's architecture and learner.

    Raises:
        CheckpointError: If the file is missing, corrupt or neither a policy nor a checkpoint,
            or a plain SB3 zip comes without ``base``.
    """
    if path.is_file() and sb3_zip.is_zip(path):
        zipped = sb3_zip.read(path)
        if zipped.record is not None:
            policy = _from_record(zipped.params, zipped.record, path)
            return dataclasses.replace(
                policy, params=learners.theta_of_sb3(policy.config, policy.params)
            )
        if base is None:
            raise checkpoint.CheckpointError(
                f"{path}: a plain SB3 zip does not name its env: give one (e.g. --set "
                "env.id=ReptileRL/Navigation2D-v0)"
            )
        config = learners.config_from_sb3(path, zipped.data, base)
        theta = learners.theta_of_sb3(config, zipped.params)
        return PolicyFile(theta, config, "sb3", info={"source": str(path)}, environment={})
    tensors, record = checkpoint.load(path)
    return _from_record(tensors, record, path)


def _from_record(tensors: Params, record: dict[str, Any], path: Path) -> PolicyFile:
    try:
        config = config_from_dict(record["config"], written=True)
    except (ConfigError, KeyError) as error:
        raise checkpoint.CheckpointError(f"{path}: invalid configuration inside: {error}") from None
    made = record.get("environment", {})
    if record.get("kind") == POLICY_KIND:
        params = {k: v for k, v in tensors.items() if not k.startswith(_RATES)}
        rates = checkpoint.split_prefixed(tensors, _RATES) or None
        if "inner_log_rates" in record:
            rates = {k: np.asarray(v, np.float32) for k, v in record["inner_log_rates"].items()}
        role, oracle, info = record["role"], record["oracle"], record.get("info", {})
        return PolicyFile(params, config, role, oracle, info, rates, made)
    if record.get("kind") == "checkpoint":
        theta = checkpoint.split_prefixed(tensors, "theta/")
        state = record.get("state", record)  # a checkpoint's older layout held them on top
        info = {"iteration": state["iteration"], "env_steps": state["env_steps"]}
        rates = checkpoint.split_prefixed(tensors, "log_rates/") or None
        return PolicyFile(theta, config, "meta", False, info, rates, made)
    raise checkpoint.CheckpointError(f"{path}: a {record.get('kind')!r} file, not a policy")


def check_compatible(reference: Params, params: Params, source: str) -> None:
    """Raise ``CheckpointError`` unless ``params`` have ``reference``'s names and shapes."""
    expected = {name: value.shape for name, value in reference.items()}
    got = {name: value.shape for name, value in params.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        shapes = sorted(n for n in set(expected) & set(got) if expected[n] != got[n])
        raise checkpoint.CheckpointError(
            f"{source}: parameters do not fit this env/architecture "
            f"(missing {missing[:3]}, unexpected {extra[:3]}, other shape {shapes[:3]})"
        )
