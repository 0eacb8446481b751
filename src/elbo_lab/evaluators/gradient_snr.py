"""The signal-to-noise ratio of the run's own training gradient at a saved checkpoint, encoder
and decoder apart (Rainforth et al. 2018; diagnostics.gradient_snr)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from elbo_lab.diagnostics import gradient_snr
from elbo_lab.evaluators import REGISTRY, EvalContext, EvalResult, Row
from elbo_lab.registry import check

STATS = ("snr_median", "snr_q10", "snr_q90", "aggregate", "variance")


@REGISTRY.register("gradient_snr")
@dataclass(frozen=True)
class GradientSNREval:
    """`repeats` gradients of the run's objective (its estimator included) with independent keys
    on one minibatch, the first `examples` evaluated examples. An objective with a state (hmc's
    adapted step size) is evaluated from its initial state: checkpoints keep parameters only."""

    repeats: int = 100
    examples: int = 20

    def __post_init__(self):
        check(self.repeats >= 2, "gradient_snr.repeats must be >= 2 (a variance needs two)")
        check(self.examples >= 1, "gradient_snr.examples must be >= 1")

    def build(self, model):
        def evaluate(ctx: EvalContext) -> EvalResult:
            x = jnp.asarray(ctx.x[: self.examples], jnp.float32)
            keys = jax.random.split(ctx.key, self.repeats)
            found = gradient_snr(
                ctx.gradient, ctx.params, keys, model.encoder_keys, ctx.objective_state, x
            )
            return EvalResult({**found, "repeats": self.repeats, "examples": len(x)}, {})

        return evaluate

    def rows(self, summary: dict) -> list[Row]:
        return [
            (f"gradient SNR: {half} {stat}", summary[half][stat], float("nan"), summary["repeats"],
             f"{summary[half]['parameters']} parameters, minibatch of {summary['examples']}")
            for half in ("encoder", "decoder")
            for stat in STATS
        ]  # fmt: skip

    def label(self) -> str:
        return f"gradient_snr(repeats={self.repeats})"
