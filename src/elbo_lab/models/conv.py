"""A convolutional encoder/decoder for images (one Gaussian stochastic layer).

Encoder: two stride-2 4x4 convolutions (`channels`), a dense layer of `hidden` units, then the
Gaussian's mean and log std. Decoder: the mirror image (dense, two stride-2 transposed
convolutions) and a per-pixel output bias. ReLU everywhere. Needs image data whose height and
width are multiples of 4 (28x28 MNIST and Omniglot; any channels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from elbo_lab.distributions import gaussian_log_pdf
from elbo_lab.likelihoods import Likelihood
from elbo_lab.models import REGISTRY, Params
from elbo_lab.registry import check


class Encoder(nn.Module):
    channels: tuple[int, int]
    hidden: int
    latent: int

    @nn.compact
    def __call__(self, img: jax.Array) -> jax.Array:  # [H, W, C] -> [2 * latent]
        h = img[None]
        for c in self.channels:
            h = nn.relu(nn.Conv(c, (4, 4), strides=(2, 2), padding="SAME")(h))
        h = nn.relu(nn.Dense(self.hidden)(h.reshape(-1)))
        return nn.Dense(2 * self.latent)(h)


class Decoder(nn.Module):
    channels: tuple[int, int]
    hidden: int
    out_shape: tuple[int, int, int]  # (H, W, outputs per pixel)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:  # [latent] -> [H * W * outputs]
        height, width, out = self.out_shape
        h = nn.relu(nn.Dense(self.hidden)(z))
        h = nn.relu(nn.Dense(height // 4 * width // 4 * self.channels[1])(h))
        h = h.reshape(1, height // 4, width // 4, self.channels[1])
        h = nn.relu(nn.ConvTranspose(self.channels[0], (4, 4), strides=(2, 2), padding="SAME")(h))
        h = nn.ConvTranspose(out, (4, 4), strides=(2, 2), padding="SAME")(h)
        bias = self.param("pixel_bias", nn.initializers.zeros, (height * width * out,))
        return h.reshape(-1) + bias


class ConvVAE:
    """One Gaussian latent layer of `latent_dim` units; x is an image [H, W, C] flattened."""

    def __init__(self, event_shape, latent_dim, channels, hidden, likelihood: Likelihood):
        self.event_shape = tuple(event_shape)
        self.x_dim = math.prod(self.event_shape)
        self.latent_dim = int(latent_dim)
        self.latent_dims = (self.latent_dim,)
        self.encoder_keys = ("enc",)
        self.likelihood = likelihood
        height, width, _ = self.event_shape
        per_pixel = likelihood.num_outputs(self.x_dim) // (height * width)
        self._enc = Encoder(tuple(channels), hidden, self.latent_dim)
        self._dec = Decoder(tuple(channels), hidden, (height, width, per_pixel))

    def init(self, key: jax.Array, x_mean: np.ndarray | None = None) -> Params:
        lik_params, bias = self.likelihood.init(x_mean)
        k_enc, k_dec = jax.random.split(key)
        params = {
            "enc": self._enc.init(k_enc, jnp.zeros(self.event_shape))["params"],
            "dec": self._dec.init(k_dec, jnp.zeros((self.latent_dim,)))["params"],
        }
        if bias is not None:
            params["dec"]["pixel_bias"] = jnp.asarray(bias, jnp.float32).reshape(-1)
        if lik_params:
            params["lik"] = lik_params
        return params

    def q_bottom(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = self._enc.apply({"params": params["enc"]}, x.reshape(self.event_shape))
        mean, log_std = jnp.split(out, 2)
        return mean, log_std

    def sample_q(self, params: Params, key: jax.Array, x: jax.Array):
        mean, log_std = self.q_bottom(params, x)
        z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return z, gaussian_log_pdf(z, mean, log_std), mean

    def log_q(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        mean, log_std = self.q_bottom(params, x)
        return gaussian_log_pdf(z, mean, log_std)

    def log_prior(self, params: Params, z: jax.Array) -> jax.Array:
        return gaussian_log_pdf(z, 0.0, jnp.zeros_like(z))

    def _out(self, params: Params, z: jax.Array) -> jax.Array:
        return self._dec.apply({"params": params["dec"]}, z)

    def log_lik(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        return self.likelihood.log_prob(params.get("lik", {}), self._out(params, z), x)

    def log_joint(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        return self.log_prior(params, z) + self.log_lik(params, x, z)

    def sample_prior(self, params: Params, key: jax.Array) -> jax.Array:
        return jax.random.normal(key, (self.latent_dim,))

    def mean_x(self, params: Params, z: jax.Array) -> jax.Array:
        return self.likelihood.mean(params.get("lik", {}), self._out(params, z))

    def sample_x(self, params: Params, key: jax.Array, z: jax.Array) -> jax.Array:
        return self.likelihood.sample(params.get("lik", {}), self._out(params, z), key)


@REGISTRY.register("conv")
@dataclass(frozen=True)
class ConvModel:
    """Convolutional encoder and decoder for images with height and width divisible by 4."""

    latent_dim: int = 50
    channels: list[int] = (32, 64)
    hidden: int = 256

    def __post_init__(self):
        check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        check(
            len(self.channels) == 2 and min(self.channels) >= 1,
            f"model.channels must be two positive widths, got {list(self.channels)}",
        )
        check(self.hidden >= 1, f"model.hidden must be >= 1, got {self.hidden}")

    def build(self, event_shape: tuple[int, ...], likelihood) -> ConvVAE:
        check(
            len(event_shape) == 3 and event_shape[0] % 4 == 0 and event_shape[1] % 4 == 0,
            f"model=conv needs images of shape (height, width, channels) with height and width "
            f"multiples of 4; this data's examples have shape {tuple(event_shape)}",
        )
        return ConvVAE(event_shape, self.latent_dim, self.channels, self.hidden, likelihood.build())

    def label(self) -> str:
        return f"conv({self.channels[0]},{self.channels[1]};{self.hidden}-{self.latent_dim})"
