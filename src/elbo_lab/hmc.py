"""Hamiltonian Monte Carlo on a log density of one flat latent vector, as pure functions.

Shared by the AIS evaluator (targets on the path from q or p(z) to p(x, z)) and the HMC-refined
objective (target p(z | x) up to a constant, i.e. log p(x, z)). Written for ONE chain; vmap over
chains and examples. Unit mass matrix. A transition costs `num_leapfrog` gradient evaluations:
the gradient at the end of a trajectory is carried in the state and reused by the next one.

    state = init(z, value_and_grad)
    state, info = transition(key, state, value_and_grad, step_size=0.1, num_leapfrog=10)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

ValueAndGrad = Callable[[jax.Array], tuple[jax.Array, jax.Array]]  # z [D] -> (log f, d log f / dz)


class HMCState(NamedTuple):
    z: jax.Array  # [D]
    log_density: jax.Array  # []
    grad: jax.Array  # [D]


class HMCInfo(NamedTuple):
    accept_prob: jax.Array  # [] min(1, exp(-energy error)); 0 for a diverging trajectory
    accepted: jax.Array  # [] bool
    energy_error: jax.Array  # [] H(end) - H(start)


def init(z: jax.Array, value_and_grad: ValueAndGrad) -> HMCState:
    log_density, grad = value_and_grad(z)
    return HMCState(z, log_density, grad)


def leapfrog(
    value_and_grad: ValueAndGrad, state: HMCState, momentum: jax.Array, step_size, num_steps: int
) -> tuple[HMCState, jax.Array]:
    """`num_steps` leapfrog steps of size `step_size` for H(z, r) = -log f(z) + |r|^2 / 2.

    Volume preserving and reversible (negating the final momentum and integrating again returns
    to the start); the energy error is O(step_size^2). Returns (state at the end, momentum).
    """
    r = momentum + 0.5 * step_size * state.grad

    def body(carry, i):
        z, r, _, _ = carry
        z = z + step_size * r
        log_density, grad = value_and_grad(z)
        # full momentum steps in between, a half step at the end
        r = r + jnp.where(i == num_steps - 1, 0.5, 1.0) * step_size * grad
        return (z, r, log_density, grad), None

    (z, r, log_density, grad), _ = jax.lax.scan(
        body, (state.z, r, state.log_density, state.grad), jnp.arange(num_steps)
    )
    return HMCState(z, log_density, grad), r


def transition(
    key: jax.Array,
    state: HMCState,
    value_and_grad: ValueAndGrad,
    *,
    step_size,
    num_leapfrog: int,
) -> tuple[HMCState, HMCInfo]:
    """One HMC transition (fresh Gaussian momentum, leapfrog, Metropolis accept/reject)."""
    k_mom, k_acc = jax.random.split(key)
    r0 = jax.random.normal(k_mom, state.z.shape, state.z.dtype)
    proposal, r1 = leapfrog(value_and_grad, state, r0, step_size, num_leapfrog)
    h0 = -state.log_density + 0.5 * jnp.sum(r0 * r0)
    h1 = -proposal.log_density + 0.5 * jnp.sum(r1 * r1)
    energy_error = h1 - h0
    accept_prob = jnp.where(
        jnp.isfinite(energy_error), jnp.minimum(1.0, jnp.exp(-energy_error)), 0.0
    )
    accepted = jax.random.uniform(k_acc) < accept_prob
    new = jax.tree.map(lambda a, b: jnp.where(accepted, a, b), proposal, state)
    return new, HMCInfo(accept_prob, accepted, energy_error)


def adapt_step_size(step_size, accept_rate, target_accept: float, rate: float = 0.05):
    """One step of the rule log eps <- log eps + rate * (accept_rate - target_accept).

    A stochastic-approximation rule: the step grows while chains accept more often than the
    target and shrinks otherwise; its fixed point is the target acceptance rate.
    """
    return step_size * jnp.exp(rate * (accept_rate - target_accept))
