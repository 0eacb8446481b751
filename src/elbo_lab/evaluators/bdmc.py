"""BDMC (Grosse et al. 2015): forward and reverse AIS bounds on (x, z) simulated from the model,
which bracket log p(x) and so bound the error of forward AIS on data like the simulated data.
Its fields are AIS's (the same defaults; set them under bdmc.*); `examples` simulated pairs."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from elbo_lab import ais as ais_lib
from elbo_lab.evaluators import REGISTRY, EvalContext, EvalResult, Row, rms, stat
from elbo_lab.evaluators.ais import AISEval


def simulate(model, params, key: jax.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n pairs (x [n, X], z [n, D]) ~ p(z) p(x | z): z is an exact posterior sample of x."""
    k_z, k_x = jax.random.split(key)
    z = jax.vmap(lambda k: model.sample_prior(params, k))(jax.random.split(k_z, n))
    x = jax.vmap(lambda k, zz: model.sample_x(params, k, zz))(jax.random.split(k_x, n), z)
    return np.asarray(x), np.asarray(z)


@REGISTRY.register("bdmc")
@dataclass(frozen=True)
class BDMCEval(AISEval):
    examples: int | None = 100  # simulated (x, z) pairs; 0: no BDMC

    def build(self, model):
        def evaluate(ctx: EvalContext) -> EvalResult | None:
            if not self.examples:
                return None
            xs, zs = simulate(model, ctx.params, ctx.key, self.examples)
            b = ais_lib.bdmc(
                ctx.params,
                model,
                xs,
                zs,
                jax.random.fold_in(ctx.key, 1),
                self.settings(),
                progress=ctx.progress,
            )
            summary = {
                "n": self.examples,
                "lower": stat(b["lower"]),
                "upper": stat(b["upper"]),
                "gap": stat(b["gap"]),
                "lower_mc_se_rms": rms(b["lower_mc_se"]),
                "upper_mc_se_rms": rms(b["upper_mc_se"]),
            }
            per = {k: b[k] for k in ("lower", "upper", "gap", "lower_mc_se", "upper_mc_se")}
            return EvalResult(summary, per)

        return evaluate

    def rows(self, summary: dict) -> list[Row]:
        notes = {"lower": self.note(), "upper": "reverse AIS from the exact z", "gap": ""}
        return [
            (
                f"BDMC {name} (simulated x)",
                summary[name]["mean"],
                summary[name]["se"],
                summary["n"],
                notes[name],
            )
            for name in ("lower", "upper", "gap")
        ]

    def label(self) -> str:
        return f"BDMC(T={self.temperatures},C={self.chains})"
