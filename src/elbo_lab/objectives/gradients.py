"""Gradient estimators: how the encoder's gradient is formed from one example's samples.

`estimated_log_weights` returns the log weights of K samples whose VALUES are the true log weights
(any bound of them is the bound) and whose GRADIENT, taken through the bound, is the estimator's:

    reparam  the total derivative of the bound: the path through z_k = z(eps_k; phi) and the
             score term -d log q(z_k; phi) / d phi (the plain VAE / IWAE gradient).
    stl      "sticking the landing" (Roeder et al. 2017): log q is evaluated with q's parameters
             stopped, so only the path through z remains. Unbiased for the ELBO; for a bound whose
             weights g_k depend on the samples (IWAE with K > 1, Renyi, MIWAE, CIWAE) it drops a
             term with non-zero mean and is BIASED (Tucker et al. 2019, sec. 4): use dreg there.
    dreg     doubly reparameterised (Tucker et al. 2019): the path gradient of sample k weighted
             by c_k = g_k - d g_k / d log w_k instead of g_k (bounds.dreg_scale), the score term's
             expectation rewritten as a path derivative. Unbiased for every bound: its mean is the
             reparam gradient's; with q the exact posterior it is exactly zero (no variance).

The decoder's gradient is the true gradient of the bound under every estimator (the scaling acts
on z's cotangent only; tests/test_gradient_estimators.py checks it sample by sample).

Several stochastic layers: z is every layer's sample, concatenated, reparameterised jointly
(z_l = mu(z_{l-1}) + sigma(z_{l-1}) eps_l) and log q is the joint log density with all of q's
parameters stopped. The identity above holds for any reparameterised q, so stl and dreg are the
same estimators of the joint q's gradient: dreg stays unbiased (tested on a two-layer model).

`EncoderOnly` and `DecoderOnly` restrict a bound's gradient to one half of the parameters without
naming them: q's functions read only the encoder's parameters and p's only the decoder's.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from elbo_lab.bounds import LogWeights, dreg_scale, joint_terms, log_weights, sample_q
from elbo_lab.registry import check

ESTIMATORS = ("reparam", "stl", "dreg")  # of every bound entry (objective.estimator)


def estimated_log_weights(
    params, key: jax.Array, x: jax.Array, *, model, k: int, estimator: str, bound: Callable
) -> LogWeights:
    """K samples of q(. | x) for one example x [X] and their log weights [K], differentiable as
    `estimator` prescribes for the scalar bound(log_w) (see the module's docstring)."""
    if estimator == "reparam":
        return log_weights(params, key, x, model=model, k=k)
    scale = (lambda log_w: dreg_scale(bound, log_w)) if estimator == "dreg" else None
    return path_log_weights(params, key, x, model=model, k=k, scale=scale)


def path_log_weights(
    params, key: jax.Array, x: jax.Array, *, model, k: int, scale: Callable | None = None
) -> LogWeights:
    """The log weights of K samples of q(. | x) with q's parameters stopped in log q, so the
    encoder's gradient takes the path through z only; `scale(log_w)` [K], if given, multiplies
    that path's gradient sample by sample (in the reverse pass; the decoder's is untouched)."""
    z, _, q_mean = sample_q(params, key, x, model=model, k=k)

    def path_weights(p, z):
        log_lik, log_prior = joint_terms(p, x, z, model=model)
        frozen = jax.lax.stop_gradient(p)
        log_q = jax.vmap(model.log_q, in_axes=(None, None, 0))(frozen, x, z)
        return log_lik + log_prior - log_q, log_lik, log_prior, log_q

    if scale is not None:
        path_weights = scale_z_cotangent(path_weights, lambda out: scale(out[0]))
    return LogWeights(*path_weights(params, z), q_mean)


def scale_z_cotangent(fn: Callable, scale: Callable) -> Callable:
    """fn(params, z [K, D]) -> outputs, unchanged in value; in the reverse pass the cotangent of
    z's row k is multiplied by scale(outputs)[k] (a stop-gradient'ed [K] vector), the cotangent of
    params is left alone. One forward and one backward pass of fn, as for the plain gradient."""

    @jax.custom_vjp
    def scaled(params, z):
        return fn(params, z)

    def forward(params, z):
        out, vjp = jax.vjp(fn, params, z)
        return out, (out, vjp)

    def backward(residual, cotangent):
        out, vjp = residual
        d_params, d_z = vjp(cotangent)
        return d_params, d_z * jax.lax.stop_gradient(scale(out))[:, None]

    scaled.defvjp(forward, backward)
    return scaled


def check_estimator(entry) -> None:
    """A ConfigError unless entry.estimator is one of the entry's `estimators`."""
    valid = type(entry).estimators
    check(
        entry.estimator in valid,
        f"unknown objective.estimator {entry.estimator!r} for objective "
        f"{type(entry).registry_name!r}; valid: {', '.join(valid)}",
    )


class EncoderOnly:
    """A model whose generative half sees its parameters through stop_gradient: a bound computed
    with it trains the encoder alone (gradients still flow through z into log p(x, z))."""

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


class DecoderOnly:
    """A model whose samples and log q see q's parameters through stop_gradient: a bound computed
    with it trains the decoder alone, with the decoder's true gradient at the same samples."""

    def __init__(self, model):
        self.model = model

    def sample_q(self, params, key, x):
        return self.model.sample_q(jax.lax.stop_gradient(params), key, x)

    def log_q(self, params, x, z):
        return self.model.log_q(jax.lax.stop_gradient(params), x, z)

    def log_prior(self, params, z):
        return self.model.log_prior(params, z)

    def log_lik(self, params, x, z):
        return self.model.log_lik(params, x, z)

    def log_joint(self, params, x, z):
        return self.model.log_joint(params, x, z)


def softmax_weights(log_w: jax.Array) -> jax.Array:
    """The self-normalised importance weights w~ [K] of log weights [K]."""
    return jax.nn.softmax(jax.lax.stop_gradient(log_w))
