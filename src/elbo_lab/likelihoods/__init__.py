"""Likelihoods p(x | z): how a decoder's output becomes a distribution over the data.

A likelihood entry (`likelihood=bernoulli | gaussian`) builds a `Likelihood`; models hand it the
decoder's raw output for one example and never ask which one it is. It supplies:

    num_outputs(x_dim)            size of the decoder's output layer for x [x_dim]
    init(x_mean)                  its own parameters (a dict, {} if none) and the output bias
    log_prob(lparams, out, x)     log p(x | z), summed over the pixels
    sample(lparams, out, key)     x ~ p(x | z)
    mean(lparams, out)            E[x | z] (pictures of samples and reconstructions)
    check_data(x, what)           a DataError if x cannot be data of this likelihood
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import numpy as np

from elbo_lab.registry import Registry

REGISTRY = Registry("likelihood")


class Likelihood(Protocol):
    def num_outputs(self, x_dim: int) -> int: ...
    def init(self, x_mean: np.ndarray | None) -> tuple[dict[str, Any], np.ndarray | None]: ...
    def log_prob(self, lparams, out: jax.Array, x: jax.Array) -> jax.Array: ...
    def sample(self, lparams, out: jax.Array, key: jax.Array) -> jax.Array: ...
    def mean(self, lparams, out: jax.Array) -> jax.Array: ...
    def check_data(self, x: np.ndarray, what: str) -> None: ...


def _register_builtins() -> None:
    from elbo_lab.likelihoods import bernoulli, gaussian  # noqa: F401


_register_builtins()
