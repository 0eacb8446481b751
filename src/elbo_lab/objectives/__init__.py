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

from elbo_lab.bounds import bound_terms
from elbo_lab.objectives.gradients import estimated_log_weights
from elbo_lab.registry import Registry, check

REGISTRY = Registry("objective")


class Objective(NamedTuple):
    init: Callable[[], Any]
    loss: Callable[..., tuple[jax.Array, tuple[dict[str, jax.Array], Any]]]


def bound_objective(name: str, bound: Callable, *, model, k: int, estimator: str) -> Objective:
    """Maximise `bound` (bounds.py: log weights [k] of one example -> scalar) with k samples per
    example and the encoder gradient of `estimator` (gradients.py). The loss is minus the batch
    mean of the bound; the metrics hold it under `name` beside every term of bound_terms."""

    def one(params, key, x):
        lw = estimated_log_weights(
            params, key, x, model=model, k=k, estimator=estimator, bound=bound
        )
        return bound(lw.log_w), bound_terms(lw)

    def loss(params, ostate, key, x):
        keys = jax.random.split(key, x.shape[0])
        values, terms = jax.vmap(one, in_axes=(None, 0, 0))(params, keys, x)
        metrics = {term: jnp.mean(v) for term, v in terms.items()}
        loss_value = -jnp.mean(values)
        return loss_value, ({**metrics, name: -loss_value, "loss": loss_value}, ostate)

    return Objective(init=lambda: (), loss=loss)


def gradient_fn(objective: Objective) -> Callable:
    """fn(params, key, ostate, x) -> the objective's gradient in params on one minibatch x
    (what the trainer's update applies; diagnostics.gradient_snr takes it)."""

    def grad(params, key, ostate, x):
        return jax.grad(lambda p: objective.loss(p, ostate, key, x)[0])(params)

    return grad


def check_count(value: int, field: str, what: str = "samples") -> None:
    """A ConfigError unless `value` (objective.<field>) is a positive integer."""
    check(value >= 1, f"objective.{field} must be a positive number of {what}, got {value}")


def _register_builtins() -> None:
    from elbo_lab.objectives import (  # noqa: F401
        ciwae,
        elbo,
        hmc,
        hvae,
        iwae,
        miwae,
        piwae,
        renyi,
        rws,
    )


_register_builtins()
