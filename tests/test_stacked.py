"""The lockstep engine's stacked forward gives each job's own policy's bits, and its draws SB3's."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

from reptile_rl.learners.stacked import StackedPolicies


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
    outputs, values = StackedPolicies(policies).forward(observations)
    for policy, obs, output, value in zip(policies, observations, outputs, values, strict=True):
        with torch.no_grad():
            latent = policy.mlp_extractor.forward_actor(policy.extract_features(obs))
            assert torch.equal(output, policy.action_net(latent))
            assert torch.equal(value, policy.predict_values(obs))


@pytest.mark.parametrize("action_space", [BOX, DISCRETE])
def test_seeded_generators_draw_what_sb3_draws_from_the_seeded_global_one(
    action_space: gym.Space,
) -> None:
    policies = _policies(3, action_space, [16], torch.nn.Tanh)
    observations = torch.randn(3, 20, 5)
    stacked = StackedPolicies(policies)
    generators = [torch.Generator().manual_seed(123 + job) for job in range(3)]
    ours = [stacked.act(observations, generators) for _ in range(3)]
    for job, policy in enumerate(policies):
        torch.manual_seed(123 + job)
        for actions, values, log_probs in ours:
            with torch.no_grad():
                sb3_actions, sb3_values, sb3_log_probs = policy(observations[job])
            assert torch.equal(actions[job].reshape(sb3_actions.shape), sb3_actions)
            assert torch.equal(values[job], sb3_values)
            assert torch.equal(log_probs[job], sb3_log_probs)
    assert not torch.equal(ours[0][0], ours[1][0])  # the draws go on
