"""Deep latent-variable models as pure functions of their parameters: the contract and registry.

A model entry (`model=mlp | conv | linear_gaussian`, presets such as `model=burda_1l` in
configs/model/) builds an object satisfying `Model`. Its functions are written for ONE example
(vmap them over a batch and over the K samples). `z` is always one flat vector of `latent_dim`
numbers (for several stochastic layers, the layers concatenated bottom-up: [z1, z2, ...], with
`latent_dims` their sizes); HMC, AIS and the objectives never need to know the layout. `x` is one
flat example of `x_dim` numbers (an image is flattened row-major, channels last).
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import numpy as np

from elbo_lab.registry import Registry

REGISTRY = Registry("model")
Params = Any


class Model(Protocol):
    """Every member the rest of the code uses."""

    x_dim: int
    latent_dim: int
    latent_dims: tuple[int, ...]  # sizes of the stochastic layers, bottom-up (sum: latent_dim)
    # Top-level keys of the params dict that q's functions read (the encoder's); every other key
    # is p's (the decoder's and the likelihood's). The gradient diagnostics split by them.
    encoder_keys: tuple[str, ...]

    def init(self, key: jax.Array, x_mean: np.ndarray | None = None) -> Params:
        """Parameters; `x_mean` [x_dim] (the training data's mean) may set the output bias."""

    def sample_q(self, params: Params, key: jax.Array, x: jax.Array):
        """One z ~ q(z | x): (z [D], log q(z | x) [], q_mean [D]); q_mean is, per layer, the
        mean of q(z_l | z_{l-1}) given the sampled parent (a low-noise estimate of E_q[z])."""

    def log_q(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array: ...

    def q_bottom(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) [latent_dims[0]] of the one Gaussian layer of q that sees x."""

    def log_prior(self, params: Params, z: jax.Array) -> jax.Array: ...

    def log_lik(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array: ...

    def log_joint(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array: ...

    def sample_prior(self, params: Params, key: jax.Array) -> jax.Array:
        """One z ~ p(z) [D]."""

    def sample_x(self, params: Params, key: jax.Array, z: jax.Array) -> jax.Array:
        """One x ~ p(x | z) [x_dim] (BDMC's simulated data)."""

    def mean_x(self, params: Params, z: jax.Array) -> jax.Array:
        """E[x | z] [x_dim] (pictures of samples and reconstructions)."""


def _register_builtins() -> None:
    from elbo_lab.models import conv, linear_gaussian, mlp  # noqa: F401


_register_builtins()
