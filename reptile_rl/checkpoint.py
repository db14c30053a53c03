"""Safe files: checkpoints and policies as safetensors plus JSON, written atomically.

Nothing here ever unpickles. A file is a safetensors archive (a JSON header and raw tensor
bytes) whose metadata holds our JSON record and a SHA-256 checksum of the tensors and record,
verified on every load. Writes are atomic (:mod:`reptile_rl.atomic`): a crash or a full disk
leaves either the old file or the new one, never a broken one.

SB3's own ``.zip`` format (``meta_policy.zip``, written for users of plain SB3) contains
pickled objects and must only be loaded from trusted sources; our commands never load it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, get_args, get_type_hints

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors_bytes
from safetensors.numpy import save as save_safetensors_bytes

from reptile_rl.atomic import atomic_write_bytes
from reptile_rl.params import Params

FORMAT = "reptile-rl"
VERSION = 1
TENSORS = "@tensors"
"""A state tree's leaf whose arrays are the file's tensors under that leaf's path."""

T = TypeVar("T")


class CheckpointError(ValueError):
    """A file that is missing, truncated, corrupt or of the wrong kind."""


def _checksum(tensors: Params, record_json: str) -> str:
    digest = hashlib.sha256(record_json.encode())
    for name in sorted(tensors):
        value = np.ascontiguousarray(tensors[name])
        digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def save(path: Path, tensors: Params, record: dict[str, Any]) -> None:
    """Atomically write tensors and a JSON-serialisable record to a verified safetensors file.

    Args:
        path: Target file (usually ``*.safetensors``).
        tensors: Named arrays.
        record: JSON-serialisable data; ``record["kind"]`` says what the file is.
    """
    record_json = json.dumps({"format": FORMAT, "version": VERSION, **record}, sort_keys=True)
    metadata = {"record": record_json, "sha256": _checksum(tensors, record_json)}
    arrays = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    atomic_write_bytes(path, _sorted_metadata(save_safetensors_bytes(arrays, metadata=metadata)))


def _sorted_metadata(data: bytes) -> bytes:
    """The same safetensors bytes with the metadata keys in sorted order.

    safetensors writes its metadata in hash-map order, which can change from one save to the next;
    sorting it makes a file a pure function of its contents (same run, same bytes).
    """
    header_size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_size].decode())
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to a multiple of 8 bytes
    return len(text).to_bytes(8, "little") + text + data[8 + header_size :]


def load(path: Path, kind: str | None = None) -> tuple[Params, dict[str, Any]]:
    """Read and verify a file written by :func:`save`; never unpickles.

    Args:
        path: The file.
        kind: If given, the ``kind`` the record must have.

    Returns:
        The tensors and the record.

    Raises:
        CheckpointError: If the file is missing, not ours, truncated, corrupt or of another kind.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read: {error.strerror}") from None
    try:
        tensors = load_safetensors_bytes(data)
        metadata = _metadata(data)
    except (SafetensorError, ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not a reptile-rl file or truncated ({error})") from None
    record_json = metadata.get("record")
    if record_json is None or "sha256" not in metadata:
        raise CheckpointError(f"{path}: not a reptile-rl file (no record in its metadata)")
    if _checksum(tensors, record_json) != metadata["sha256"]:
        raise CheckpointError(f"{path}: corrupt (checksum mismatch)")
    record = json.loads(record_json)
    if record.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a reptile-rl file")
    if record.get("version") != VERSION:
        raise CheckpointError(f"{path}: file version {record.get('version')}, expected {VERSION}")
    if kind is not None and record.get("kind") != kind:
        raise CheckpointError(f"{path}: a {record.get('kind')!r} file, expected a {kind!r} file")
    return tensors, record


def _metadata(data: bytes) -> dict[str, str]:
    """Read the ``__metadata__`` of a safetensors byte string (a JSON header, no code)."""
    if len(data) < 8:
        raise ValueError("file shorter than a safetensors header")
    header_size = int.from_bytes(data[:8], "little")
    if header_size > len(data) - 8:
        raise ValueError("header runs past the end of the file")
    header = json.loads(data[8 : 8 + header_size].decode())
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise ValueError("metadata is not a JSON object")
    return metadata


def split_prefixed(tensors: Params, prefix: str) -> Params:
    """Return the tensors named ``prefix + name``, keyed by ``name``."""
    return {
        name[len(prefix) :]: value for name, value in tensors.items() if name.startswith(prefix)
    }


def prefixed(tensors: Params, prefix: str) -> Params:
    """Return ``tensors`` with ``prefix`` prepended to every name."""
    return {prefix + name: value for name, value in tensors.items()}


# -- a state that saves itself -------------------------------------------------------------


def flatten_state(state: Any, prefix: str = "") -> tuple[Params, dict[str, Any]]:
    """Split a dataclass into named tensors and a JSON tree of everything else.

    Each field is saved by its value: a dataclass recurses; a dict of arrays becomes tensors
    named ``<path>/<key>`` (``theta/action_net.weight``) and :data:`TENSORS` in the tree;
    ``None``, numbers, strings and booleans stay in the tree. A new field needs no code here.

    Raises:
        TypeError: If a field holds anything else.
    """
    tensors: Params = {}
    tree: dict[str, Any] = {}
    for field in dataclasses.fields(state):
        value, path = getattr(state, field.name), f"{prefix}{field.name}/"
        if dataclasses.is_dataclass(value):
            inner, tree[field.name] = flatten_state(value, path)
            tensors.update(inner)
        elif isinstance(value, dict):
            tensors.update(prefixed(value, path))
            tree[field.name] = TENSORS
        elif value is None or isinstance(value, bool | int | float | str):
            tree[field.name] = value
        else:
            raise TypeError(f"{path[:-1]}: a {type(value).__name__} cannot be saved as state")
    return tensors, tree


def unflatten_state(cls: type[T], tensors: Params, tree: Mapping[str, Any], prefix: str = "") -> T:
    """Rebuild dataclass ``cls`` from :func:`flatten_state`'s tensors and tree.

    A field the tree does not hold (a file written before the field existed) takes its
    default.
    """
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]  # T cannot say "a dataclass"
        if field.name not in tree:
            continue
        value, path = tree[field.name], f"{prefix}{field.name}/"
        if value == TENSORS:
            values[field.name] = split_prefixed(tensors, path)
        elif isinstance(value, Mapping):
            values[field.name] = unflatten_state(
                _dataclass_in(hints[field.name]), tensors, value, path
            )
        else:
            values[field.name] = value
    return cls(**values)


def _dataclass_in(hint: Any) -> type[Any]:
    """The dataclass a field's type names (``AdamState`` of ``AdamState | None``)."""
    (found,) = [
        t for t in get_args(hint) or [hint] if isinstance(t, type) and dataclasses.is_dataclass(t)
    ]
    return found
