"""What each preset resolves to and learns, pinned so that a refactoring cannot change it.

``data/preset-references.json`` holds, per preset, the resolved configuration and a short run's
signature (2 iterations, meta-batch 2, 1 update, serial, seed 3), with the environment it was
made in. On that environment (same package versions and CPU model) the run must give the same
meta-policy bit for bit (its SHA-256). Elsewhere floating point differs: the same commit gives
other bits on another CPU or with another MuJoCo, so there the run is also compared to a
tolerance: per meta-learned tensor, how far the run moved it from its initial value (the norm
of the move), and the returns it measured on the way. Regenerate after a deliberate change with
``python tests/test_presets_unchanged.py --write`` (and say why in the commit).
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reptile_rl import checkpoint, environment
from reptile_rl.config import load_config
from reptile_rl.params import Params
from reptile_rl.trainer import Trainer

REFERENCES = Path(__file__).parent / "data" / "preset-references.json"
PRESETS = ["navigation", "cheetah-vel", "cheetah-dir", "ant-dir", "grid-navigation"]
SHORT_RUN = [
    "outer.iterations=2",
    "outer.meta_batch_size=2",
    "inner.updates=1",
    "parallel.backend=serial",
    "parallel.workers=1",
]
SEED = 3
# Across installs. Measured on one machine between MuJoCo 4.0.1 (.venv) and 3.3.0
# (.venv-metaworld), all else equal: navigation the same bits; the cheetahs' moves within a
# relative 3.6e-6 and their returns within 2e-7; the tolerances are about 300 times that.
# AntDir is another simulation under the other MuJoCo, not other last bits (the first
# rollout's return 10.27 against 8.58): it is compared across CPUs, not across MuJoCo versions.
MOVE_TOLERANCE = 1e-3
RETURN_TOLERANCE = 1e-4
SAME_PHYSICS_ONLY = {"ant-dir"}


def sha256(params: Params) -> str:
    digest = hashlib.sha256()
    for name in sorted(params):
        value = np.ascontiguousarray(params[name])
        digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def short_run(preset: str, folder: Path, *overrides: str) -> dict[str, Any]:
    """The signature of the preset's short run (with ``overrides``), trained in ``folder``."""
    Trainer(load_config(preset, [*SHORT_RUN, *overrides], seed=SEED), folder).learn()
    policy, _ = checkpoint.load(folder / "meta_policy.safetensors")
    # What is meta-learned: theta and, where the preset learns them, the inner rates.
    start, final = (
        {
            k: v
            for k, v in checkpoint.load(path)[0].items()
            if k.startswith(("theta/", "log_rates/"))
        }
        for path in (folder / "checkpoints" / f"iter_{i:06d}.safetensors" for i in (0, 2))
    )
    with (folder / "progress.csv").open() as file:
        rows = list(csv.DictReader(file))
    return {
        "sha256": sha256(policy),
        "moves": {name: float(np.linalg.norm(final[name] - start[name])) for name in sorted(final)},
        "returns": [[float(v) for k, v in row.items() if k.startswith("return_")] for row in rows],
    }


def references() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCES.read_text())
    return data


def same_environment() -> bool:
    recorded = references()["environment"]
    return environment.differences(recorded) == []


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_resolves_as_before(preset):
    assert load_config(preset).to_dict() == references()["presets"][preset]["config"]


def learns_as_before(preset: str, folder: Path, *overrides: str) -> None:
    """The short run gives its reference: the same bits here, within tolerance elsewhere."""
    expected = references()["presets"][preset]["run"]
    recorded = references()["environment"]["packages"]["mujoco"]
    here = environment.describe()["packages"]["mujoco"]
    if preset in SAME_PHYSICS_ONLY and recorded != here:
        pytest.skip(f"{preset}'s reference was simulated by MuJoCo {recorded}, here {here}")
    got = short_run(preset, folder, *overrides)
    if same_environment():
        assert got["sha256"] == expected["sha256"]  # bit for bit
    assert got["moves"].keys() == expected["moves"].keys()
    for name, move in expected["moves"].items():
        assert got["moves"][name] == pytest.approx(move, rel=MOVE_TOLERANCE, abs=1e-7), name
    for row, expected_row in zip(got["returns"], expected["returns"], strict=True):
        assert row == pytest.approx(expected_row, rel=RETURN_TOLERANCE)


@pytest.mark.parametrize("preset", PRESETS)
def test_a_short_run_of_every_preset_learns_as_before(preset, tmp_path):
    learns_as_before(preset, tmp_path / "run")


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "grid-navigation"])  # DQN: one
def test_the_sb3_engine_gives_every_on_policy_preset_the_same_bits(preset, tmp_path):
    # The short run's meta-batch of 2 on one worker is one lockstep group on the default engine
    # (one batched forward for both jobs); the sb3 engine adapts them one after the other.
    learns_as_before(preset, tmp_path / "run", "inner.engine=sb3")


def write_references(folder: Path) -> None:
    """Measure every preset here and write the references file."""
    data = {
        "environment": environment.describe(),
        "short_run": {"overrides": SHORT_RUN, "seed": SEED},
        "presets": {
            preset: {
                "config": load_config(preset).to_dict(),
                "run": short_run(preset, folder / preset),
            }
            for preset in PRESETS
        },
    }
    REFERENCES.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    import tempfile

    import torch

    torch.set_num_threads(1)
    if sys.argv[1:] == ["--write"]:
        with tempfile.TemporaryDirectory() as tmp:
            write_references(Path(tmp))
    else:  # print this environment's signatures, to compare installs
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps({p: short_run(p, Path(tmp) / p) for p in PRESETS}, indent=1))
