"""reptile-rl: Reptile meta-reinforcement learning around stable-baselines3 (PPO or A2C).

Where to start reading:

- :mod:`reptile_rl.reptile`: the algorithm on one screen (:func:`meta_step`).
- :mod:`reptile_rl.learners`: the inner learner protocol and the SB3 PPO/A2C learner.
- :class:`Trainer`: the driver (loop, logs, checkpoints, export); :class:`Pretrainer`: the
  multi-task baselines; :mod:`reptile_rl.evaluation`: adaptation curves on held-out tasks.
- :func:`adapt`: a meta-policy adapted to one new task, for users; :func:`load_meta_policy`.

Importing this package also registers the task families of :mod:`reptile_rl.envs` with
Gymnasium.
"""

from reptile_rl import envs  # registers the ReptileRL/* environment ids
from reptile_rl.adaptation import Adaptation, adapt, sb3_adaptation
from reptile_rl.config import Config, ConfigError, load_config
from reptile_rl.learners import AdaptJob, AdaptResult, Learner, make_learner
from reptile_rl.policies import PolicyFile
from reptile_rl.pretrain import Pretrainer
from reptile_rl.reptile import MetaState, TrainingError, meta_step
from reptile_rl.sources import load_meta_policy
from reptile_rl.trainer import Trainer

__all__ = [
    "AdaptJob",
    "AdaptResult",
    "Adaptation",
    "Config",
    "ConfigError",
    "Learner",
    "MetaState",
    "PolicyFile",
    "Pretrainer",
    "Trainer",
    "TrainingError",
    "adapt",
    "envs",
    "load_config",
    "load_meta_policy",
    "make_learner",
    "meta_step",
    "sb3_adaptation",
]
__version__ = "0.1.0"
