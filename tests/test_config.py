"""Configuration: presets, overrides, and clear errors for bad values."""

from pathlib import Path

import gymnasium
import pytest

from reptile_rl import config as config_module
from reptile_rl import envs
from reptile_rl.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_from_yaml,
    config_to_yaml,
    iter_options,
    load_config,
    parse_override,
    preset_names,
)


def test_presets_load_and_name_themselves():
    assert {"navigation", "cheetah-vel", "cheetah-dir"} <= set(preset_names())
    for name in preset_names():
        config = load_config(name)
        assert config.name == name


def test_navigation_preset_is_mamls_protocol():
    config = load_config("navigation")
    assert config.env.id == "ReptileRL/Navigation2D-v0"
    assert config.inner.n_envs == 20  # 20 trajectories per adaptation step
    assert config.inner.n_steps is None  # one horizon (100 steps) per rollout
    assert config.policy.net_arch == [100, 100]


def test_overrides_nested_keys_and_yaml_types():
    config = load_config(
        "navigation",
        [
            "inner.learning_rate=0.01",
            "policy.net_arch=[8, 8]",
            "inner.normalize_advantage=false",
            "outer.exclude=['^log_std$']",
            "parallel.address=auto",
        ],
        seed=7,
    )
    assert config.inner.learning_rate == 0.01
    assert config.policy.net_arch == [8, 8]
    assert config.inner.normalize_advantage is False
    assert config.outer.exclude == ["^log_std$"]
    assert config.parallel.address == "auto"
    assert config.seed == 7


def test_int_is_accepted_for_a_float():
    assert load_config("navigation", ["inner.learning_rate=1"]).inner.learning_rate == 1.0


def test_yaml_round_trip():
    config = load_config("navigation", ["inner.gamma=0.9"])
    assert config_from_yaml(config_to_yaml(config), "test") == config


def test_every_option_has_help():
    options = list(iter_options())
    assert len(options) > 30
    assert all(help_text for _, _, help_text in options)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("inner.lr=3", r"inner\.lr: unknown key; allowed keys here: .*learning_rate"),
        ("bogus=1", r"bogus: unknown key"),
        ("inner.n_epochs=2.5", r"inner\.n_epochs: Input should be a valid integer, got float 2\.5"),
        ("inner.n_epochs=true", r"inner\.n_epochs: Input should be a valid integer, got bool"),
        ("inner.n_epochs=0", r"inner\.n_epochs: .* greater than or equal to 1, got int 0"),
        ("inner.learning_rate=0", r"inner\.learning_rate: Input should be greater than 0, got"),
        ("inner.learning_rate=.nan", r"inner\.learning_rate: Input should be a finite number"),
        ("inner.gamma=1.5", r"inner\.gamma: Input should be less than or equal to 1, got float"),
        ("outer.meta_batch_size=-1", r"outer\.meta_batch_size: .* greater than or equal to 1"),
        ("inner.optimizer=rmsprop", r"inner\.optimizer: Input should be 'adam' or 'sgd', got str"),
        ("policy.net_arch=[64, 0]", r"policy\.net_arch\[1\]: .* greater than or equal to 1, got"),
        ("policy.net_arch=64", r"policy\.net_arch: Input should be a valid list, got int 64"),
        ("inner=3", r"inner: expected a mapping"),
        ("env.id=CartPole-v1", r"env\.id: 'CartPole-v1' is not a task family"),
        ("env.id=Nope-v0", r"env\.id: unknown env id 'Nope-v0'"),
        (
            "env.kwargs={bogus: 1}",
            r"env\.kwargs: .*Navigation2D-v0 takes no keyword argument 'bogus'",
        ),
        (
            "inner.algorithm=td3",
            r"inner\.algorithm: expected one of 'ppo', 'a2c', 'dqn', 'sac', got str",
        ),
        ("inner.n_steps=50", r"inner\.n_steps: must be at least the env's horizon \(100\)"),
        ("inner.batch_size=5000", r"inner\.batch_size: must be at most .* 2000"),
        ("outer.exclude=['(']", r"outer\.exclude\[0\]: invalid regex"),
        ("name=a/b", r"name: String should match pattern"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("navigation", [override])


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match=r"expected key=value"):
        parse_override("inner.learning_rate")
    with pytest.raises(ConfigError, match=r"inner\.n_envs is not a section"):
        apply_overrides({"inner": {"n_envs": 3}}, ["inner.n_envs.x=1"])


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match=r"unknown preset or file 'nav': presets are .*navi"):
        load_config("nav")


