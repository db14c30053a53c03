"""One forward for several SB3 actor-critic policies of the same shape (the lockstep engine).

The lockstep engine rolls out a worker's jobs together; each job has its own policy, and the
policies differ only in their parameters. :class:`StackedPolicies` stacks their weights once per
rollout and evaluates every job's policy on its own observations in one batched matrix product
per hidden layer (``torch.baddbmm``) instead of one forward per job.

A job's outputs must not depend on which other jobs share its worker, so they must be the bits
its own policy computes alone. Whether ``baddbmm`` gives a layer's own bits depends on the
shape: on this machine (torch 2.13, one thread) it does for the 100- and 64-unit hidden layers
of 20 envs, but not for a layer with one output (the critic's last layer: 1 ulp apart), nor for
many small shapes (a single observation per job, 16 units and 4 envs). So each shape is checked
once (:func:`batched_is_exact`) and a layer that is not exact is evaluated job by job.
``tests/test_stacked.py`` checks the equality for the presets' shapes and small ones.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from stable_baselines3.common.distributions import (
    CategoricalDistribution,
    DiagGaussianDistribution,
    Distribution,
)
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn


class _StackedLinear:
    """The same layer of several policies: weights stacked, or kept per job where needed."""

    def __init__(self, layers: Sequence[nn.Linear]):
        self.layers = list(layers)
        self.weights = torch.stack([layer.weight.detach() for layer in layers]).transpose(1, 2)
        self.biases = torch.stack([layer.bias.detach() for layer in layers]).unsqueeze(1)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` of shape ``(jobs, batch, in)`` -> ``(jobs, batch, out)``."""
        in_features, out_features = self.weights.shape[1:]
        if batched_is_exact(inputs.shape[1], in_features, out_features, torch.get_num_threads()):
            return torch.baddbmm(self.biases, inputs, self.weights)
        return torch.stack(
            [layer(x) for layer, x in zip(self.layers, inputs.unbind(0), strict=True)]
        )


@functools.cache
def batched_is_exact(batch: int, in_features: int, out_features: int, threads: int) -> bool:
    """Whether ``baddbmm`` gives each job ``nn.Linear``'s own bits for this shape, here.

    Checked once per shape on random numbers: the kernel torch picks depends on the shape (and
    the machine), and where two kernels differ they sum in another order, which random inputs
    show at once.
    """
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(2, batch, in_features, generator=generator)
    weights = torch.randn(2, out_features, in_features, generator=generator)
    biases = torch.randn(2, out_features, generator=generator)
    batched = torch.baddbmm(biases.unsqueeze(1), inputs, weights.transpose(1, 2))
    alone = torch.stack([nn.functional.linear(inputs[j], weights[j], biases[j]) for j in (0, 1)])
    return torch.equal(batched, alone)


def _stack(networks: Sequence[nn.Module]) -> list[_StackedLinear | nn.Module]:
    """Stack the layers of networks of one shape; activations (no parameters) are shared."""
    stacked: list[_StackedLinear | nn.Module] = []
    for layers in zip(*(network.modules() for network in networks), strict=True):
        first = layers[0]
        if isinstance(first, nn.Linear):
            stacked.append(
                _StackedLinear([layer for layer in layers if isinstance(layer, nn.Linear)])
            )
        elif not list(first.children()) and not isinstance(first, nn.Identity):
            stacked.append(first)  # an activation
    return stacked


def _run(layers: list[_StackedLinear | nn.Module], inputs: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        inputs = layer(inputs)
    return inputs


class StackedPolicies:
    """The forward of several same-shaped ``ActorCriticPolicy`` MLPs in one call.

    Snapshots the parameters: build it again after the policies change (once per rollout).

    Args:
        policies: SB3 MLP actor-critic policies with one architecture (separate actor and
            critic networks, SB3's ``MlpPolicy``), one per job.
    """

    def __init__(self, policies: Sequence[ActorCriticPolicy]):
        self.policies = list(policies)
        first = self.policies[0]
        if not isinstance(first.action_dist, DiagGaussianDistribution | CategoricalDistribution):
            raise ValueError(f"no stacked forward for {type(first.action_dist).__name__}")
        extractors = [p.mlp_extractor for p in self.policies]
        self._actor = _stack([e.policy_net for e in extractors]) + _stack(
            [p.action_net for p in self.policies]
        )
        self._critic = _stack([e.value_net for e in extractors]) + _stack(
            [p.value_net for p in self.policies]
        )

    @torch.no_grad()
    def forward(self, observations: torch.Tensor) -> tuple[list[Distribution], torch.Tensor]:
        """Each job's action distribution and values for its own observations.

        Args:
            observations: Shape ``(jobs, n_envs, *observation_shape)``, as each policy's
                ``obs_to_tensor`` gives them.

        Returns:
            One SB3 distribution per job (over its ``n_envs`` observations) and the values,
            shape ``(jobs, n_envs, 1)``: the bits each policy's ``forward`` computes alone.
        """
        features = torch.stack(
            [_features(p, o) for p, o in zip(self.policies, observations, strict=True)]
        )
        outputs = _run(self._actor, features)
        values = _run(self._critic, features)
        distributions = [
            _distribution(policy, out) for policy, out in zip(self.policies, outputs, strict=True)
        ]
        return distributions, values


def _features(policy: ActorCriticPolicy, observations: torch.Tensor) -> torch.Tensor:
    """The policy's features of its observations (one extractor shared by actor and critic)."""
    features = policy.extract_features(observations)
    if not isinstance(features, torch.Tensor):
        raise ValueError("the lockstep engine needs one features extractor for actor and critic")
    return features


def _distribution(policy: ActorCriticPolicy, output: torch.Tensor) -> Distribution:
    """SB3's action distribution of ``policy`` from its actor's output (fresh per job)."""
    if isinstance(policy.action_dist, DiagGaussianDistribution):
        return DiagGaussianDistribution(policy.action_dist.action_dim).proba_distribution(
            output, policy.log_std.detach()
        )
    assert isinstance(policy.action_dist, CategoricalDistribution)  # checked in __init__
    return CategoricalDistribution(policy.action_dist.action_dim).proba_distribution(output)


def sample(distribution: Distribution, generator: torch.Generator) -> torch.Tensor:
    """Draw actions from an SB3 distribution with a generator of the job's own.

    The same arithmetic as the distribution's own ``sample()`` (torch's ``Normal.rsample`` and
    ``Categorical.sample``), which draws from torch's global generator instead: a generator
    seeded as SB3 seeds the global one draws the same actions.
    """
    if isinstance(distribution, DiagGaussianDistribution):
        normal = distribution.distribution
        noise = torch.empty(normal.loc.shape, dtype=normal.loc.dtype).normal_(generator=generator)
        return normal.loc + noise * normal.scale
    assert isinstance(distribution, CategoricalDistribution)
    probabilities = distribution.distribution.probs
    return torch.multinomial(probabilities, 1, True, generator=generator).squeeze(-1)
