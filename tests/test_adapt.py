"""Adapting to a new task: the CLI, the Python API, SB3's own learn(), SB3 zips in."""

import csv
import dataclasses
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecMonitor

from reptile_rl import adapt, load_meta_policy, sb3_adaptation
from reptile_rl.checkpoint import CheckpointError
from reptile_rl.cli import main
from reptile_rl.envs import Navigation2DVecEnv, NavigationTask
from reptile_rl.policies import export_policy, read_policy_file
from reptile_rl.seeding import Stream, derive_seed
from reptile_rl.trainer import Trainer

README = Path(__file__).resolve().parents[1] / "README.md"
GOAL = NavigationTask(0.3, -0.2)  # of the test split: never trained on
TASK_JSON = GOAL.to_json()


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def sb3_return(zip_path: Path) -> float:
    """20 stochastic episodes of a policy.zip on GOAL, run by plain SB3."""
    model = PPO.load(zip_path, device="cpu")
    env = VecMonitor(Navigation2DVecEnv(20, GOAL))
    model.set_random_seed(0)
    returns, _ = evaluate_policy(
        model, env, n_eval_episodes=20, deterministic=False, return_episode_rewards=True
    )
    return float(np.mean(returns))


def test_adapted_shipped_policy_runs_in_plain_sb3_and_improves(tmp_path, capsys):
    adapted, unadapted = tmp_path / "adapted", tmp_path / "unadapted"
    assert main(["adapt", "navigation", "--task", TASK_JSON, "--out", str(adapted)]) == 0
    printed = capsys.readouterr().out
    assert (
        main(
            ["adapt", "navigation", "--task", TASK_JSON, "--updates", "0", "--out", str(unadapted)]
        )
        == 0
    )
    rows = list(csv.DictReader((adapted / "adaptation.csv").open()))
    assert [int(r["update"]) for r in rows] == [0, 1, 2, 3]
    assert [int(r["env_steps"]) for r in rows] == [0, 2000, 4000, 6000]
    assert f"{float(rows[3]['return']):.2f}" in printed
    after, before = sb3_return(adapted / "policy.zip"), sb3_return(unadapted / "policy.zip")
    assert after >= -8 and after - before >= 20, (before, after)
    # --updates 0 exports the initialisation unchanged.
    shipped = load_meta_policy("navigation")
    assert same(load_meta_policy(unadapted / "policy.safetensors").params, shipped.params)
    assert same(load_meta_policy(unadapted / "policy.zip").params, shipped.params)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--task", '{"family": "half_cheetah_vel", "target_velocity": 1.0}'],
            "got a 'half_cheetah_vel' task",
        ),
        (["--task", '{"family": "navigation2d", "goal_x": 0.3}'], "needs exactly the fields"),
        (
            ["--task", '{"family": "navigation2d", "goal_x": 0.3, "goal_y": 0, "z": 1}'],
            "needs exactly",
        ),
        (
            ["--task", '{"family": "navigation2d", "goal_x": 3, "goal_y": 0}'],
            r"goal_x must be .* \[-0\.5, 0\.5\]",
        ),
        (["--task", '{"family": "navigation2d", "goal_x": 0.3,'], "invalid JSON"),
        (["--task", "no-such-file.json"], "neither a JSON object nor a readable file"),
        (
            ["--task", TASK_JSON, "--updates", "-1"],
            r"evaluation\.updates: Input should be greater than or equal to 0",
        ),
        (
            ["--task", TASK_JSON, "--episodes", "0"],
            r"evaluation\.episodes: Input should be greater than or equal to 1",
        ),
        (["--task", TASK_JSON, "--set", "evaluation.inner={bogus: 1}"], "bogus: unknown key"),
    ],
)
def test_bad_adapt_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["adapt", "navigation", *args, "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and re.search(message, error), error
    assert not out.exists()


def test_unreadable_source_and_existing_out_exit_2(tmp_path, capsys):
    assert main(["adapt", "no-such-run", "--task", TASK_JSON, "--out", str(tmp_path / "a")]) == 2
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a policy")
    assert main(["adapt", str(broken), "--task", TASK_JSON, "--out", str(tmp_path / "b")]) == 2
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    assert main(["adapt", "navigation", "--task", TASK_JSON, "--out", str(existing)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.safetensors", "existing"]
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and "already exists" in errors[2]


def readme_snippets() -> list[str]:
    section = README.read_text().split("## Adapt to your own task", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def test_readme_adapt_snippets_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    api, native = readme_snippets()
    namespace: dict = {}
    exec(api, namespace)
    adaptation = namespace["adaptation"]
    assert len(adaptation.returns) == 4 and adaptation.returns[3] > adaptation.returns[0] + 20
    assert namespace["action"].shape == (2,)
    assert sorted(p.name for p in (tmp_path / "my-goal").iterdir()) == [
        "adaptation.csv",
        "policy.safetensors",
        "policy.zip",
    ]
    exec(native, namespace)
    assert namespace["model"].num_timesteps == 3 * 100 * 20


@pytest.mark.parametrize("learned_rates", [True, False], ids=["learned rates", "schedule"])
def test_sb3_s_own_learn_adapts_exactly_as_adapt(learned_rates):
    # The shipped navigation policy adapts with meta-learned per-tensor rates;
    # without them, with the configured per-update schedule.
    source = load_meta_policy("navigation")
    assert source.inner_log_rates is not None
    if not learned_rates:
        source = dataclasses.replace(source, inner_log_rates=None)
    reference = adapt(source, GOAL, updates=2)
    env = VecMonitor(Navigation2DVecEnv(20, GOAL))
    model, callback = sb3_adaptation(source, env)
    model.set_random_seed(derive_seed(0, Stream.USER_ADAPTATION))
    model.learn(2 * model.n_steps * env.num_envs, callback=callback)
    params = {k: v.detach().numpy() for k, v in model.policy.state_dict().items()}
    assert same(params, reference.policy.params)
    assert not same(params, source.params)
    if learned_rates:  # the rates are really used: without them the steps differ
        plain = adapt(dataclasses.replace(source, inner_log_rates=None), GOAL, updates=2)
        assert not same(params, plain.policy.params)


def test_to_sb3_holds_the_adapted_policy():
    adaptation = adapt("navigation", GOAL, updates=1, episodes=4)
    model = adaptation.to_sb3()
    assert type(model) is PPO
    assert same(
        {k: v.detach().numpy() for k, v in model.policy.state_dict().items()},
        adaptation.policy.params,
    )
    assert adaptation.policy.config.evaluation.updates == 1
    assert len(adaptation.curves["mean_action_return"]) == len(adaptation.returns) == 2


# -- SB3 zips in, without unpickling ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("zips") / "run"
    Trainer(tiny_config(), run).learn()
    return run


def plain_copy(ours: Path, plain: Path, leave_out: str = "") -> None:
    """The same zip without reptile-rl's record: what plain SB3 would have written."""
    with zipfile.ZipFile(ours) as source, zipfile.ZipFile(plain, "w") as target:
        for item in source.infolist():
            if item.filename not in ("reptile_rl.json", leave_out):
                target.writestr(item, source.read(item.filename))


def test_our_zip_loads_like_the_safetensors_file(tiny_run):
    from_zip = load_meta_policy(tiny_run / "meta_policy.zip")
    from_file = load_meta_policy(tiny_run / "meta_policy.safetensors")
    assert same(from_zip.params, from_file.params) and from_zip.config == from_file.config


def test_a_plain_sb3_zip_evaluates_as_its_safetensors_twin(tiny_run, tmp_path):
    plain = tmp_path / "plain.zip"
    plain_copy(tiny_run / "meta_policy.zip", plain)
    with pytest.raises(CheckpointError, match="does not name its env"):
        load_meta_policy(plain)
    args = ["evaluate", str(tiny_run), "--pretrained", str(plain), "--inits", "meta,pretrained"]
    assert (
        main(
            [
                *args,
                "--tasks",
                "2",
                "--updates",
                "1",
                "--episodes",
                "4",
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((tmp_path / "e" / "adaptation.csv").open()))
    by_init = {
        init: [(r["task"], r["update"], r["return"]) for r in rows if r["init"] == init]
        for init in ("meta", "pretrained")
    }
    assert by_init["meta"] == by_init["pretrained"] and len(by_init["meta"]) == 4
    # As a source, a plain zip needs its env named.
    source = ["evaluate", str(plain), "--inits", "meta", "--tasks", "1", "--updates", "0"]
    assert main([*source, "--out", str(tmp_path / "f")]) == 2
    named = [*source, "--set", "env.id=ReptileRL/Navigation2D-v0", "--out", str(tmp_path / "g")]
    assert main(named) == 0


class _Payload:
    """Unpickling this would create a file: proof that nothing was unpickled."""

    target = ""

    def __reduce__(self):
        return (Path(self.target).touch, ())


def test_a_zip_that_needs_unpickling_is_refused_unopened(tiny_run, tmp_path):
    hostile = tmp_path / "hostile.zip"
    plain_copy(tiny_run / "meta_policy.zip", hostile, leave_out="policy.pth")
    marker = tmp_path / "was-unpickled"
    payload = _Payload()
    payload.target = str(marker)
    buffer = io.BytesIO()
    torch.save({"log_std": torch.zeros(2), "extra": payload}, buffer)
    with zipfile.ZipFile(hostile, "a") as archive:
        archive.writestr("policy.pth", buffer.getvalue())
    with pytest.raises(CheckpointError, match="would need unpickling"):
        load_meta_policy(hostile)
    assert not marker.exists()


def test_a_plain_zip_is_read_as_the_algorithm_the_configuration_names(tiny_run, tmp_path):
    policy = read_policy_file(tiny_run / "meta_policy.safetensors")
    a2c = tiny_config("inner.algorithm=a2c")
    plain_a2c, plain_ppo = tmp_path / "a2c.zip", tmp_path / "ppo.zip"
    export_policy(policy, tmp_path / "ours-a2c.zip", a2c)
    plain_copy(tmp_path / "ours-a2c.zip", plain_a2c)
    plain_copy(tiny_run / "meta_policy.zip", plain_ppo)
    # SB3 does not record the class; the configuration names it, the zip's settings confirm it.
    with pytest.raises(CheckpointError) as error:
        read_policy_file(plain_a2c, tiny_config())
    assert str(error.value) == (
        f"{plain_a2c}: SB3's data lacks PPO's n_epochs, batch_size, clip_range, so it is not "
        "PPO's; SB3 does not record the class: name it with --set inner.algorithm=a2c"
    )
    read = read_policy_file(plain_a2c, a2c)
    assert read.config.inner.algorithm == "a2c" and same(read.params, policy.params)
    with pytest.raises(CheckpointError, match=r"holds PPO's .* so it is not A2C's"):
        read_policy_file(plain_ppo, a2c)
