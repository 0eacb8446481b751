"""A new objective with its own hyper-parameter: the beta-VAE bound recon - beta * KL."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from elbo_lab.bounds import bound_terms, log_weights
from elbo_lab.objectives import REGISTRY, Objective
from elbo_lab.registry import check


@REGISTRY.register("beta_vae")
@dataclass(frozen=True)
class BetaVAE:
    beta: float = 1.0
    k: int = 1

    def __post_init__(self):
        check(self.beta >= 0, f"objective.beta must be >= 0, got {self.beta}")
        check(self.k >= 1, f"objective.k must be >= 1, got {self.k}")

    def build(self, model) -> Objective:
        def loss(params, ostate, key, x):
            keys = jax.random.split(key, x.shape[0])
            terms = jax.vmap(
                lambda kk, xx: bound_terms(log_weights(params, kk, xx, model=model, k=self.k))
            )(keys, x)
            metrics = {name: jnp.mean(v) for name, v in terms.items()}
            value = -(metrics["recon"] - self.beta * metrics["kl"])
            return value, ({**metrics, "loss": value}, ostate)

        return Objective(init=lambda: (), loss=loss)

    def label(self) -> str:
        return f"beta-VAE(beta={self.beta})"
