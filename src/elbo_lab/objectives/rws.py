"""Reweighted wake-sleep (Bornschein & Bengio 2015; Le et al. 2019), wake-phi update.

The decoder ascends IWAE-k (its true gradient: the wake-theta update); the encoder does not
ascend a bound: it moves towards the posterior by the self-normalised estimate of
E_p(z|x)[d log q(z | x) / d phi] ("wake-phi": sum_k w~_k d log q(z_k) / d phi at fixed samples),
i.e. it minimises an estimate of KL(p(z | x) || q(z | x)). With estimator=dreg, the same
quantity's doubly reparameterised estimate (Tucker et al. 2019, eq. 9): the path gradient of
log w_k weighted by w~_k - w~_k^2, with the same mean and less variance. The logged bound is IWAE-k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from elbo_lab.bounds import LogWeights, bound_terms, iwae_bound, joint_terms, sample_q
from elbo_lab.objectives import REGISTRY, Objective, check_count
from elbo_lab.objectives.gradients import check_estimator, path_log_weights, softmax_weights


def wake_log_weights(params, key, x, *, model, k: int) -> tuple[LogWeights, jax.Array]:
    """(log weights of k samples with neither z nor log q carrying a gradient, so IWAE of them
    trains the decoder alone; the wake-phi surrogate sum_k w~_k log q(z_k), for the encoder)."""
    z, _, q_mean = sample_q(jax.lax.stop_gradient(params), key, x, model=model, k=k)
    log_lik, log_prior = joint_terms(params, x, z, model=model)
    log_q = jax.vmap(model.log_q, in_axes=(None, None, 0))(params, x, z)
    fixed_q = jax.lax.stop_gradient(log_q)
    lw = LogWeights(log_lik + log_prior - fixed_q, log_lik, log_prior, fixed_q, q_mean)
    return lw, jnp.sum(softmax_weights(lw.log_w) * log_q)


def rws_objective(*, model, k: int, estimator: str) -> Objective:
    """loss = -(IWAE-k + the encoder's surrogate); see the module's docstring."""

    def one(params, key, x):
        if estimator == "wake":
            lw, wake = wake_log_weights(params, key, x, model=model, k=k)
        else:  # dreg: the z-path gradient of sample k scaled from w~_k to w~_k - w~_k^2
            scale = lambda log_w: 1.0 - softmax_weights(log_w)  # noqa: E731
            lw, wake = path_log_weights(params, key, x, model=model, k=k, scale=scale), 0.0
        return iwae_bound(lw.log_w) + wake, bound_terms(lw)

    def loss(params, ostate, key, x):
        keys = jax.random.split(key, x.shape[0])
        surrogate, terms = jax.vmap(one, in_axes=(None, 0, 0))(params, keys, x)
        metrics = {name: jnp.mean(v) for name, v in terms.items()}
        loss_value = -jnp.mean(surrogate)
        return loss_value, ({**metrics, "loss": loss_value}, ostate)

    return Objective(init=lambda: (), loss=loss)


@REGISTRY.register("rws")
@dataclass(frozen=True)
class RWS:
    """Reweighted wake-sleep with k samples: decoder on IWAE-k, encoder by wake-phi
    (estimator=wake) or its doubly reparameterised form (estimator=dreg)."""

    k: int = 5
    estimator: str = "wake"
    estimators: ClassVar[tuple[str, ...]] = ("wake", "dreg")

    def __post_init__(self):
        check_count(self.k, "k")
        check_estimator(self)

    def build(self, model) -> Objective:
        return rws_objective(model=model, k=self.k, estimator=self.estimator)

    def label(self) -> str:
        return f"RWS(k={self.k}{'' if self.estimator == 'wake' else ', dreg'})"
