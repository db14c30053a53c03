"""The lockstep engine's stacked forward gives each job's own policy's bits, and its draws SB3's."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from reptile_rl.learners.stacked import StackedPolicies, sample


def _policies(
    jobs: int, action_space: gym.Space, net_arch: list[int], activation: type[torch.nn.Module]
) -> list[ActorCriticPolicy]:
    observations = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
    policies = []
    for job in range(jobs):
        torch.manual_seed(job)
        policies.append(
            ActorCriticPolicy(
                observations,
                action_space,
                lambda _: 0.0,
                net_arch=net_arch,
                activation_fn=activation,
                log_std_init=-float(job),
            )
        )
    return policies


BOX = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)
DISCRETE = gym.spaces.Discrete(5)


@pytest.mark.parametrize(
    ("action_space", "net_arch", "activation", "n_envs"),
    [
        (BOX, [100, 100], torch.nn.Tanh, 20),  # navigation
        (BOX, [64, 64], torch.nn.Tanh, 20),  # the MuJoCo presets
        (BOX, [64, 64], torch.nn.ReLU, 10),  # ml1-reach's envs
        (DISCRETE, [100, 100], torch.nn.ReLU, 20),  # grid navigation with PPO
        (BOX, [100, 100], torch.nn.Tanh, 1),  # one env per job
        (BOX, [16, 16], torch.nn.Tanh, 4),  # the tests' tiny configuration
    ],
)
def test_stacked_forward_gives_each_policys_own_bits(
    action_space: gym.Space, net_arch: list[int], activation: type[torch.nn.Module], n_envs: int
) -> None:
    torch.set_num_threads(1)
    policies = _policies(4, action_space, net_arch, activation)
    observations = torch.randn(4, n_envs, 5)
    distributions, values = StackedPolicies(policies).forward(observations)
    for policy, obs, distribution, value in zip(
        policies, observations, distributions, values, strict=True
    ):
        with torch.no_grad():
            own_actions, own_values, _ = policy(obs, deterministic=True)
        assert torch.equal(value, own_values)
        assert torch.equal(distribution.mode().reshape(own_actions.shape), own_actions)


@pytest.mark.parametrize("action_space", [BOX, DISCRETE])
def test_a_seeded_generator_draws_what_sb3_draws_from_the_seeded_global_one(
    action_space: gym.Space,
) -> None:
    (policy,) = _policies(1, action_space, [16], torch.nn.Tanh)
    observations = torch.randn(1, 20, 5)
    (distribution,), _ = StackedPolicies([policy]).forward(observations)
    generator = torch.Generator().manual_seed(123)
    ours = [sample(distribution, generator) for _ in range(3)]
    torch.manual_seed(123)
    with torch.no_grad():
        sb3 = [policy(observations[0])[0] for _ in range(3)]
    for mine, theirs in zip(ours, sb3, strict=True):
        assert torch.equal(mine.reshape(theirs.shape), theirs)
    assert not torch.equal(ours[0], ours[1])
