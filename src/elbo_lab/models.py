"""Deep latent-variable models as pure functions of their parameters.

Every model here exposes the same five functions, written for ONE example (vmap them over a batch
and over the K samples):

    sample_q(params, key, x) -> (z, log_q, q_mean)   z ~ q(z | x)
    log_q(params, x, z)      -> scalar
    log_prior(params, z)     -> scalar               log p(z)
    log_lik(params, x, z)    -> scalar               log p(x | z)
    log_joint(params, x, z)  -> scalar               log p(x, z)

`z` is always one flat vector of `latent_dim` numbers (for several stochastic layers, the layers
concatenated bottom-up: [z1, z2, ...]); HMC, AIS and the objectives never need to know the layout.
`q_mean` is, per layer, the mean of q(z_l | z_{l-1}) given the sampled parent: averaging it over
samples estimates E_q[z] with far less noise than averaging z itself (used for active units).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Params = Any
LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_pdf(z: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log N(z; mean, diag(exp(log_std))^2), summed over the last axis."""
    return jnp.sum(-0.5 * jnp.square((z - mean) * jnp.exp(-log_std)) - log_std - 0.5 * LOG_2PI, -1)


def bernoulli_log_pmf(x: jax.Array, logits: jax.Array) -> jax.Array:
    """log Bernoulli(x; sigmoid(logits)), summed over the last axis; stable for any logits."""
    return jnp.sum(x * logits - jax.nn.softplus(logits), -1)


class MLP(nn.Module):
    """tanh hidden layers, then one linear head with `out` outputs (Glorot-uniform, zero bias)."""

    hidden: Sequence[int]
    out: int
    out_bias: np.ndarray | None = None

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        init = nn.initializers.glorot_uniform()
        for width in self.hidden:
            h = jnp.tanh(nn.Dense(width, kernel_init=init)(h))
        bias_init = nn.initializers.zeros
        if self.out_bias is not None:
            bias = jnp.asarray(self.out_bias, jnp.float32)
            bias_init = lambda *_: bias  # noqa: E731
        return nn.Dense(self.out, kernel_init=init, bias_init=bias_init)(h)


