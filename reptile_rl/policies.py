"""Policy files: the safe ``*.safetensors`` form every command loads.

SB3 ``.zip`` exports are written by the learner (:meth:`reptile_rl.learners.Learner.export`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from reptile_rl import checkpoint
from reptile_rl.config import Config, ConfigError, config_from_dict
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
    """

    params: Params
    config: Config
    role: str
    oracle: bool = False
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def save_policy(path: Path, policy: PolicyFile) -> None:
    """Atomically write a policy file (safetensors + JSON record, no pickle)."""
    record = {
        "kind": POLICY_KIND,
        "role": policy.role,
        "oracle": policy.oracle,
        "config": policy.config.to_dict(),
        "info": policy.info,
    }
    checkpoint.save(path, policy.params, record)


def load_policy(path: Path) -> PolicyFile:
    """Read a policy file, or the latest meta-parameters of a checkpoint file.

    Raises:
        CheckpointError: If the file is missing, corrupt or neither a policy nor a checkpoint.
    """
    tensors, record = checkpoint.load(path)
    try:
        config = config_from_dict(record["config"])
    except (ConfigError, KeyError) as error:
        raise checkpoint.CheckpointError(f"{path}: invalid configuration inside: {error}") from None
    if record.get("kind") == POLICY_KIND:
        return PolicyFile(tensors, config, record["role"], record["oracle"], record.get("info", {}))
    if record.get("kind") == "checkpoint":
        theta = checkpoint.split_prefixed(tensors, "theta/")
        info = {"iteration": record["iteration"], "env_steps": record["env_steps"]}
        return PolicyFile(theta, config, "meta", False, info)
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
