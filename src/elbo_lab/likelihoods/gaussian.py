"""A diagonal Gaussian p(x | z) = N(decoder(z), sigma^2) for continuous data."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from elbo_lab.distributions import gaussian_log_pdf
from elbo_lab.errors import DataError
from elbo_lab.likelihoods import REGISTRY
from elbo_lab.registry import check

STDS = ("shared", "per_pixel", "fixed")


class GaussianLikelihood:
    """The decoder outputs the mean; log sigma is a parameter: one shared scalar ("shared"), one
    per pixel ("per_pixel"), or the constant log(init_std) ("fixed")."""

    def __init__(self, std: str, init_std: float):
        self.std, self.log_init = std, float(np.log(init_std))

    def num_outputs(self, x_dim: int) -> int:
        return x_dim

    def init(self, x_mean):
        bias = None if x_mean is None else np.asarray(x_mean, np.float64)
        if self.std == "fixed":
            return {}, bias
        shape = () if self.std == "shared" else np.shape(x_mean)
        return {"log_std": jnp.full(shape, self.log_init, jnp.float32)}, bias

    def _log_std(self, lparams, out):
        log_std = lparams["log_std"] if self.std != "fixed" else jnp.asarray(self.log_init)
        return jnp.broadcast_to(log_std, out.shape)

    def log_prob(self, lparams, out, x):
        return gaussian_log_pdf(x, out, self._log_std(lparams, out))

    def sample(self, lparams, out, key):
        return out + jnp.exp(self._log_std(lparams, out)) * jax.random.normal(key, out.shape)

    def mean(self, lparams, out):
        return out

    def check_data(self, x: np.ndarray, what: str) -> None:
        if not np.isfinite(x).all():
            raise DataError(f"{what} has non-finite values (NaN or inf): clean the data first")


@REGISTRY.register("gaussian")
@dataclass(frozen=True)
class Gaussian:
    """N(mean(z), sigma^2) per pixel, sigma learned (shared or per pixel) or fixed."""

    std: str = "shared"  # shared | per_pixel | fixed
    init_std: float = 1.0

    def __post_init__(self):
        check(
            self.std in STDS, f"likelihood.std must be one of {', '.join(STDS)}, got {self.std!r}"
        )
        check(self.init_std > 0, f"likelihood.init_std must be positive, got {self.init_std}")

    def build(self) -> GaussianLikelihood:
        return GaussianLikelihood(self.std, self.init_std)

    def label(self) -> str:
        return f"Gaussian({self.std})"
