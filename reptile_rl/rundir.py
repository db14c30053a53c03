"""The run directory: its layout and every file name, in one place for every command.

A training run (``reptile-rl train``) holds::

    config.yaml                  the resolved configuration
    environment.json             the software and machine it was made with
    progress.csv                 one row per meta-iteration
    tensorboard/                 TensorBoard events
    checkpoints/latest.safetensors, checkpoints/iter_NNNNNN.safetensors
    meta_policy.safetensors      the meta-policy (safe; what the commands load)
    meta_policy.zip              the same for plain SB3 (``PPO.load`` / ``A2C.load``)
    training.png                 ``reptile-rl plot``
    eval/adaptation.{csv,json,md,png}   ``reptile-rl evaluate``

A baseline run (``reptile-rl pretrain``) holds the same ``config.yaml``, ``environment.json``,
``progress.csv`` and
``tensorboard/``, and ``<role>_policy.safetensors`` / ``<role>_policy.zip`` with role
``pretrained`` or ``oracle``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from reptile_rl import environment
from reptile_rl.atomic import atomic_write_text
from reptile_rl.config import Config, ConfigError, config_from_yaml, config_to_yaml

ADAPTATION_OUTPUTS = ("csv", "json", "md", "png")
"""Extensions of the ``adaptation.*`` files ``reptile-rl evaluate`` writes."""


def policy_filename(role: str) -> str:
    """The safe policy file of ``role`` (``meta``, ``pretrained``, ``oracle``)."""
    return f"{role}_policy.safetensors"


def adaptation_files(out_dir: Path) -> list[Path]:
    """``adaptation.csv``, ``.json``, ``.md`` and ``.png`` in ``out_dir``, in that order."""
    return [out_dir / f"adaptation.{extension}" for extension in ADAPTATION_OUTPUTS]


def ensure_new_folder(path: Path) -> None:
    """Raise ``ConfigError`` if ``path`` exists and is not an empty folder (``--out``)."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(f"--out: {path} already exists; choose a new directory")


class RunDir:
    """The files of one run directory.

    Args:
        path: The directory (it need not exist yet).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def default(cls, config: Config, role: str | None = None) -> RunDir:
        """``runs/<name>[-<role>]-seed<seed>-<timestamp>``."""
        name = config.name if role is None else f"{config.name}-{role}"
        return cls(Path("runs") / f"{name}-seed{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}")

    def __str__(self) -> str:
        return str(self.path)

    # -- files ---------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        """``config.yaml``: the resolved configuration."""
        return self.path / "config.yaml"

    @property
    def environment_file(self) -> Path:
        """``environment.json``: the software and machine the run was started with."""
        return self.path / "environment.json"

    @property
    def progress_file(self) -> Path:
        """``progress.csv``: one row per iteration (or per rollout for baselines)."""
        return self.path / "progress.csv"

    @property
    def tensorboard_dir(self) -> Path:
        """``tensorboard/``: TensorBoard event files."""
        return self.path / "tensorboard"

    @property
    def checkpoint_dir(self) -> Path:
        """``checkpoints/``."""
        return self.path / "checkpoints"

    @property
    def latest_checkpoint(self) -> Path:
        """``checkpoints/latest.safetensors``, rewritten after every iteration."""
        return self.checkpoint_dir / "latest.safetensors"

    def numbered_checkpoint(self, iteration: int) -> Path:
        """``checkpoints/iter_NNNNNN.safetensors``, kept every ``checkpoint_every`` iterations."""
        return self.checkpoint_dir / f"iter_{iteration:06d}.safetensors"

    def numbered_checkpoints(self) -> list[Path]:
        """The numbered checkpoints, newest first."""
        return sorted(self.checkpoint_dir.glob("iter_*.safetensors"), reverse=True)

    def policy_file(self, role: str = "meta") -> Path:
        """``<role>_policy.safetensors``."""
        return self.path / policy_filename(role)

    def sb3_file(self, role: str = "meta") -> Path:
        """``<role>_policy.zip``, the plain SB3 export."""
        return self.path / f"{role}_policy.zip"

    @property
    def eval_dir(self) -> Path:
        """``eval/``: where ``reptile-rl evaluate`` writes by default."""
        return self.path / "eval"

    @property
    def training_plot(self) -> Path:
        """``training.png``: where ``reptile-rl plot`` draws by default."""
        return self.path / "training.png"

    # -- life cycle ----------------------------------------------------------------------------
    def holds_run(self) -> bool:
        """Whether a run was started here (its ``config.yaml`` exists)."""
        return self.config_file.is_file()

    def ensure_new(self, resume_hint: bool = True) -> None:
        """Raise ``ConfigError`` if the directory already holds a run.

        Args:
            resume_hint: Suggest ``--resume`` in the message.
        """
        if self.config_file.exists():
            hint = "resume it with --resume or choose another directory"
            raise ConfigError(
                f"--out: {self.path} already holds a run; "
                + (hint if resume_hint else "choose another directory")
            )

    def create(self, config: Config, resume_hint: bool = True) -> None:
        """Make the directory and write ``config.yaml`` and ``environment.json``.

        Args:
            config: The run's configuration.
            resume_hint: Suggest ``--resume`` if the directory already holds a run.

        Raises:
            ConfigError: If it already holds a run or cannot be written (nothing is changed).
        """
        self.ensure_new(resume_hint)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.write_config(config)
            text = json.dumps(environment.describe(), indent=2, sort_keys=True) + "\n"
            atomic_write_text(self.environment_file, text)
        except OSError as error:
            raise ConfigError(f"--out: cannot write to {self.path}: {error.strerror}") from None

    def write_config(self, config: Config) -> None:
        """Rewrite ``config.yaml`` (atomically), e.g. for a run extended to more iterations."""
        atomic_write_text(self.config_file, config_to_yaml(config))

    def read_environment(self) -> dict[str, Any]:
        """The recorded environment; empty if the run has none (written before it was kept)."""
        try:
            data = json.loads(self.environment_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def read_config(self) -> Config:
        """The run's configuration.

        Raises:
            ConfigError: If the directory holds no run or its ``config.yaml`` is invalid.
        """
        if not self.holds_run():
            raise ConfigError(f"--resume: {self.path} holds no run (no config.yaml)")
        return config_from_yaml(self.config_file.read_text(), str(self.config_file))
