"""Read SB3 ``.zip`` models without unpickling anything, and tag the ones reptile-rl writes.

An SB3 zip holds ``data`` (JSON, where objects JSON cannot hold are pickled and base64-encoded
beside a readable summary), ``policy.pth`` (the policy's ``state_dict``, a torch file) and
more. This module reads only the JSON and the tensors: ``torch.load(weights_only=True)``
refuses anything but tensors and plain containers, and the pickled JSON entries are never
decoded. The architecture comes from the readable summary of ``policy_kwargs``.

Zips that reptile-rl writes also carry ``reptile_rl.json``, the policy's full record (the
configuration it was trained with, its role), so they load exactly like a ``.safetensors``
policy file. A plain SB3 PPO or A2C zip does not name its environment: the caller gives the
configuration (env, evaluation settings) it is to be used with.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from reptile_rl.checkpoint import CheckpointError
from reptile_rl.config import Config, ConfigError, config_from_dict

RECORD_MEMBER = "reptile_rl.json"
"""The member of an SB3 zip where reptile-rl keeps the policy's record."""

_ACTIVATIONS = {
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
}
_OPTIMIZERS = {"torch.optim.adam.Adam": "adam", "torch.optim.sgd.SGD": "sgd"}


def is_zip(path: Path) -> bool:
    """Whether ``path`` is a zip archive (SB3's format), by its first bytes."""
    with path.open("rb") as file:
        return file.read(4) == b"PK\x03\x04"


def add_record(path: Path, record: dict[str, Any]) -> None:
    """Add reptile-rl's JSON record to an SB3 zip (SB3 itself ignores the extra member)."""
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(RECORD_MEMBER, json.dumps(record, sort_keys=True))


@dataclasses.dataclass(frozen=True)
class SB3Zip:
    """What an SB3 zip holds, read safely.

    Attributes:
        params: The policy's ``state_dict`` as NumPy arrays.
        record: reptile-rl's record, if reptile-rl wrote the zip; else ``None``.
        data: SB3's ``data`` JSON (pickled entries left encoded).
    """

    params: dict[str, Any]
    record: dict[str, Any] | None
    data: dict[str, Any]


def read(path: Path) -> SB3Zip:
    """Read an SB3 zip's tensors and JSON without unpickling.

    Raises:
        CheckpointError: If it is not an SB3 zip, or its tensors would need unpickling.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if not {"data", "policy.pth"} <= names:
                raise CheckpointError(f"{path}: not an SB3 model zip (no data or policy.pth)")
            data = json.loads(archive.read("data"))
            tensors = archive.read("policy.pth")
            record = json.loads(archive.read(RECORD_MEMBER)) if RECORD_MEMBER in names else None
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not a readable SB3 zip ({error})") from None
    try:
        state = torch.load(io.BytesIO(tensors), weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise CheckpointError(
            f"{path}: its policy.pth holds more than tensors and would need unpickling, which "
            f"reptile-rl never does ({str(error).splitlines()[0]})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: policy.pth is not a state_dict of tensors")
    params = {name: value.detach().cpu().numpy().copy() for name, value in state.items()}
    return SB3Zip(params, record, data)


def _class_name(summary: Any) -> str:
    """``"<class 'torch.nn.modules.activation.Tanh'>"`` -> ``"torch.nn...Tanh"``."""
    text = str(summary)
    return text.removeprefix("<class '").removesuffix("'>")


def foreign_config(path: Path, zipped: SB3Zip, base: Config) -> Config:
    """The configuration of a plain SB3 PPO/A2C zip: ``base`` with the zip's policy and learner.

    The architecture (``net_arch``, activation, ``log_std_init``, ``ortho_init``) and the
    learner's settings come from the zip's JSON; the env and everything else from ``base``.

    Raises:
        CheckpointError: If the architecture is not one reptile-rl builds.
    """
    data = zipped.data
    kwargs = data.get("policy_kwargs") or {}
    activation = _ACTIVATIONS.get(_class_name(kwargs.get("activation_fn", "")))
    net_arch = kwargs.get("net_arch", [64, 64])
    if activation is None or not isinstance(net_arch, list):
        raise CheckpointError(
            f"{path}: an SB3 policy with activation {kwargs.get('activation_fn')!r} and net_arch "
            f"{net_arch!r}; reptile-rl builds tanh or relu MLPs with one list of layer sizes"
        )
    values = base.to_dict()
    values["policy"].update(
        net_arch=net_arch,
        activation=activation,
        log_std_init=float(kwargs.get("log_std_init", 0.0)),
        ortho_init=bool(kwargs.get("ortho_init", True)),
    )
    inner = values["inner"]
    inner["algorithm"] = "ppo" if "n_epochs" in data else "a2c"
    inner["optimizer"] = _OPTIMIZERS.get(_class_name(kwargs.get("optimizer_class", "")), "adam")
    for key in ("gamma", "gae_lambda", "ent_coef", "vf_coef", "max_grad_norm", "n_epochs"):
        if isinstance(data.get(key), int | float) and not isinstance(data.get(key), bool):
            inner[key] = data[key]
    if isinstance(data.get("learning_rate"), int | float):
        inner["learning_rate"] = float(data["learning_rate"])
    if isinstance(data.get("normalize_advantage"), bool):
        inner["normalize_advantage"] = data["normalize_advantage"]
    try:
        return config_from_dict(values)
    except ConfigError as error:
        raise CheckpointError(f"{path}: its settings do not fit {base.env.id}: {error}") from None
