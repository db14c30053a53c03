"""The training state saves and loads itself: every field of MetaState, and older checkpoints."""

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config

from reptile_rl import checkpoint
from reptile_rl.config import config_from_dict
from reptile_rl.params import AdamState
from reptile_rl.reptile import MetaState
from reptile_rl.trainer import Trainer, meta_state_from

# A run of one iteration whose checkpoint was written field by field into prefixed tensors
# (adam_m/, rate_adam_v/, ...), before the state saved itself: outer Adam, meta-learned inner
# rates and a carried inner optimizer state, so that every optional field is present.
PREFIXED_RUN = Path(__file__).parent / "data" / "run-with-prefixed-checkpoint"


def arrays(seed: int, *names: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=(2, 3)).astype(np.float32) for name in names}


def a_full_state() -> MetaState:
    """A state whose every field differs from its default."""
    return MetaState(
        iteration=7,
        theta=arrays(0, "action_net.weight", "log_std"),
        adam=AdamState(3, arrays(1, "action_net.weight"), arrays(2, "action_net.weight")),
        inner_optimizer=arrays(3, "state/0/exp_avg"),
        env_steps=12_345,
        wall_seconds=0.1 + 0.2,  # not a round number: the JSON round trip must be exact
        log_rates=arrays(4, "0/action_net.weight", "1/action_net.weight"),
        rate_adam=AdamState(5, arrays(6, "0/action_net.weight"), arrays(7, "0/action_net.weight")),
    )


def assert_same_state(a: MetaState, b: MetaState) -> None:
    for field in dataclasses.fields(MetaState):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if isinstance(left, AdamState):
            assert left.step == right.step, field.name
            left, right = (
                {
                    **checkpoint.prefixed(s.first_moment, "m/"),
                    **checkpoint.prefixed(s.second_moment, "v/"),
                }
                for s in (left, right)
            )
        if isinstance(left, dict):
            assert left.keys() == right.keys(), field.name
            for name in left:
                assert left[name].dtype == right[name].dtype, (field.name, name)
                assert np.array_equal(left[name], right[name]), (field.name, name)
        else:
            assert left == right and type(left) is type(right), field.name


def test_every_field_round_trips_through_a_file(tmp_path):
    state = a_full_state()
    for field in dataclasses.fields(MetaState):  # a new field must be given a value above
        if field.default is not dataclasses.MISSING:
            assert getattr(state, field.name) != field.default, field.name
    tensors, tree = checkpoint.flatten_state(state)
    assert tree["adam"] == {"step": 3, "first_moment": "@tensors", "second_moment": "@tensors"}
    assert "log_rates/1/action_net.weight" in tensors and "theta/log_std" in tensors
    checkpoint.save(tmp_path / "state.safetensors", tensors, {"kind": "test", "state": tree})
    loaded, record = checkpoint.load(tmp_path / "state.safetensors")
    assert_same_state(checkpoint.unflatten_state(MetaState, loaded, record["state"]), state)


def test_absent_optional_fields_stay_absent():
    state = MetaState(iteration=0, theta=arrays(0, "w"))
    tensors, tree = checkpoint.flatten_state(state)
    assert set(tensors) == {"theta/w"}
    assert_same_state(checkpoint.unflatten_state(MetaState, tensors, tree), state)


def test_a_field_the_file_does_not_hold_takes_its_default():
    tensors, tree = checkpoint.flatten_state(a_full_state())
    del tree["wall_seconds"], tree["rate_adam"]
    state = checkpoint.unflatten_state(MetaState, tensors, tree)
    assert state.wall_seconds == 0.0 and state.rate_adam is None and state.env_steps == 12_345


def test_a_value_that_is_not_state_is_refused():
    state = dataclasses.replace(a_full_state(), env_steps=[1, 2])
    with pytest.raises(TypeError, match=r"^env_steps: a list cannot be saved as state$"):
        checkpoint.flatten_state(state)


def test_a_checkpoint_of_the_prefixed_layout_is_read_field_by_field():
    tensors, record = checkpoint.load(PREFIXED_RUN / "checkpoints" / "latest.safetensors")
    assert "state" not in record and "adam_m/action_net.weight" in tensors
    state = meta_state_from(tensors, record)
    assert (state.iteration, state.env_steps) == (1, 1600)
    assert state.wall_seconds == record["wall_seconds"]
    assert state.adam is not None and state.rate_adam is not None
    assert (state.adam.step, state.rate_adam.step) == (1, 1)
    assert state.inner_optimizer == {}  # plain SGD carries no state, but the field is set
    for prefix, params in [
        ("theta/", state.theta),
        ("adam_m/", state.adam.first_moment),
        ("adam_v/", state.adam.second_moment),
        ("log_rates/", state.log_rates),
        ("rate_adam_m/", state.rate_adam.first_moment),
        ("rate_adam_v/", state.rate_adam.second_moment),
    ]:
        expected = checkpoint.split_prefixed(tensors, prefix)
        assert expected and params is not None and params.keys() == expected.keys(), prefix
        assert all(np.array_equal(params[k], expected[k]) for k in expected), prefix


def test_a_run_of_the_prefixed_layout_resumes_bit_identically(tmp_path):
    run_dir = tmp_path / "old"
    shutil.copytree(PREFIXED_RUN, run_dir)
    resumed = Trainer.resume(run_dir, iterations=2).learn()
    config = Trainer.resume(run_dir).config  # the saved configuration, 2 iterations now
    reference = Trainer(config, tmp_path / "reference").learn()
    assert resumed.theta.keys() == reference.theta.keys()
    for name, value in reference.theta.items():
        assert np.array_equal(resumed.theta[name], value), name
    _, record = checkpoint.load(run_dir / "checkpoints" / "latest.safetensors")
    assert record["state"]["iteration"] == 2  # written in today's layout from then on


def test_the_saved_run_has_this_configuration():
    # The data above was made with these settings (tiny_config plus these overrides).
    config = tiny_config(
        "outer.optimizer=adam",
        "outer.eps_start=0.01",
        "outer.eps_end=0.01",
        "inner.reset_optimizer=false",
        "outer.inner_rates=tensor",
        "inner.optimizer=sgd",
        "inner.n_epochs=1",
        "inner.batch_size=null",
        "outer.iterations=1",
        "outer.meta_batch_size=2",
        "inner.updates=1",
    )
    _, record = checkpoint.load(PREFIXED_RUN / "checkpoints" / "latest.safetensors")
    # Read as a run's configuration is read: settings added since take their defaults.
    assert config_from_dict(record["config"], written=True) == config
