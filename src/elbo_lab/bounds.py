"""The one primitive under every objective and evaluator: the log importance weights.

    log w_k = log p(x, z_k) - log q(z_k | x),   z_k ~ q(. | x),   k = 1..K

A bound says how the weights of one example become a number (every function below takes the
log weights of ONE example, [S], and returns a scalar; vmap it over a batch):

    ELBO        mean_k log w_k                                  ("the VAE with S samples")
    IWAE-S      logsumexp_k log w_k - log S                     (Burda et al. 2015)
    Renyi-a     log mean_k w_k^(1-a) / (1-a), a >= 0            (Li & Turner 2016; a=0: IWAE,
                                                                 a -> 1: the ELBO)
    MIWAE(M,K)  mean over M groups of K of IWAE-K               (Rainforth et al. 2018)
    CIWAE-b     b ELBO + (1-b) IWAE-S on the same samples       (Rainforth et al. 2018)

All are lower bounds on log p(x) in expectation; each equals log p(x) when q is the exact
posterior (every weight is then p(x)). Objectives (training) and evaluators (log p(x) estimates,
gaps) both import this module; neither imports the other.
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


def sample_q(params, key: jax.Array, x: jax.Array, *, model, k: int):
    """K reparameterised samples z_k ~ q(. | x) of one example x [X]: (z [K, D], log q [K],
    q_mean [K, D]); the same key gives the same samples as log_weights."""
    return jax.vmap(model.sample_q, in_axes=(None, 0, None))(params, jax.random.split(key, k), x)


def log_weights(params, key: jax.Array, x: jax.Array, *, model, k: int) -> LogWeights:
    """K reparameterised samples z_k ~ q(. | x) for one example x [X] and their log weights."""
    z, log_q, q_mean = sample_q(params, key, x, model=model, k=k)
    log_lik, log_prior = joint_terms(params, x, z, model=model)
    return LogWeights(log_lik + log_prior - log_q, log_lik, log_prior, log_q, q_mean)


def joint_terms(params, x: jax.Array, z: jax.Array, *, model) -> tuple[jax.Array, jax.Array]:
    """(log p(x | z_k), log p(z_k)), each [K], of one example x [X] at given samples z [K, D]."""
    log_lik = jax.vmap(model.log_lik, in_axes=(None, None, 0))(params, x, z)
    log_prior = jax.vmap(model.log_prior, in_axes=(None, 0))(params, z)
    return log_lik, log_prior


def elbo_bound(log_w: jax.Array) -> jax.Array:
    """mean_k log w_k."""
    return jnp.mean(log_w)


def iwae_bound(log_w: jax.Array, axis: int = -1) -> jax.Array:
    """logsumexp(log w) - log K over `axis`: stable in float32 for any K."""
    return logsumexp(log_w, axis=axis) - math.log(log_w.shape[axis])


def renyi_bound(log_w: jax.Array, alpha: float) -> jax.Array:
    """log mean_k w_k^(1 - alpha) / (1 - alpha) for alpha >= 0; alpha = 1 is its limit, the
    ELBO. Non-increasing in alpha: IWAE (alpha = 0) >= Renyi-alpha >= ELBO for alpha in [0, 1]."""
    if alpha == 1:
        return elbo_bound(log_w)
    return iwae_bound((1.0 - alpha) * log_w) / (1.0 - alpha)


def miwae_bound(log_w: jax.Array, m: int) -> jax.Array:
    """The mean over m groups (consecutive blocks of log_w [m * K]) of each group's IWAE-K."""
    return jnp.mean(iwae_bound(log_w.reshape(m, -1)))


def ciwae_bound(log_w: jax.Array, beta: float) -> jax.Array:
    """beta * ELBO + (1 - beta) * IWAE on the same samples, beta in [0, 1]."""
    return beta * elbo_bound(log_w) + (1.0 - beta) * iwae_bound(log_w)


def dreg_scale(bound, log_w: jax.Array) -> jax.Array:
    """Per sample, the factor s_k that turns `bound`'s reparameterised path gradient into the
    doubly reparameterised one (Tucker et al. 2019), for any bound of the log weights [S].

    With g = d bound / d log w, the total encoder gradient is sum_k g_k d log w_k / d phi, whose
    score part -g_k d log q(z_k) / d phi has, by E_q[h(z) d log q / d phi] = E[dh/dz dz/dphi]
    applied to h = g_k, the same expectation as -(dg_k / d log w_k) (d log w_k / d z_k)(dz_k/dphi).
    So the doubly reparameterised estimator weights the path gradient of sample k by
    c_k = g_k - H_kk (H: the Hessian of the bound in log w); s_k = c_k / g_k (0 where g_k = 0,
    which makes c_k = 0 too). IWAE: s = w~ (c = w~^2); Renyi-a: s = a + (1-a) w~_a; the ELBO:
    s = 1 (DReG is STL there). Cost: S jvps of S numbers, O(S^2) per example.
    """
    grad = jax.grad(bound)
    g = grad(log_w)
    diag = jax.vmap(lambda e: jnp.vdot(e, jax.jvp(grad, (log_w,), (e,))[1]))(
        jnp.eye(log_w.shape[0], dtype=log_w.dtype)
    )
    return jnp.where(g > 0, (g - diag) / jnp.where(g > 0, g, 1.0), 0.0)


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
