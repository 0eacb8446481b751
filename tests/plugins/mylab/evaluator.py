"""A new evaluator: the reconstruction term E_q[log p(x | z)] per example, with K samples."""

from dataclasses import dataclass

import jax
import numpy as np

from elbo_lab.bounds import log_weights
from elbo_lab.evaluators import REGISTRY, EvalResult, stat


@REGISTRY.register("recon")
@dataclass(frozen=True)
class Recon:
    k: int = 10

    def build(self, model):
        @jax.jit
        def recon(params, key, x):
            keys = jax.random.split(key, x.shape[0])
            return jax.vmap(
                lambda kk, xx: log_weights(params, kk, xx, model=model, k=self.k).log_lik.mean()
            )(keys, x)

        def evaluate(ctx):
            per = np.asarray(recon(ctx.params, ctx.key, ctx.x), np.float64)
            return EvalResult({"n": len(per), "recon": stat(per)}, {"recon": per})

        return evaluate

    def rows(self, summary):
        return [
            (
                "E_q log p(x|z)",
                summary["recon"]["mean"],
                summary["recon"]["se"],
                summary["n"],
                f"K={self.k}",
            )
        ]

    def label(self) -> str:
        return f"recon(K={self.k})"
