"""Training objectives, all built on one primitive: the log importance weights of one example.

    log w_k = log p(x, z_k) - log q(z_k | x),   z_k ~ q(. | x),   k = 1..K

ELBO (the "VAE with K samples") = mean_k log w_k; IWAE-K = logsumexp_k log w_k - log K. Both are
lower bounds on log p(x); IWAE-1 is the ELBO and IWAE-K rises towards log p(x) as K grows.

The HMC-refined objective (Hoffman 2017) moves a sample of q(z | x) towards p(z | x) with a few HMC
transitions before the decoder sees it, and trains the encoder with its own bound.

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
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from elbo_lab import hmc as hmc_lib


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
        per_example = jax.vmap(
            lambda kk, xx: bound_terms(log_weights(params, kk, xx, model=model, k=k))
        )
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


class EncoderOnly:
    """A model whose generative half sees its parameters through stop_gradient.

    q's functions (sample_q, log_q) read only the encoder's parameters and p's functions
    (log_prior, log_lik, log_joint) only the decoder's, so a bound computed with this model
    trains the encoder alone, for any model, without naming parameters. Gradients still flow
    through z into log p(x, z): the reparameterised encoder gradient is unchanged.
    """

    def __init__(self, model):
        self.model = model

    def sample_q(self, params, key, x):
        return self.model.sample_q(params, key, x)

    def log_q(self, params, x, z):
        return self.model.log_q(params, x, z)

    def log_prior(self, params, z):
        return self.model.log_prior(jax.lax.stop_gradient(params), z)

    def log_lik(self, params, x, z):
        return self.model.log_lik(jax.lax.stop_gradient(params), x, z)

    def log_joint(self, params, x, z):
        return self.model.log_joint(jax.lax.stop_gradient(params), x, z)


class Refined(NamedTuple):
    """One example's HMC chain on p(z | x), started from q; nothing here carries a gradient."""

    z0: jax.Array  # [D] the start, z0 ~ q(z | x)
    z: jax.Array  # [D] after num_steps transitions
    log_joint0: jax.Array  # [] log p(x, z0)
    log_joint: jax.Array  # [] log p(x, z)
    accept_prob: jax.Array  # [] mean Metropolis acceptance probability over the transitions


def hmc_refine(
    params, key: jax.Array, x: jax.Array, step_size, *, model, num_steps: int, num_leapfrog: int
) -> Refined:
    """Draw z0 ~ q(z | x) for one example x [X] and run `num_steps` HMC transitions of
    `num_leapfrog` leapfrog steps on p(z | x), i.e. on the log density log p(x, z) in z.

    Costs 1 + num_steps * num_leapfrog evaluations of log p(x, z) and its z-gradient (hmc.leapfrog
    carries the end gradient over) and one encoder pass. The chain is a sampler, not part of the
    model: its inputs are stop_gradient'ed, so no gradient can reach any parameter through it.
    """
    params = jax.lax.stop_gradient(params)
    k_q, k_chain = jax.random.split(key)
    z0, _, _ = model.sample_q(params, k_q, x)
    value_and_grad = jax.value_and_grad(lambda z: model.log_joint(params, x, z))
    start = hmc_lib.init(z0, value_and_grad)

    def step(state, key):
        state, info = hmc_lib.transition(
            key, state, value_and_grad, step_size=step_size, num_leapfrog=num_leapfrog
        )
        return state, info.accept_prob

    end, accept_prob = jax.lax.scan(step, start, jax.random.split(k_chain, num_steps))
    return Refined(z0, end.z, start.log_density, end.log_density, jnp.mean(accept_prob))


def hmc(
    *,
    model,
    k: int = 1,
    num_steps: int = 5,
    num_leapfrog: int = 10,
    step_size: float = 0.05,
    target_accept: float = 0.8,
    encoder: str = "elbo",
) -> Objective:
    """HMC-refined training (Hoffman 2017). Per example: z0 ~ q(z | x), `num_steps` HMC
    transitions on p(z | x) give z_T; the decoder (and prior) maximise log p(x, z_T) at the fixed
    z_T, the encoder maximises its own `encoder` bound ("elbo" or "iwae", with k samples), which
    updates the encoder only, so q learns to give HMC a good start.

    loss = -mean_b log p(x_b, z_T,b) - mean_b bound_b, each term reaching only its own half of the
    parameters. The state is the step size: after each update it moves by hmc.adapt_step_size
    towards `target_accept` on the batch-mean acceptance probability (`step_size` is its start).
    Decoder evaluations per example per update: 1 + num_steps * num_leapfrog gradient evaluations
    in z for the chain, k forward + backward for the encoder's bound, 1 forward + backward for the
    decoder loss.
    """
    encoder_model = EncoderOnly(model)

    def init():
        return jnp.asarray(step_size, jnp.float32)

    def loss(params, ostate, key, x):
        k_chain, k_enc = jax.random.split(key)
        batch = x.shape[0]
        refine = partial(hmc_refine, model=model, num_steps=num_steps, num_leapfrog=num_leapfrog)
        chains = jax.vmap(refine, in_axes=(None, 0, 0, None))(
            params, jax.random.split(k_chain, batch), x, ostate
        )
        log_joint = jax.vmap(model.log_joint, in_axes=(None, 0, 0))(params, x, chains.z)
        per_example = jax.vmap(
            lambda kk, xx: bound_terms(log_weights(params, kk, xx, model=encoder_model, k=k))
        )
        terms = {
            name: jnp.mean(v) for name, v in per_example(jax.random.split(k_enc, batch), x).items()
        }
        decoder_objective = jnp.mean(log_joint)
        loss_value = -decoder_objective - terms[encoder]
        accept = jnp.mean(chains.accept_prob)
        metrics = {
            **terms,
            "encoder_bound": terms[encoder],
            "log_joint": decoder_objective,
            "log_joint_gain": jnp.mean(chains.log_joint - chains.log_joint0),
            "accept": accept,
            "step_size": ostate,
            "loss": loss_value,
        }
        return loss_value, (metrics, hmc_lib.adapt_step_size(ostate, accept, target_accept))

    return Objective(init=init, loss=loss)


OBJECTIVES: dict[str, Callable[..., Objective]] = {"elbo": elbo, "iwae": iwae, "hmc": hmc}


def build(name: str, *, model, **hyper) -> Objective:
    """The objective registered under `name`, with its hyper-parameters bound."""
    return OBJECTIVES[name](model=model, **hyper)
