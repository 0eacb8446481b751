"""PIWAE (Rainforth et al. 2018): the decoder trained on IWAE with m * k samples, the encoder on
MIWAE(m, k) of the same samples (the encoder's SNR falls with k, the decoder's rises with m k)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp

from elbo_lab.bounds import bound_terms, iwae_bound, log_weights, miwae_bound
from elbo_lab.objectives import REGISTRY, Objective
from elbo_lab.objectives.elbo import estimator_suffix
from elbo_lab.objectives.gradients import DecoderOnly, EncoderOnly, estimated_log_weights
from elbo_lab.objectives.iwae import IWAE
from elbo_lab.objectives.miwae import MIWAE


def piwae_objective(*, model, m: int, k: int, estimator: str) -> Objective:
    """loss = -(IWAE-mk for the decoder + MIWAE(m, k) for the encoder), each term reaching only
    its own half of the parameters (two passes over the same samples: same key). The metrics hold
    both bounds ("iwae" over all m k samples, "miwae") and the terms of bound_terms."""
    miwae = partial(miwae_bound, m=m)
    decoder, encoder = DecoderOnly(model), EncoderOnly(model)

    def one(params, key, x):
        dec = log_weights(params, key, x, model=decoder, k=m * k)
        enc = estimated_log_weights(
            params, key, x, model=encoder, k=m * k, estimator=estimator, bound=miwae
        )
        return iwae_bound(dec.log_w), miwae(enc.log_w), bound_terms(dec)

    def loss(params, ostate, key, x):
        keys = jax.random.split(key, x.shape[0])
        iwae, miwae_value, terms = jax.vmap(one, in_axes=(None, 0, 0))(params, keys, x)
        metrics = {name: jnp.mean(v) for name, v in terms.items()}
        loss_value = -jnp.mean(iwae) - jnp.mean(miwae_value)
        metrics.update(miwae=jnp.mean(miwae_value), loss=loss_value)
        return loss_value, (metrics, ostate)

    return Objective(init=lambda: (), loss=loss)


@REGISTRY.register("piwae")
@dataclass(frozen=True)
class PIWAE(MIWAE):
    """Decoder: IWAE with m * k samples; encoder: MIWAE(m, k) on the same samples, its gradient
    formed by `estimator` (reparam | stl | dreg). Fields and checks as MIWAE's."""

    def build(self, model) -> Objective:
        return piwae_objective(model=model, m=self.m, k=self.k, estimator=self.estimator)

    def same_as(self):
        """m = 1: both halves train on IWAE-k, i.e. it is IWAE-k."""
        return IWAE(k=self.k, estimator=self.estimator).same_as() if self.m == 1 else self

    def label(self) -> str:
        return f"PIWAE(m={self.m}, k={self.k}{estimator_suffix(self.estimator)})"
