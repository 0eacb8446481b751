"""log p(x) by annealed importance sampling on the first `examples` evaluated examples, with the
ladder's estimates on the same subset and the paired difference AIS - IWAE-K_max. Each example's
chains are seeded by its index in the split, so an evaluation from `first` (elbo-lab-eval) extends
an earlier one with the values a single larger one would have given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elbo_lab import ais as ais_lib
from elbo_lab.evaluators import REGISTRY, EvalContext, EvalResult, Row, rms, stat
from elbo_lab.registry import check


@REGISTRY.register("ais")
@dataclass(frozen=True)
class AISEval:
    examples: int | None = 100  # the first n evaluated examples; None: all; 0: no AIS
    chains: int = 16
    temperatures: int = 500
    schedule: str = "sigmoid"  # sigmoid | linear
    init: str = "prior"  # the path's start: prior p(z) | q (the encoder's q(z | x))
    num_leapfrog: int = 10
    step_size: float = 0.05  # initial, then adapted towards target_accept along the path
    target_accept: float = 0.65
    adapt_rate: float = 0.05  # log step size moves by rate x (acceptance - target) per temperature
    examples_per_chunk: int = 25  # examples per jitted call (x chains rows per matmul)

    def __post_init__(self):
        w = type(self).registry_name
        check(self.examples is None or self.examples >= 0, f"{w}.examples must be >= 0 (0: skip)")
        check(min(self.chains, self.temperatures) >= 1, f"{w}.chains, {w}.temperatures >= 1")
        check(
            self.schedule in ais_lib.SCHEDULES,
            f"{w}.schedule: valid: {', '.join(ais_lib.SCHEDULES)}",
        )
        check(self.init in ais_lib.BASES, f"{w}.init: valid: {', '.join(ais_lib.BASES)}")
        check(
            self.num_leapfrog >= 1 and self.step_size > 0, f"{w}.num_leapfrog >= 1, step_size > 0"
        )
        check(0 < self.target_accept < 1, f"{w}.target_accept must lie in (0, 1)")
        check(self.adapt_rate >= 0, f"{w}.adapt_rate must be >= 0 (0: a fixed step size)")
        check(self.examples_per_chunk >= 1, f"{w}.examples_per_chunk must be >= 1")

    def settings(self) -> ais_lib.AISSettings:
        return ais_lib.AISSettings(
            num_temps=self.temperatures,
            schedule=self.schedule,
            base=self.init,
            chains=self.chains,
            num_leapfrog=self.num_leapfrog,
            step_size=self.step_size,
            target_accept=self.target_accept,
            adapt_rate=self.adapt_rate,
            examples_per_chunk=self.examples_per_chunk,
        )

    def note(self) -> str:
        return (
            f"{self.chains} chains, {self.temperatures} {self.schedule} temperatures, from "
            f"{self.init}, HMC {self.num_leapfrog} leapfrog, target accept {self.target_accept}"
        )

    def build(self, model):
        def evaluate(ctx: EvalContext) -> EvalResult | None:
            n = len(ctx.x) if self.examples is None else min(self.examples, len(ctx.x))
            if not n:
                return None
            out = ais_lib.ais(
                ctx.params,
                model,
                ctx.x[:n],
                ctx.key,
                self.settings(),
                progress=ctx.progress,
                first_row=ctx.first,
            )
            summary = {
                "n": n,
                "log_px": stat(out["log_px"]),
                "mc_se_per_example_rms": rms(out["mc_se"]),
                "accept_mean": float(np.mean(out["accept"])),
                "step_size_final_mean": float(np.mean(out["step_size"][:, -1])),
            }
            ladder = ctx.earlier.get("ladder")
            if ladder is not None:
                per = ladder.per_example
                ks = sorted(int(k.split("_")[1]) for k in per if k.startswith("iwae_"))
                summary["minus_iwae_kmax"] = stat(out["log_px"] - per[f"iwae_{ks[-1]}"][:n])
                sub = {}
                for k in ks:
                    s = stat(per[f"iwae_{k}"][:n])
                    sub[f"iwae_{k}"], sub[f"iwae_{k}_se"] = s["mean"], s["se"]
                sub["log_px"], sub["log_px_se"] = sub[f"iwae_{ks[-1]}"], sub[f"iwae_{ks[-1]}_se"]
                summary["ladder_same_examples"] = sub
            per_example = {k: out[k] for k in ("log_px", "mc_se", "log_w")}
            return EvalResult(summary, per_example)

        return evaluate

    def rows(self, summary: dict) -> list[Row]:
        note = f"{self.note()}; per-example MC SE (rms) {summary['mc_se_per_example_rms']:.3f}"
        out = [
            (
                "log p(x), AIS",
                summary["log_px"]["mean"],
                summary["log_px"]["se"],
                summary["n"],
                note,
            )
        ]
        if "minus_iwae_kmax" in summary:
            d = summary["minus_iwae_kmax"]
            out.append(("AIS - IWAE-K_max (paired)", d["mean"], d["se"], summary["n"], ""))
        return out

    def label(self) -> str:
        return f"AIS(T={self.temperatures},C={self.chains})"
