"""The Hamiltonian VAE (Salimans et al. 2015; Caterini et al. 2018): q's sample moved by a
tempered leapfrog flow, trained end to end by the flow's ELBO.

Per sample: z0 ~ q(z | x), a momentum rho0 ~ N(0, I / beta0); then K times: one leapfrog step of
size eps on log p(x, z) (volume preserving), then the momentum shrunk by
alpha_k = sqrt(beta_{k-1} / beta_k), on Caterini et al.'s quadratic schedule
1 / sqrt(beta_k) = (1 - 1 / sqrt(beta0)) k^2 / K^2 + 1 / sqrt(beta0), so beta_K = 1. The flow
is deterministic and invertible, with log |det| = d log prod alpha_k = (d / 2) log beta0, so

    log w = log p(x, z_K) + log N(rho_K; 0, I) - log q(z0 | x) - log N(rho0; 0, I / beta0)
            + (d / 2) log beta0,

an unbiased estimate of a lower bound on log p(x) (the ELBO of the extended space). Gradients
run through the whole flow (the leapfrog steps use grad_z log p(x, z), so the decoder's
gradient includes second derivatives). eps and beta0 are fixed hyper-parameters here (Caterini
et al. also learn them). With K = 0, or beta0 = 1 and an exact integrator, it is the ELBO; it is
not log p(x) at q = p(z | x) (the leapfrog's energy error and the tempering remain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from elbo_lab import hmc
from elbo_lab.bounds import LogWeights, bound_terms
from elbo_lab.distributions import gaussian_log_pdf
from elbo_lab.objectives import REGISTRY, Objective, check_count
from elbo_lab.registry import check


def tempering(num_steps: int, beta0: float) -> np.ndarray:
    """[K + 1] inverse temperatures beta_0 = beta0, ..., beta_K = 1 (quadratic in 1/sqrt)."""
    k = np.arange(num_steps + 1)
    inv_sqrt = (1 - 1 / math.sqrt(beta0)) * k**2 / max(num_steps, 1) ** 2 + 1 / math.sqrt(beta0)
    return 1 / inv_sqrt**2


def flow(params, x, z0, rho0, *, model, step_size: float, beta0: float, num_steps: int):
    """(z_K, rho_K) from (z0, rho0): num_steps leapfrog steps on log p(x, .), each followed by
    the tempering of the momentum."""
    betas = jnp.asarray(tempering(num_steps, beta0), jnp.float32)
    alphas = jnp.sqrt(betas[:-1] / betas[1:])
    value_and_grad = jax.value_and_grad(lambda z: model.log_joint(params, x, z))

    def step(carry, alpha):
        state, rho = hmc.leapfrog(value_and_grad, carry[0], carry[1], step_size, 1)
        return (state, alpha * rho), None

    (end, rho), _ = jax.lax.scan(step, (hmc.init(z0, value_and_grad), rho0), alphas)
    return end.z, rho


def hvae_log_weights(params, key, x, *, model, k: int, step_size, beta0, num_steps) -> LogWeights:
    """k samples of the flow for one example x [X]; log_q holds everything of log w but the
    model's terms (log_w = log_lik + log_prior - log_q), q_mean the mean of q(z0 | x)."""

    def one(key):
        k_q, k_r = jax.random.split(key)
        z0, log_q0, q_mean = model.sample_q(params, k_q, x)
        d = z0.shape[0]
        rho0 = jax.random.normal(k_r, (d,)) / math.sqrt(beta0)
        log_rho0 = gaussian_log_pdf(rho0, 0.0, jnp.full((d,), -0.5 * math.log(beta0)))
        z, rho = flow(
            params, x, z0, rho0, model=model, step_size=step_size, beta0=beta0,
            num_steps=num_steps,
        )  # fmt: skip
        log_rho = gaussian_log_pdf(rho, 0.0, jnp.zeros((d,)))
        log_q = log_q0 + log_rho0 - 0.5 * d * math.log(beta0) - log_rho
        log_lik, log_prior = model.log_lik(params, x, z), model.log_prior(params, z)
        return LogWeights(log_lik + log_prior - log_q, log_lik, log_prior, log_q, q_mean)

    return jax.vmap(one)(jax.random.split(key, k))


@REGISTRY.register("hvae")
@dataclass(frozen=True)
class HVAE:
    """q's sample moved by num_steps leapfrog steps of size step_size on log p(x, z), with the
    momentum tempered from inverse temperature beta0 to 1; the loss is minus the flow's ELBO,
    averaged over k samples, with gradients through the flow."""

    k: int = 1
    num_steps: int = 5
    step_size: float = 0.05
    beta0: float = 0.5
    # its bound is below log p(x) even at q = p(z | x): the generic exactness tests skip it
    exact_at_posterior: ClassVar[bool] = False

    def __post_init__(self):
        check_count(self.k, "k")
        check(self.num_steps >= 0, f"objective.num_steps must be >= 0, got {self.num_steps}")
        check(self.step_size > 0, f"objective.step_size must be positive, got {self.step_size}")
        check(
            0 < self.beta0 <= 1,
            f"objective.beta0 (the momentum's initial inverse temperature) must lie in (0, 1], "
            f"got {self.beta0}",
        )

    def build(self, model) -> Objective:
        settings = dict(
            model=model, k=self.k, step_size=self.step_size, beta0=self.beta0,
            num_steps=self.num_steps,
        )  # fmt: skip

        def loss(params, ostate, key, x):
            keys = jax.random.split(key, x.shape[0])
            lw = jax.vmap(lambda kk, xx: hvae_log_weights(params, kk, xx, **settings))(keys, x)
            terms = jax.vmap(bound_terms)(lw)
            metrics = {name: jnp.mean(v) for name, v in terms.items()}
            loss_value = -metrics["elbo"]
            return loss_value, ({**metrics, "loss": loss_value}, ostate)

        return Objective(init=lambda: (), loss=loss)

    def label(self) -> str:
        return f"HVAE(K={self.num_steps},eps={self.step_size},beta0={self.beta0},k={self.k})"
