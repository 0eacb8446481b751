"""Training objectives: a bound (bounds.py) x a gradient estimator (x an MCMC refinement).

An objective is a pair of pure functions over its own (possibly empty) state, like an optax
transformation:

    init() -> ostate
    loss(params, ostate, key, x) -> (loss, (metrics, new_ostate))   x: [B, X] batch

`metrics` is a flat dict of scalars (batch means) that always holds every term of the bounds, so
the logs explain the loss; the value logged as a bound is the bound, never a surrogate. Entries
of REGISTRY (`objective=<name>`) own their hyper-parameters and bind them when built, so no
config object is ever an argument of a jitted function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from elbo_lab.bounds import bound_terms, log_weights
from elbo_lab.registry import Registry

REGISTRY = Registry("objective")


class Objective(NamedTuple):
    init: Callable[[], Any]
    loss: Callable[..., tuple[jax.Array, tuple[dict[str, jax.Array], Any]]]


def k_sample_objective(bound: str, *, model, k: int) -> Objective:
    """A bound of bound_terms ("elbo" or "iwae") with k samples per example; the loss is minus
    its batch mean, and the metrics hold every term."""

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


def _register_builtins() -> None:
    from elbo_lab.objectives import elbo, hmc, iwae  # noqa: F401


_register_builtins()
