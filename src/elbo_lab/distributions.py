"""Log densities used by models, likelihoods and estimators (summed over the last axis)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_pdf(z: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log N(z; mean, diag(exp(log_std))^2), summed over the last axis."""
    return jnp.sum(-0.5 * jnp.square((z - mean) * jnp.exp(-log_std)) - log_std - 0.5 * LOG_2PI, -1)


def bernoulli_log_pmf(x: jax.Array, logits: jax.Array) -> jax.Array:
    """log Bernoulli(x; sigmoid(logits)), summed over the last axis; stable for any logits."""
    return jnp.sum(x * logits - jax.nn.softplus(logits), -1)
