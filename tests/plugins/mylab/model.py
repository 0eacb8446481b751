"""A new model: a linear encoder and a linear decoder into any likelihood."""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from elbo_lab.distributions import gaussian_log_pdf
from elbo_lab.models import REGISTRY


class LinearVAE:
    def __init__(self, x_dim, latent_dim, likelihood):
        self.x_dim, self.latent_dim, self.latent_dims = x_dim, latent_dim, (latent_dim,)
        self.encoder_keys = ("enc",)
        self.likelihood = likelihood

    def init(self, key, x_mean=None):
        lik, bias = self.likelihood.init(x_mean)
        k1, k2 = jax.random.split(key)
        out = self.likelihood.num_outputs(self.x_dim)
        return {
            "enc": 0.01 * jax.random.normal(k1, (2 * self.latent_dim, self.x_dim)),
            "dec": 0.01 * jax.random.normal(k2, (out, self.latent_dim)),
            "bias": jnp.zeros(out) if bias is None else jnp.asarray(bias, jnp.float32),
            "lik": lik,
        }

    def q_bottom(self, params, x):
        mean, log_std = jnp.split(params["enc"] @ x, 2)
        return mean, log_std

    def sample_q(self, params, key, x):
        mean, log_std = self.q_bottom(params, x)
        z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        return z, gaussian_log_pdf(z, mean, log_std), mean

    def log_q(self, params, x, z):
        return gaussian_log_pdf(z, *self.q_bottom(params, x))

    def log_prior(self, params, z):
        return gaussian_log_pdf(z, 0.0, jnp.zeros_like(z))

    def _out(self, params, z):
        return params["dec"] @ z + params["bias"]

    def log_lik(self, params, x, z):
        return self.likelihood.log_prob(params["lik"], self._out(params, z), x)

    def log_joint(self, params, x, z):
        return self.log_prior(params, z) + self.log_lik(params, x, z)

    def sample_prior(self, params, key):
        return jax.random.normal(key, (self.latent_dim,))

    def mean_x(self, params, z):
        return self.likelihood.mean(params["lik"], self._out(params, z))

    def sample_x(self, params, key, z):
        return self.likelihood.sample(params["lik"], self._out(params, z), key)


@REGISTRY.register("linear_vae")
@dataclass(frozen=True)
class LinearVAEModel:
    latent_dim: int = 4

    def build(self, event_shape, likelihood):
        return LinearVAE(int(np.prod(event_shape)), self.latent_dim, likelihood.build())

    def label(self) -> str:
        return f"linear_vae({self.latent_dim})"
