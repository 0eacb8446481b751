"""Where the inference gap comes from (Cremer, Li & Duvenaud 2018).

    log p(x) - ELBO[q]  =  (log p(x) - ELBO[q*])  +  (ELBO[q*] - ELBO[q])
         inference gap       approximation gap        amortization gap

q(z | x) is the encoder's; q*(z | x) is the best mean-field Gaussian over the flat z for this one
example, found by gradient ascent on its own reparameterised ELBO (Adam, a fixed number of steps
with a cosine-decayed learning rate, all examples vmapped in one jit) starting from the encoder:
the mean of the encoder's per-layer means and the standard deviation of its samples of the flat z
(for a one-layer encoder that is its own Gaussian, up to the sampling error of the std). The
approximation gap is what the family costs; the amortization gap what sharing one encoder costs.

Both ELBOs are estimated with `eval_samples` fresh samples per example, with bounds.log_weights
on the model and on LocalGaussian (the same model with q replaced by q*), so they are the same
estimator of the same quantity for two posteriors.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from elbo_lab.bounds import log_weights
from elbo_lab.chunking import chunked_map
from elbo_lab.distributions import gaussian_log_pdf


class LocalGaussian:
    """`model` with q(z | x) replaced by a free Gaussian N(mean, diag(exp(log_std))^2).

    Its params are (model params, (mean [D], log_std [D])); log_lik/log_prior are the model's, so
    bounds.log_weights works on it unchanged.
    """

    def __init__(self, model):
        self.model = model
        self.latent_dim = model.latent_dim

    def sample_q(self, params, key, x):
        _, (mean, log_std) = params
        z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return z, gaussian_log_pdf(z, mean, log_std), mean

    def log_lik(self, params, x, z):
        return self.model.log_lik(params[0], x, z)

    def log_prior(self, params, z):
        return self.model.log_prior(params[0], z)


def _elbo_and_se(log_w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean of one example's log weights [K] and its Monte Carlo standard error."""
    return jnp.mean(log_w), jnp.std(log_w, ddof=1) / math.sqrt(log_w.shape[0])


@partial(
    jax.jit, static_argnames=("model", "steps", "train_samples", "init_samples", "eval_samples")
)
def fit_and_evaluate(
    params,
    key,
    x,
    lr,
    *,
    model,
    steps: int,
    train_samples: int,
    init_samples: int,
    eval_samples: int,
) -> dict[str, jax.Array]:
    """Fit q* for each example of x [B, X] and estimate both ELBOs (compiled once per model,
    settings and batch shape; lr is traced).

    Returns per-example arrays [B]: "elbo_q", "elbo_q_mc_se" (the encoder's ELBO and its MC SE),
    "elbo_qstar", "elbo_qstar_mc_se" (the fitted q*'s), "elbo_qstar_init" (q* at its start, a
    check that the start is the encoder), and q*'s "mean", "log_std" [B, D].
    """
    local = LocalGaussian(model)
    optimizer = optax.adam(optax.cosine_decay_schedule(lr, steps))

    def start(params, key, x):
        def one(k):
            z, _, q_mean = model.sample_q(params, k, x)
            return z, q_mean

        z, q_mean = jax.vmap(one)(jax.random.split(key, init_samples))
        return jnp.mean(q_mean, 0), jnp.log(jnp.std(z, 0, ddof=1))

    def elbo(params, local_params, key, x, k):
        return log_weights((params, local_params), key, x, model=local, k=k).log_w

    k_init, k_fit, k_q, k_star, k_star0 = jax.random.split(key, 5)
    b = x.shape[0]
    init = jax.vmap(start, (None, 0, 0))(params, jax.random.split(k_init, b), x)

    def loss(local_params, key):
        keys = jax.random.split(key, b)
        per = jax.vmap(lambda lp, kk, xx: jnp.mean(elbo(params, lp, kk, xx, train_samples)))
        # the sum over examples: each example's parameters get its own ELBO's gradient
        return -jnp.sum(per(local_params, keys, x))

    def step(carry, key):
        local_params, opt_state = carry
        grads = jax.grad(loss)(local_params, key)
        updates, opt_state = optimizer.update(grads, opt_state, local_params)
        return (optax.apply_updates(local_params, updates), opt_state), None

    (fitted, _), _ = jax.lax.scan(
        step, (init, optimizer.init(init)), jax.random.split(k_fit, steps)
    )

    def evaluate(local_params, key):
        lw = jax.vmap(lambda lp, kk, xx: elbo(params, lp, kk, xx, eval_samples))(
            local_params, jax.random.split(key, b), x
        )
        return jax.vmap(_elbo_and_se)(lw)

    lw_q = jax.vmap(lambda kk, xx: log_weights(params, kk, xx, model=model, k=eval_samples))(
        jax.random.split(k_q, b), x
    ).log_w
    elbo_q, elbo_q_se = jax.vmap(_elbo_and_se)(lw_q)
    elbo_star, elbo_star_se = evaluate(fitted, k_star)
    elbo_star0, _ = evaluate(init, k_star0)
    return {
        "elbo_q": elbo_q,
        "elbo_q_mc_se": elbo_q_se,
        "elbo_qstar": elbo_star,
        "elbo_qstar_mc_se": elbo_star_se,
        "elbo_qstar_init": elbo_star0,
        "mean": fitted[0],
        "log_std": fitted[1],
    }


def inference_gaps(
    params,
    model,
    x: np.ndarray,
    log_px: np.ndarray,
    key: jax.Array,
    *,
    steps: int = 2000,
    lr: float = 0.01,
    train_samples: int = 10,
    init_samples: int = 1000,
    eval_samples: int = 5000,
    examples_per_chunk: int = 100,
    first_row: int = 0,
) -> dict[str, np.ndarray]:
    """The gap decomposition for each row of x [N, X] (rows first_row.. of a larger set, see
    chunked_map), given log p(x) estimates log_px [N].

    Returns per-example float64 arrays [N]: "log_px", "elbo_q", "elbo_qstar" (with "_mc_se"
    entries: their Monte Carlo standard errors over eval_samples), "elbo_qstar_init",
    "inference_gap" = log_px - elbo_q, "approximation_gap" = log_px - elbo_qstar and
    "amortization_gap" = elbo_qstar - elbo_q, so the last two add up to the first exactly; and
    q*'s "mean", "log_std" [N, D].
    """
    settings = dict(
        model=model,
        steps=steps,
        train_samples=train_samples,
        init_samples=init_samples,
        eval_samples=eval_samples,
    )
    per = chunked_map(
        lambda p, k, xb: fit_and_evaluate(p, k, xb, lr, **settings),
        [np.asarray(x, np.float32)],
        min(examples_per_chunk, x.shape[0]),
        key,
        params=params,
        post=lambda out: {name: np.asarray(v, np.float64) for name, v in out.items()},
        first_row=first_row,
    )
    per["log_px"] = np.asarray(log_px, np.float64)
    per["inference_gap"] = per["log_px"] - per["elbo_q"]
    per["approximation_gap"] = per["log_px"] - per["elbo_qstar"]
    per["amortization_gap"] = per["elbo_qstar"] - per["elbo_q"]
    return per
