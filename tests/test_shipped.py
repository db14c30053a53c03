"""The policies shipped in the package evaluate without any training."""

import json

import pytest

from reptile_rl.cli import main
from reptile_rl.policies import read_policy_file
from reptile_rl.sources import shipped_dir

SHIPPED = {
    "navigation": "ReptileRL/Navigation2D-v0",
    "cheetah-vel": "ReptileRL/HalfCheetahVel-v0",
    "ant-dir": "ReptileRL/AntDir-v0",
}


@pytest.mark.parametrize(("preset", "env_id"), SHIPPED.items())
def test_shipped_policies_are_complete_small_and_consistent(preset, env_id):
    folder = shipped_dir(preset)
    assert folder is not None, f"no policies shipped for {preset}"
    total = 0
    for role in ("meta", "pretrained", "oracle"):
        path = folder / f"{role}_policy.safetensors"
        policy = read_policy_file(path)  # verifies the checksum
        assert policy.role == role and policy.oracle == (role == "oracle")
        assert policy.config.env.id == env_id and policy.config.name.endswith(preset)
        total += path.stat().st_size
    assert total < 400_000  # "a few hundred KB at most"


def test_evaluate_a_preset_name_uses_the_shipped_policies(tmp_path, capsys):
    out = tmp_path / "eval"
    # 5 episodes of 100 steps keep it short; the preset's minibatch is the whole rollout.
    args = ["evaluate", "navigation", "--tasks", "2", "--updates", "1", "--episodes", "5"]
    assert main([*args, "--seed", "5", "--out", str(out), "--set", "parallel.workers=1"]) == 0
    summary = json.loads((out / "adaptation.json").read_text())
    assert set(summary["inits"]) == {"meta", "pretrained", "random", "oracle"}
    assert summary["seed"] == 5 and summary["tasks"] == 2
    assert "reptile_rl/pretrained/navigation" in summary["sources"]["meta"]
    capsys.readouterr()
