"""Training objectives, all built on one primitive: the log importance weights of one example.

    log w_k = log p(x, z_k) - log q(z_k | x),   z_k ~ q(. | x),   k = 1..K

ELBO (the "VAE with K samples") = mean_k log w_k; IWAE-K = logsumexp_k log w_k - log K. Both are
lower bounds on log p(x); IWAE-1 is the ELBO and IWAE-K rises towards log p(x) as K grows.

An objective is a pair of pure functions over its own (possibly empty) state, like an optax
transformation:

    init() -> ostate
    loss(params, ostate, key, x) -> (loss, (metrics, new_ostate))   x: [B, X] binary batch

`metrics` is a flat dict of scalars (batch means) that always holds every term of the bounds, so the
logs explain the loss. Objectives are looked up by name in OBJECTIVES; hyper-parameters are bound
when the objective is built, so no config object is ever an argument of a jitted function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

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


class Objective(NamedTuple):
    init: Callable[[], Any]
    loss: Callable[..., tuple[jax.Array, tuple[dict[str, jax.Array], Any]]]


def _k_sample_objective(bound: str, *, model, k: int) -> Objective:
    """ELBO or IWAE-K with K samples per example; the loss is minus the batch-mean bound."""

    def loss(params, ostate, key, x):
        keys = jax.random.split(key, x.shape[0])
        per_example = jax.vmap(lambda kk, xx: bound_terms(log_weights(params, kk, xx, model=model, k=k)))
        terms = per_example(keys, x)
        metrics = {name: jnp.mean(v) for name, v in terms.items()}
        loss_value = -metrics[bound]
        return loss_value, ({**metrics, "loss": loss_value}, ostate)

    return Objective(init=lambda: (), loss=loss)


def elbo(*, model, k: int = 1) -> Objective:
    """The VAE objective with k samples: mean over k of log w."""
    return _k_sample_objective("elbo", model=model, k=k)


def iwae(*, model, k: int = 5) -> Objective:
    """The IWAE k-sample bound: logsumexp of log w minus log k."""
    return _k_sample_objective("iwae", model=model, k=k)


OBJECTIVES: dict[str, Callable[..., Objective]] = {"elbo": elbo, "iwae": iwae}


def build(name: str, *, model, **hyper) -> Objective:
    """The objective registered under `name`, with its hyper-parameters bound."""
    return OBJECTIVES[name](model=model, **hyper)
