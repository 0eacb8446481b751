"""The IWAE paper's architecture: L Gaussian stochastic layers joined by tanh MLPs (any widths).

Generative: z_L ~ N(0, I); z_{l-1} | z_l ~ N(mu, exp(s)^2) by an MLP; x | z_1 ~ the likelihood of
the decoder's output. Inference: z_1 | x ~ N(mu, exp(s)^2) by an MLP; z_l | z_{l-1} likewise.
Presets: `model=burda_1l` (784-200-200-50) and `model=burda_2l` (x-200-200-100-100-100-50).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from elbo_lab.distributions import gaussian_log_pdf
from elbo_lab.likelihoods import Likelihood
from elbo_lab.models import REGISTRY, Params
from elbo_lab.registry import check

# Burda et al. (2015)'s two architectures, by (latent_dims, hidden_dims): labels for tables.
PAPER_ARCHITECTURES = {
    ((50,), ((200, 200),)): "burda_1l",
    ((100, 50), ((200, 200), (100, 100))): "burda_2l",
}


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


def gaussian_head(module: nn.Module, p: Params, h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, log_std) from a module whose output is [mean, log_std] concatenated."""
    mean, log_std = jnp.split(module.apply({"params": p}, h), 2, axis=-1)
    return mean, log_std


class DeepLatentGaussian:
    """L Gaussian stochastic layers, bottom-up sizes `latent_dims`; `hidden_dims[l]` are the
    hidden widths of the MLP between layer l-1 and l (layer 0 is x); the decoder mirrors them.
    Params: {"enc<l>", "dec<l>"} (flax param dicts) and, if the likelihood has parameters of its
    own, "lik"."""

    def __init__(
        self,
        x_dim: int,
        latent_dims: Sequence[int],
        hidden_dims: Sequence[Sequence[int]],
        likelihood: Likelihood,
    ):
        if len(latent_dims) != len(hidden_dims):
            raise ValueError("latent_dims and hidden_dims need one entry per stochastic layer")
        self.x_dim = int(x_dim)
        self.latent_dims = tuple(int(d) for d in latent_dims)
        self.hidden_dims = tuple(tuple(int(w) for w in h) for h in hidden_dims)
        self.latent_dim = sum(self.latent_dims)
        self.encoder_keys = tuple(f"enc{i}" for i in range(len(self.latent_dims)))
        self.likelihood = likelihood
        self._offsets = np.cumsum((0,) + self.latent_dims)
        below = (self.x_dim,) + self.latent_dims[:-1]
        self._enc = [MLP(h, 2 * d) for h, d in zip(self.hidden_dims, self.latent_dims, strict=True)]
        # Decoder l maps z_{l+1} to the parameters of layer l below it (x for l = 0).
        self._dec_out = [likelihood.num_outputs(below[0])] + [2 * d for d in below[1:]]

    def _split(self, z: jax.Array) -> list[jax.Array]:
        return [z[a:b] for a, b in zip(self._offsets[:-1], self._offsets[1:], strict=True)]

    def init(self, key: jax.Array, x_mean: np.ndarray | None = None) -> Params:
        lik_params, bias = self.likelihood.init(x_mean)
        params = {}
        below = (self.x_dim,) + self.latent_dims[:-1]
        for i, d in enumerate(self.latent_dims):
            key, k_enc, k_dec = jax.random.split(key, 3)
            params[f"enc{i}"] = self._enc[i].init(k_enc, jnp.zeros((below[i],)))["params"]
            dec = self._decoder(i, bias)
            params[f"dec{i}"] = dec.init(k_dec, jnp.zeros((d,)))["params"]
        if lik_params:
            params["lik"] = lik_params
        return params

    def _decoder(self, i: int, bias: np.ndarray | None = None) -> MLP:
        return MLP(tuple(reversed(self.hidden_dims[i])), self._dec_out[i], bias if i == 0 else None)

    def q_bottom(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return gaussian_head(self._enc[0], params["enc0"], x)

    def sample_q(self, params: Params, key: jax.Array, x: jax.Array):
        h, zs, means, log_q = x, [], [], 0.0
        for i, k in enumerate(jax.random.split(key, len(self.latent_dims))):
            mean, log_std = gaussian_head(self._enc[i], params[f"enc{i}"], h)
            z = mean + jnp.exp(log_std) * jax.random.normal(k, mean.shape)
            log_q = log_q + gaussian_log_pdf(z, mean, log_std)
            zs.append(z)
            means.append(mean)
            h = z
        return jnp.concatenate(zs), log_q, jnp.concatenate(means)

    def log_q(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        h, total = x, 0.0
        for i, z_i in enumerate(self._split(z)):
            mean, log_std = gaussian_head(self._enc[i], params[f"enc{i}"], h)
            total = total + gaussian_log_pdf(z_i, mean, log_std)
            h = z_i
        return total

    def log_prior(self, params: Params, z: jax.Array) -> jax.Array:
        """log p(z) over all stochastic layers: N(0, I) at the top, Gaussian MLPs below it."""
        zs = self._split(z)
        total = gaussian_log_pdf(zs[-1], 0.0, jnp.zeros_like(zs[-1]))
        for i in range(1, len(zs)):
            mean, log_std = gaussian_head(self._decoder(i), params[f"dec{i}"], zs[i])
            total = total + gaussian_log_pdf(zs[i - 1], mean, log_std)
        return total

    def _out(self, params: Params, z: jax.Array) -> jax.Array:
        return self._decoder(0).apply({"params": params["dec0"]}, z[: self.latent_dims[0]])

    def log_lik(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        return self.likelihood.log_prob(params.get("lik", {}), self._out(params, z), x)

    def log_joint(self, params: Params, x: jax.Array, z: jax.Array) -> jax.Array:
        return self.log_prior(params, z) + self.log_lik(params, x, z)

    def mean_x(self, params: Params, z: jax.Array) -> jax.Array:
        return self.likelihood.mean(params.get("lik", {}), self._out(params, z))

    def sample_x(self, params: Params, key: jax.Array, z: jax.Array) -> jax.Array:
        return self.likelihood.sample(params.get("lik", {}), self._out(params, z), key)

    def sample_prior(self, params: Params, key: jax.Array) -> jax.Array:
        """One z ~ p(z) [D], ancestrally from the top layer down."""
        keys = jax.random.split(key, len(self.latent_dims))
        zs = [jax.random.normal(keys[-1], (self.latent_dims[-1],))]
        for i in range(len(self.latent_dims) - 1, 0, -1):
            mean, log_std = gaussian_head(self._decoder(i), params[f"dec{i}"], zs[0])
            zs.insert(0, mean + jnp.exp(log_std) * jax.random.normal(keys[i - 1], mean.shape))
        return jnp.concatenate(zs)


@REGISTRY.register("mlp")
@dataclass(frozen=True)
class MLPModel:
    """Gaussian stochastic layers joined by tanh MLPs (Burda et al. 2015's family)."""

    latent_dims: list[int] = (50,)  # tuple defaults: frozen entries stay hashable
    hidden_dims: list[list[int]] = ((200, 200),)

    def __post_init__(self):
        check(
            len(self.latent_dims) >= 1 and len(self.latent_dims) == len(self.hidden_dims),
            "model.latent_dims and model.hidden_dims need one entry per stochastic layer, got "
            f"{list(self.latent_dims)} and {[list(h) for h in self.hidden_dims]}",
        )
        check(
            all(w >= 1 for w in self.latent_dims)
            and all(w >= 1 for h in self.hidden_dims for w in h),
            "model layer widths must be positive, got model.latent_dims="
            f"{list(self.latent_dims)} and model.hidden_dims={[list(h) for h in self.hidden_dims]}",
        )

    def build(self, event_shape: tuple[int, ...], likelihood) -> DeepLatentGaussian:
        x_dim = int(np.prod(event_shape))
        return DeepLatentGaussian(x_dim, self.latent_dims, self.hidden_dims, likelihood.build())

    def label(self) -> str:
        key = (tuple(self.latent_dims), tuple(tuple(h) for h in self.hidden_dims))
        if key in PAPER_ARCHITECTURES:
            return PAPER_ARCHITECTURES[key]
        layers = ";".join(
            f"{'x'.join(map(str, h))}-{d}"
            for h, d in zip(self.hidden_dims, self.latent_dims, strict=True)
        )
        return f"mlp({layers})"