def test_yaml_file_errors(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("inner:\n  n_epochs: [1,\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: invalid YAML \(line \d+"):
        load_config(str(broken))
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(str(not_a_mapping))
    custom = tmp_path / "my run.yaml"
    custom.write_text("inner:\n  n_epochs: 4\n")
    config = load_config(str(custom))
    assert config.inner.n_epochs == 4
    assert config.name == "my_run"


def test_defaults_pass_their_own_checks():
    default = Config()
    assert config_from_dict(default.to_dict()) == default


def test_baseline_and_evaluation_overrides_are_checked_like_inner():
    config = load_config("navigation", ["evaluation.inner={learning_rate: 0.01}"])
    assert config.evaluation_inner().learning_rate == 0.01
    assert config.evaluation_inner().n_envs == config.evaluation.episodes
    assert config.inner.learning_rate != 0.01
    with pytest.raises(ConfigError, match=r"evaluation\.inner\.learning_rate: Input should be gr"):
        load_config("navigation", ["evaluation.inner={learning_rate: -1}"])
    with pytest.raises(ConfigError, match=r"baseline\.inner\.bogus: unknown key"):
        load_config("navigation", ["baseline.inner={bogus: 1}"])
    with pytest.raises(ConfigError, match=r"baseline\.inner\.n_steps: must be at least"):
        load_config("navigation", ["baseline.inner={n_steps: 10}"])


def test_baseline_budget_matches_meta_training():
    config = load_config("navigation", ["outer.iterations=7", "outer.meta_batch_size=3"])
    rollout = config.inner.n_envs * 100
    assert config.baseline_env_steps() == 7 * 3 * config.inner.updates * rollout
    assert load_config("navigation", ["baseline.env_steps=1234"]).baseline_env_steps() == 1234


def test_exponent_floats_without_a_dot_are_numbers():
    # PyYAML (YAML 1.1) reads "1e9" as a string; users mean a number.
    config = load_config("navigation", ["inner.max_grad_norm=1e9", "inner.learning_rate=3E-4"])
    assert config.inner.max_grad_norm == 1e9 and config.inner.learning_rate == 3e-4
    with pytest.raises(ConfigError, match=r"inner\.n_epochs: .* valid integer, got str '1e3'"):
        load_config("navigation", ["inner.n_epochs=1e3"])
    with pytest.raises(ConfigError, match=r"inner\.learning_rate: .* valid number, got str 'fast'"):
        load_config("navigation", ["inner.learning_rate=fast"])


def test_ablation_configurations_load_and_are_named_after_their_file():
    # ABLATIONS.md reproduces every ablation row from these resolved configurations, so
    # they must keep loading as the configuration grows.
    paths = sorted((Path(__file__).parents[1] / "benchmarks" / "configs").glob("*.yaml"))
    assert len(paths) > 50
    for path in paths:
        assert load_config(str(path)).name == path.stem, path


def test_checking_a_config_builds_no_env(monkeypatch):
    # Every policy load and resume checks a configuration: building a MuJoCo env there was
    # tens of milliseconds each. Names are still checked, against the constructors.
    def no_env(*args, **kwargs):
        raise AssertionError("a config check built an env")

    monkeypatch.setattr(gymnasium, "make", no_env)
    monkeypatch.setattr(config_module, "make_vec_env", no_env)
    monkeypatch.setattr(envs.Navigation2DEnv, "batched_vec_env", no_env)
    load_config("navigation")
    cheetah = load_config("cheetah-vel", ["env.kwargs={ctrl_cost_weight: 0.1}"])
    assert cheetah.env.kwargs == {"ctrl_cost_weight": 0.1}
    # A HalfCheetah-v5 argument, found through the family's **kwargs.
    load_config("cheetah-vel", ["env.kwargs={reset_noise_scale: 0.2}"])
    with pytest.raises(
        ConfigError, match=r"env\.kwargs: .* no keyword argument 'ctrl_cost_wieght'"
    ):
        load_config("cheetah-vel", ["env.kwargs={ctrl_cost_wieght: 0.1}"])


def test_each_learner_checks_its_own_settings():
    a2c = load_config("navigation", ["inner.algorithm=a2c"])
    # The preset's PPO settings went with the switch; the shared ones stayed.
    assert type(a2c.inner).__name__ == "A2CConfig" and "n_epochs" not in a2c.to_dict()["inner"]
    ppo = load_config("navigation")
    assert a2c.inner.learning_rate == ppo.inner.learning_rate
    # Settings both inherit from one model stay (the on-policy ones); a name two learners
    # declare apart (PPO's minibatch, DQN's transitions per step: batch_size) does not.
    assert a2c.inner.advantage_baseline == ppo.inner.advantage_baseline == "linear"
    grid = ["env.id=ReptileRL/GridNavigation-v0", "outer.inner_rates=fixed"]
    dqn = load_config("navigation", [*grid, "baseline.log_std_init=null", "inner.algorithm=dqn"])
    assert ppo.inner.batch_size is None and dqn.inner.batch_size == 64
    # The same rule where only the baselines switch learner.
    baselines = ["baseline.log_std_init=null", "baseline.inner={algorithm: dqn}"]
    dqn_baselines = load_config("navigation", [*grid, *baselines]).baseline_inner()
    assert dqn_baselines.algorithm == "dqn" and dqn_baselines.batch_size == 64
    assert dqn.inner.learning_rate == ppo.inner.learning_rate
    assert a2c.baseline_inner().algorithm == "a2c" and a2c.evaluation_inner().algorithm == "a2c"
    # Given after the switch, a setting A2C does not have is refused, naming what it has.
    with pytest.raises(ConfigError, match=r"^inner\.n_epochs: unknown key; allowed keys here: ad"):
        load_config("navigation", ["inner.algorithm=a2c", "inner.n_epochs=2"])
    with pytest.raises(ConfigError, match=r"^inner\.clip_range: unknown key"):
        config_from_dict({"inner": {"algorithm": "a2c", "clip_range": 0.2}})


def test_a_configuration_written_before_the_split_still_loads():
    # Files from before the inner section was per-algorithm hold PPO's settings for A2C too.
    written = load_config("navigation", ["inner.algorithm=a2c"]).to_dict()
    written["inner"].update(n_epochs=10, batch_size=500, clip_range=0.2)
    assert config_from_dict(written, written=True).inner.algorithm == "a2c"
    with pytest.raises(ConfigError, match=r"^inner\.\w+: unknown key"):
        config_from_dict(written)  # from a user, they are refused


def test_every_option_has_a_description_and_help_lists_each_learner_s_own():
    options = {key: help_text for key, _, help_text in iter_options()}
    assert all(options.values()), [key for key, text in options.items() if not text]
    assert {"inner.algorithm", "inner.n_epochs", "inner.batch_size", "outer.eps_hold"} <= set(
        options
    )
    assert list(options).count("inner.learning_rate") == 1
