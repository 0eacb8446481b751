"""Bernoulli pixels with logits from the decoder (the IWAE paper's likelihood)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from elbo_lab.distributions import bernoulli_log_pmf
from elbo_lab.errors import DataError
from elbo_lab.likelihoods import REGISTRY

MEAN_CLIP = 1e-3  # the output bias starts at logit(clip(data mean, 1e-3, 1 - 1e-3))


class BernoulliLikelihood:
    def num_outputs(self, x_dim: int) -> int:
        return x_dim

    def init(self, x_mean):
        """No parameters of its own; the output bias is the logit of the clipped data mean, so
        training starts at the data mean."""
        if x_mean is None:
            return {}, None
        p = np.clip(np.asarray(x_mean, np.float64), MEAN_CLIP, 1 - MEAN_CLIP)
        return {}, np.log(p) - np.log1p(-p)

    def log_prob(self, lparams, out, x):
        return bernoulli_log_pmf(x, out)

    def sample(self, lparams, out, key):
        return jax.random.bernoulli(key, jax.nn.sigmoid(out)).astype(jnp.float32)

    def mean(self, lparams, out):
        return jax.nn.sigmoid(out)

    def check_data(self, x: np.ndarray, what: str) -> None:
        binary = (x == 0) | (x == 1)
        if not binary.all():  # also catches NaN
            bad = x[~binary]
            lo, hi = float(np.min(bad)), float(np.max(bad))
            raise DataError(
                f"{what} has values other than 0 and 1 (e.g. in [{lo:g}, {hi:g}]); the Bernoulli "
                "likelihood needs binary data: for values in [0, 1], binarize them with "
                "data.binarize=dynamic (afresh every minibatch) or data.binarize=once; for other "
                "continuous data use likelihood=gaussian"
            )


@REGISTRY.register("bernoulli")
@dataclass(frozen=True)
class Bernoulli:
    """Bernoulli(sigmoid(logits)) per pixel; data in [0, 1] (binarized by the data option)."""

    def build(self) -> BernoulliLikelihood:
        return BernoulliLikelihood()

    def label(self) -> str:
        return "Bernoulli"
