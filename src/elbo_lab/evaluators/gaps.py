"""The approximation and amortization gaps (Cremer et al. 2018) on the first `examples` evaluated
examples; log p(x) is AIS's where AIS ran on them, else the ladder's IWAE-K_max."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elbo_lab import gaps as gaps_lib
from elbo_lab.errors import ConfigError
from elbo_lab.evaluators import REGISTRY, EvalContext, EvalResult, Row, rms, stat
from elbo_lab.registry import check

TERMS = ("log_px", "elbo_q", "elbo_qstar", "inference_gap", "approximation_gap", "amortization_gap")


@REGISTRY.register("gaps")
@dataclass(frozen=True)
class GapsEval:
    examples: int = 100  # the first n evaluated examples; 0: no gap decomposition
    steps: int = 2000  # Adam steps fitting each example's q*
    lr: float = 0.01  # cosine-decayed to 0 over the steps
    train_samples: int = 10  # samples per ELBO gradient
    init_samples: int = 1000  # encoder samples giving q*'s starting mean and std
    eval_samples: int = 5000  # samples per ELBO[q] and ELBO[q*] estimate

    def __post_init__(self):
        check(self.examples >= 0, "gaps.examples must be >= 0 (0: no gap decomposition)")
        check(self.steps >= 1 and self.lr > 0, "gaps.steps >= 1 and gaps.lr > 0")
        check(
            min(self.train_samples, self.init_samples, self.eval_samples) >= 2,
            "gaps.*_samples must be >= 2",
        )

    def build(self, model):
        def evaluate(ctx: EvalContext) -> EvalResult | None:
            n = min(self.examples, len(ctx.x))
            if not n:
                return None
            ais, ladder = ctx.earlier.get("ais"), ctx.earlier.get("ladder")
            if ais is not None and n <= len(ais.per_example["log_px"]):
                log_px, source = ais.per_example["log_px"][:n], "ais"
            elif ladder is not None:
                kmax = max(
                    int(k.split("_")[1]) for k in ladder.per_example if k.startswith("iwae_")
                )
                log_px, source = ladder.per_example[f"iwae_{kmax}"][:n], f"iwae_{kmax}"
            else:
                raise ConfigError("the gaps evaluator needs log p(x): run ladder or ais before it")
            gp = gaps_lib.inference_gaps(
                ctx.params,
                model,
                ctx.x[:n],
                log_px,
                ctx.key,
                steps=self.steps,
                lr=self.lr,
                train_samples=self.train_samples,
                init_samples=self.init_samples,
                eval_samples=self.eval_samples,
                first_row=ctx.first,
            )
            summary = {
                "n": n,
                "log_px_from": source,
                **{name: stat(gp[name]) for name in TERMS},
                "elbo_mc_se_rms": rms(gp["elbo_q_mc_se"]),
                "elbo_qstar_mc_se_rms": rms(gp["elbo_qstar_mc_se"]),
                "elbo_qstar_at_start": stat(gp["elbo_qstar_init"]),
            }
            return EvalResult(summary, {k: np.asarray(v) for k, v in gp.items()})

        return evaluate

    def rows(self, summary: dict) -> list[Row]:
        return [
            (
                f"gaps: {name}",
                summary[name]["mean"],
                summary[name]["se"],
                summary["n"],
                f"log p(x) from {summary['log_px_from']}" if name == "log_px" else "",
            )
            for name in TERMS
        ]

    def label(self) -> str:
        return f"gaps(steps={self.steps})"
