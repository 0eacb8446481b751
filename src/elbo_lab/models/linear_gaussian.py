"""The exact linear-Gaussian model: log p(x), p(z | x) and their gradients in closed form.

Selectable from the CLI (`model=linear_gaussian likelihood=gaussian data=npz ...`) so any
estimator or objective can be checked against the exact log p(x) on a user's own data; the
estimator tests use it for the same reason. Its p(x | z) is Gaussian by definition (its own
`log_sigma` parameter), so it runs only with `likelihood=gaussian`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from elbo_lab.distributions import LOG_2PI, gaussian_log_pdf
from elbo_lab.models import REGISTRY, Params
from elbo_lab.registry import check


class LinearGaussian:
    """p(z) = N(0, I_D), p(x | z) = N(W z + b, sigma^2 I), q(z | x) = N(A x + c, diag(exp(s))^2).

    log p(x) and p(z | x) are exact here, which is what the estimator tests compare against.
    Params: {"W": [X, D], "b": [X], "log_sigma": [], "A": [D, X], "c": [D], "log_s": [D]}.
    """

    def __init__(self, x_dim: int, latent_dim: int):
        self.x_dim, self.latent_dim = int(x_dim), int(latent_dim)
        self.latent_dims = (self.latent_dim,)
        self.encoder_keys = ("A", "c", "log_s")

    def init(self, key: jax.Array, x_mean: np.ndarray | None = None) -> Params:
        kw, ka = jax.random.split(key)
        return {
            "W": jax.random.normal(kw, (self.x_dim, self.latent_dim)) / math.sqrt(self.latent_dim),
            "b": jnp.zeros(self.x_dim) if x_mean is None else jnp.asarray(x_mean, jnp.float32),
            "log_sigma": jnp.asarray(0.0),
            "A": 0.1 * jax.random.normal(ka, (self.latent_dim, self.x_dim)),
            "c": jnp.zeros(self.latent_dim),
            "log_s": jnp.zeros(self.latent_dim),
        }

    def q_bottom(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) [D] of q(z | x)."""
        return params["A"] @ x + params["c"], params["log_s"]

    def sample_q(self, params: Params, key: jax.Array, x: jax.Array):
        mean = params["A"] @ x + params["c"]
        z = mean + jnp.exp(params["log_s"]) * jax.random.normal(key, mean.shape)
        return z, gaussian_log_pdf(z, mean, params["log_s"]), mean

    def log_q(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        return gaussian_log_pdf(z, params["A"] @ x + params["c"], params["log_s"])

    def log_prior(self, params: Params, z: jax.Array) -> jax.Array:
        return gaussian_log_pdf(z, 0.0, jnp.zeros_like(z))

    def log_lik(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        mean = params["W"] @ z + params["b"]
        return gaussian_log_pdf(x, mean, jnp.broadcast_to(params["log_sigma"], x.shape))

    def log_joint(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        return self.log_prior(params, z) + self.log_lik(params, x, z)

    def sample_prior(self, params: Params, key: jax.Array) -> jax.Array:
        return jax.random.normal(key, (self.latent_dim,))

    def mean_x(self, params: Params, z: jax.Array) -> jax.Array:
        return params["W"] @ z + params["b"]

    def sample_x(self, params: Params, key: jax.Array, z: jax.Array) -> jax.Array:
        noise = jnp.exp(params["log_sigma"]) * jax.random.normal(key, (self.x_dim,))
        return self.mean_x(params, z) + noise

    # Closed forms (float64 numpy, for tests and for checking estimators).
    def exact_log_marginal(self, params: Params, x: np.ndarray) -> np.ndarray:
        """log p(x) = log N(x; b, W W^T + sigma^2 I); x [..., X] -> [...]."""
        W, b = np.asarray(params["W"], np.float64), np.asarray(params["b"], np.float64)
        cov = W @ W.T + np.exp(2.0 * float(params["log_sigma"])) * np.eye(self.x_dim)
        chol = np.linalg.cholesky(cov)
        r = np.linalg.solve(chol, (np.asarray(x, np.float64) - b)[..., None])[..., 0]
        logdet = 2.0 * np.sum(np.log(np.diag(chol)))
        return -0.5 * (np.sum(r * r, -1) + logdet + self.x_dim * LOG_2PI)

    def exact_posterior(self, params: Params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """p(z | x) = N(m, S): returns (m [..., D], S [D, D]); S does not depend on x."""
        W, b = np.asarray(params["W"], np.float64), np.asarray(params["b"], np.float64)
        prec_lik = np.exp(-2.0 * float(params["log_sigma"]))
        S = np.linalg.inv(np.eye(self.latent_dim) + prec_lik * W.T @ W)
        m = prec_lik * (np.asarray(x, np.float64) - b) @ W @ S
        return m, S

    def exact_posterior_q_params(self, params: Params) -> Params:
        """Params whose q(z | x) is the exact posterior (possible when S is diagonal, i.e. W has
        orthogonal columns); raises if it is not, since a diagonal q could not be exact then."""
        W = np.asarray(params["W"], np.float64)
        prec_lik = np.exp(-2.0 * float(params["log_sigma"]))
        _, S = self.exact_posterior(params, np.zeros(self.x_dim))
        if not np.allclose(S, np.diag(np.diag(S)), atol=1e-5):
            raise ValueError("the exact posterior is not diagonal: W's columns must be orthogonal")
        A = prec_lik * S @ W.T
        c = -A @ np.asarray(params["b"], np.float64)
        log_s = 0.5 * np.log(np.diag(S))
        return {
            **params,
            "A": jnp.asarray(A, jnp.float32),
            "c": jnp.asarray(c, jnp.float32),
            "log_s": jnp.asarray(log_s, jnp.float32),
        }


@REGISTRY.register("linear_gaussian")
@dataclass(frozen=True)
class LinearGaussianModel:
    """p(z) = N(0, I), p(x | z) = N(W z + b, sigma^2 I), q(z | x) = N(A x + c, diag(s^2))."""

    latent_dim: int = 10

    def __post_init__(self):
        check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")

    def build(self, event_shape: tuple[int, ...], likelihood) -> LinearGaussian:
        check(
            type(likelihood).registry_name == "gaussian",
            "model=linear_gaussian has its own Gaussian p(x | z) = N(Wz + b, sigma^2 I) (that is "
            f"what makes log p(x) exact): run it with likelihood=gaussian, not "
            f"likelihood={type(likelihood).registry_name}",
        )
        return LinearGaussian(int(np.prod(event_shape)), self.latent_dim)

    def label(self) -> str:
        return f"linear_gaussian({self.latent_dim})"