class DeepLatentGaussian:
    """The IWAE paper's architecture: L Gaussian stochastic layers, Bernoulli pixels.

    Generative: z_L ~ N(0, I); z_{l-1} | z_l ~ N(mu, exp(s)^2) by an MLP; x | z_1 ~ Bernoulli(MLP).
    Inference: z_1 | x ~ N(mu, exp(s)^2) by an MLP; z_l | z_{l-1} likewise. sigma = exp(linear).

    Args:
      x_dim: number of pixels.
      latent_dims: units per stochastic layer, bottom-up, e.g. (100, 50).
      hidden_dims: hidden widths of the MLP between layer l-1 and l (layer 0 is x), e.g.
        ((200, 200), (100, 100)); the decoder mirrors them.
    """

    def __init__(
        self, x_dim: int, latent_dims: Sequence[int], hidden_dims: Sequence[Sequence[int]]
    ):
        if len(latent_dims) != len(hidden_dims):
            raise ValueError("latent_dims and hidden_dims need one entry per stochastic layer")
        self.x_dim = int(x_dim)
        self.latent_dims = tuple(int(d) for d in latent_dims)
        self.hidden_dims = tuple(tuple(int(w) for w in h) for h in hidden_dims)
        self.latent_dim = sum(self.latent_dims)
        self._offsets = np.cumsum((0,) + self.latent_dims)
        below = (self.x_dim,) + self.latent_dims[:-1]
        self._enc = [MLP(h, 2 * d) for h, d in zip(self.hidden_dims, self.latent_dims, strict=True)]
        # Decoder l maps z_{l+1} to the parameters of layer l below it (x for l = 0).
        self._dec_out = [below[0]] + [2 * d for d in below[1:]]

    def _split(self, z: jax.Array) -> list[jax.Array]:
        return [z[a:b] for a, b in zip(self._offsets[:-1], self._offsets[1:], strict=True)]

    def init(self, key: jax.Array, x_mean: np.ndarray | None = None) -> Params:
        """Parameters; the pixel bias is logit(clip(x_mean)) so training starts at the data mean."""
        bias = None
        if x_mean is not None:
            p = np.clip(np.asarray(x_mean, np.float64), 1e-3, 1 - 1e-3)
            bias = np.log(p) - np.log1p(-p)
        params = {}
        below = (self.x_dim,) + self.latent_dims[:-1]
        for i, d in enumerate(self.latent_dims):
            key, k_enc, k_dec = jax.random.split(key, 3)
            params[f"enc{i}"] = self._enc[i].init(k_enc, jnp.zeros((below[i],)))["params"]
            dec = self._decoder(i, bias)
            params[f"dec{i}"] = dec.init(k_dec, jnp.zeros((d,)))["params"]
        return params

    def _decoder(self, i: int, bias: np.ndarray | None = None) -> MLP:
        return MLP(tuple(reversed(self.hidden_dims[i])), self._dec_out[i], bias if i == 0 else None)

    def _gauss(self, module: MLP, p: Params, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = module.apply({"params": p}, h)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, log_std

    def q_bottom(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) [latent_dims[0]] of q(z1 | x), the only layer that sees x."""
        return self._gauss(self._enc[0], params["enc0"], x)

    def sample_q(self, params: Params, key: jax.Array, x: jax.Array):
        """One z ~ q(z | x). Returns (z [D], log q(z | x) [], q_mean [D])."""
        h, zs, means, log_q = x, [], [], 0.0
        for i, k in enumerate(jax.random.split(key, len(self.latent_dims))):
            mean, log_std = self._gauss(self._enc[i], params[f"enc{i}"], h)
            z = mean + jnp.exp(log_std) * jax.random.normal(k, mean.shape)
            log_q = log_q + gaussian_log_pdf(z, mean, log_std)
            zs.append(z)
            means.append(mean)
            h = z
        return jnp.concatenate(zs), log_q, jnp.concatenate(means)

    def log_q(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        h, total = x, 0.0
        for i, z_i in enumerate(self._split(z)):
            mean, log_std = self._gauss(self._enc[i], params[f"enc{i}"], h)
            total = total + gaussian_log_pdf(z_i, mean, log_std)
            h = z_i
        return total

    def log_prior(self, params: Params, z: jax.Array) -> jax.Array:
        """log p(z) over all stochastic layers: N(0, I) at the top, Gaussian MLPs below it."""
        zs = self._split(z)
        total = gaussian_log_pdf(zs[-1], 0.0, jnp.zeros_like(zs[-1]))
        for i in range(1, len(zs)):
            mean, log_std = self._gauss(self._decoder(i), params[f"dec{i}"], zs[i])
            total = total + gaussian_log_pdf(zs[i - 1], mean, log_std)
        return total

    def log_lik(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        logits = self._decoder(0).apply({"params": params["dec0"]}, z[: self.latent_dims[0]])
        return bernoulli_log_pmf(x, logits)

    def log_joint(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        return self.log_prior(params, z) + self.log_lik(params, x, z)

    def decode_mean(self, params: Params, z: jax.Array) -> jax.Array:
        """Bernoulli means of p(x | z) [x_dim], for pictures of samples and reconstructions."""
        logits = self._decoder(0).apply({"params": params["dec0"]}, z[: self.latent_dims[0]])
        return jax.nn.sigmoid(logits)

    def sample_prior(self, params: Params, key: jax.Array) -> jax.Array:
        """One z ~ p(z) [D], ancestrally from the top layer down."""
        keys = jax.random.split(key, len(self.latent_dims))
        zs = [jax.random.normal(keys[-1], (self.latent_dims[-1],))]
        for i in range(len(self.latent_dims) - 1, 0, -1):
            mean, log_std = self._gauss(self._decoder(i), params[f"dec{i}"], zs[0])
            zs.insert(0, mean + jnp.exp(log_std) * jax.random.normal(keys[i - 1], mean.shape))
        return jnp.concatenate(zs)


class LinearGaussian:
    """p(z) = N(0, I_D), p(x | z) = N(W z + b, sigma^2 I), q(z | x) = N(A x + c, diag(exp(s))^2).

    log p(x) and p(z | x) are exact here, which is what the estimator tests compare against.
    Params: {"W": [X, D], "b": [X], "log_sigma": [], "A": [D, X], "c": [D], "log_s": [D]}.
    """

    def __init__(self, x_dim: int, latent_dim: int):
        self.x_dim, self.latent_dim = int(x_dim), int(latent_dim)

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
