"""Read SB3 ``.zip`` models without unpickling anything, and tag the ones reptile-rl writes.

An SB3 zip holds ``data`` (JSON, where objects JSON cannot hold are pickled and base64-encoded
beside a readable summary), ``policy.pth`` (the policy's ``state_dict``, a torch file) and
more. This module reads only the JSON and the tensors: ``torch.load(weights_only=True)``
refuses anything but tensors and plain containers, and the pickled JSON entries are never
decoded. The architecture comes from the readable summary of ``policy_kwargs``.

Zips that reptile-rl writes also carry ``reptile_rl.json``, the policy's full record (the
configuration it was trained with, its role), so they load exactly like a ``.safetensors``
policy file. A plain SB3 zip names neither its environment nor its algorithm: the caller gives
the configuration it is to be used with, and the learner that configuration names reads the
zip's settings (:func:`reptile_rl.learners.config_from_sb3`).
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

RECORD_MEMBER = "reptile_rl.json"
"""The member of an SB3 zip where reptile-rl keeps the policy's record."""
VARIABLES_MEMBER = "pytorch_variables.pth"
"""The member where SB3 keeps tensors beside the policy (SAC's ``log_ent_coef``)."""


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
        params: The policy's ``state_dict`` as NumPy arrays, with the tensors SB3 keeps
            beside it (``pytorch_variables.pth``: SAC's ``log_ent_coef``).
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
            # Tensors SB3 keeps beside the policy (SAC's log entropy coefficient).
            variables = archive.read(VARIABLES_MEMBER) if VARIABLES_MEMBER in names else None
            record = json.loads(archive.read(RECORD_MEMBER)) if RECORD_MEMBER in names else None
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not a readable SB3 zip ({error})") from None
    state = _tensors(path, "policy.pth", tensors)
    if variables is not None:
        state.update(_tensors(path, VARIABLES_MEMBER, variables))
    params = {name: value.detach().cpu().numpy().copy() for name, value in state.items()}
    return SB3Zip(params, record, data)


def _tensors(path: Path, member: str, content: bytes) -> dict[str, torch.Tensor]:
    """A zip member's dict of tensors, loaded without unpickling."""
    try:
        state = torch.load(io.BytesIO(content), weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise CheckpointError(
            f"{path}: its {member} holds more than tensors and would need unpickling, which "
            f"reptile-rl never does ({str(error).splitlines()[0]})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: {member} is not a dict of tensors")
    return state
