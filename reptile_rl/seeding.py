"""Seeds derived from the run seed: every random draw of a run comes from one of these streams.

A run is a pure function of its configuration and seed. Each consumer of randomness asks for
a seed from ``(run seed, stream, keys...)``, so results never depend on which worker ran what,
in which order, or whether the run was resumed.
"""

from __future__ import annotations

import enum

import numpy as np


class Stream(enum.IntEnum):
    """Independent purposes that need random numbers."""

    INITIAL_PARAMETERS = 1
    TRAIN_TASKS = 2
    ADAPTATION = 3
    EVAL_TASKS = 4
    EVAL_ADAPTATION = 5
    BASELINE = 6
    EVAL_RANDOM_INIT = 7
    USER_ADAPTATION = 8


def derive_seed(run_seed: int, stream: Stream, *keys: int) -> int:
    """Return a 32-bit seed for ``stream`` at ``keys`` (e.g. iteration, task index).

    NumPy's ``SeedSequence`` ignores trailing zeros (``[1, 2]`` and ``[1, 2, 0]`` collide), so
    the number of keys is mixed in too.
    """
    entropy = [run_seed, int(stream), len(keys), *keys]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0])
