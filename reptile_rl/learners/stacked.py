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
import math
from collections.abc import Sequence

import torch
from stable_baselines3.common.distributions import (
    CategoricalDistribution,
    DiagGaussianDistribution,
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
        gaussian = isinstance(first.action_dist, DiagGaussianDistribution)
        self._log_std = (
            torch.stack([p.log_std.detach() for p in self.policies]) if gaussian else None
        )

    @torch.no_grad()
    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each job's actor output and values for its own observations.

        Args:
            observations: Shape ``(jobs, n_envs, *observation_shape)``, as SB3's
                ``obs_as_tensor`` gives each job's.

        Returns:
            The actor's outputs (Gaussian means or categorical logits), shape ``(jobs, n_envs,
            outputs)``, and the values, shape ``(jobs, n_envs, 1)``: the bits each policy's own
            forward computes.
        """
        features = torch.stack(
            [_features(p, o) for p, o in zip(self.policies, observations, strict=True)]
        )
        return _run(self._actor, features), _run(self._critic, features)

    @torch.no_grad()
    def modes(self, observations: torch.Tensor) -> torch.Tensor:
        """Each job's deterministic action (SB3's ``predict(deterministic=True)`` before clipping).

        The Gaussian's mean, or the categorical's most probable action (per job, through SB3's
        own ``mode``).

        Args:
            observations: Shape ``(jobs, n_envs, *observation_shape)``.
        """
        features = torch.stack(
            [_features(p, o) for p, o in zip(self.policies, observations, strict=True)]
        )
        outputs = _run(self._actor, features)
        if self._log_std is not None:
            return outputs
        return torch.stack(
            [
                CategoricalDistribution(logits.shape[-1]).proba_distribution(logits).mode()
                for logits in outputs
            ]
        )

    @torch.no_grad()
    def act(
        self, observations: torch.Tensor, generators: Sequence[torch.Generator]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SB3's ``policy(obs)`` for every job: actions, values and log-probabilities.

        Each job's actions are drawn from its own generator with the arithmetic of torch's
        ``Normal.rsample`` and ``Categorical.sample``, which SB3 calls on torch's global
        generator: a generator seeded as SB3 seeds the global one draws the same actions. The
        Gaussian's draws and log-probabilities are computed for all jobs at once (elementwise,
        so each job's bits are its own).

        Args:
            observations: Shape ``(jobs, n_envs, *observation_shape)``.
            generators: One per job.

        Returns:
            Actions ``(jobs, n_envs, *action_shape)``, values ``(jobs, n_envs, 1)`` and
            log-probabilities ``(jobs, n_envs)``.
        """
        outputs, values = self.forward(observations)
        if self._log_std is None:
            draws, probabilities = [], []
            for logits, generator in zip(outputs, generators, strict=True):
                distribution = CategoricalDistribution(logits.shape[-1]).proba_distribution(logits)
                drawn = torch.multinomial(
                    distribution.distribution.probs, 1, True, generator=generator
                ).squeeze(-1)
                draws.append(drawn)
                probabilities.append(distribution.log_prob(drawn))
            return torch.stack(draws), values, torch.stack(probabilities)
        # DiagGaussianDistribution.proba_distribution, Normal.rsample and Normal.log_prob, summed
        # over the action's dimensions as SB3's sum_independent_dims does.
        scale = torch.ones_like(outputs) * self._log_std.exp().unsqueeze(1)
        noise = torch.stack(
            [
                torch.empty(outputs.shape[1:], dtype=outputs.dtype).normal_(generator=generator)
                for generator in generators
            ]
        )
        actions = outputs + noise * scale
        log_probs = (
            -((actions - outputs) ** 2) / (2 * scale**2)
            - scale.log()
            - math.log(math.sqrt(2 * math.pi))
        )
        return actions, values, log_probs.sum(dim=-1)


def _features(policy: ActorCriticPolicy, observations: torch.Tensor) -> torch.Tensor:
    """The policy's features of its observations (one extractor shared by actor and critic)."""
    features = policy.extract_features(observations)
    if not isinstance(features, torch.Tensor):
        raise ValueError("the lockstep engine needs one features extractor for actor and critic")
    return features
