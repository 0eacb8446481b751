"""The one primitive under every objective and evaluator: the log importance weights.

    log w_k = log p(x, z_k) - log q(z_k | x),   z_k ~ q(. | x),   k = 1..K

A bound says how the weights of one example become a number: ELBO = mean_k log w_k ("the VAE
with K samples"); IWAE-K = logsumexp_k log w_k - log K. Both are lower bounds on log p(x); IWAE-1
is the ELBO and IWAE-K rises towards log p(x) as K grows. Objectives (training) and evaluators
(log p(x) estimates, gaps) both import this module; neither imports the other.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp


class LogWeights(NamedTuple):
    """Per-sample terms for one example, each [K]; log_w = log_lik + log_prior - log_q."""

    log_w: jax.Array
    log_lik: jax.Array
    log_prior: jax.Array
    log_q: jax.Array
    q_mean: jax.Array  # [K, D]: mean of q(z_l | z_{l-1}) given each sample's parents


def log_weights(params, key: jax.Array, x: jax.Array, *, model, k: int) -> LogWeights:
    """K reparameterised samples z_k ~ q(. | x) for one example x [X] and their log weights."""

    def one(key):
        z, log_q, q_mean = model.sample_q(params, key, x)
        log_lik = model.log_lik(params, x, z)
        log_prior = model.log_prior(params, z)
        return LogWeights(log_lik + log_prior - log_q, log_lik, log_prior, log_q, q_mean)

    return jax.vmap(one)(jax.random.split(key, k))


def iwae_bound(log_w: jax.Array, axis: int = -1) -> jax.Array:
    """logsumexp(log w) - log K over `axis`: stable in float32 for any K."""
    return logsumexp(log_w, axis=axis) - math.log(log_w.shape[axis])


def bound_terms(lw: LogWeights) -> dict[str, jax.Array]:
    """Every term of the ELBO and IWAE-K bounds for one example's K samples (scalars).

    `kl` is the Monte Carlo estimate E_q[log q(z|x) - log p(z)], so elbo = recon - kl exactly.
    `ess` is the effective sample size of the normalised weights, in [1, K].
    """
    w = jax.nn.softmax(lw.log_w)
    return {
        "elbo": jnp.mean(lw.log_w),
        "iwae": iwae_bound(lw.log_w),
        "recon": jnp.mean(lw.log_lik),
        "kl": jnp.mean(lw.log_q - lw.log_prior),
        "ess": 1.0 / jnp.sum(w * w),
    }
