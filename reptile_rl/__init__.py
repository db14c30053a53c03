"""reptile-rl: Reptile meta-reinforcement learning around stable-baselines3 PPO.

Importing this package also registers the task families of :mod:`envs` with Gymnasium.
"""

import envs as _envs  # noqa: F401  (registers the ReptileRL/* environment ids)
from reptile_rl.config import Config, ConfigError, load_config
from reptile_rl.inner import AdaptJob, AdaptResult, InnerLoop
from reptile_rl.reptile import Reptile, TrainingError

__all__ = [
    "AdaptJob",
    "AdaptResult",
    "Config",
    "ConfigError",
    "InnerLoop",
    "Reptile",
    "TrainingError",
    "load_config",
]
__version__ = "0.1.0"
