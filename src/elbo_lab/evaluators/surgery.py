"""ELBO surgery (Hoffman & Johnson 2016): average KL = I(n; z) + KL(q(z) || p(z)) over
`examples` training examples (dynamically binarized data: binarized once with this key)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from elbo_lab import surgery as surgery_lib
from elbo_lab.evaluators import REGISTRY, EvalContext, EvalResult, Row, stat
from elbo_lab.registry import check

TERMS = ("avg_kl", "mi", "marg_kl")


@REGISTRY.register("surgery")
@dataclass(frozen=True)
class SurgeryEval:
    examples: int | None = None  # training examples in q(z); None: all; 0: no ELBO surgery
    samples_per_example: int = 1
    components_per_chunk: int = 8192  # mixture components per matmul
    examples_per_chunk: int = 1000  # z samples' examples per jitted call

    def __post_init__(self):
        check(self.examples is None or self.examples >= 0, "surgery.examples must be >= 0")
        check(self.samples_per_example >= 1, "surgery.samples_per_example must be >= 1")
        check(
            min(self.components_per_chunk, self.examples_per_chunk) >= 1,
            "surgery.components_per_chunk and surgery.examples_per_chunk must be >= 1",
        )

    def build(self, model):
        def evaluate(ctx: EvalContext) -> EvalResult | None:
            train = ctx.splits.train
            n = len(train) if self.examples is None else min(self.examples, len(train))
            if not n:
                return None
            xt = train[:n]
            if ctx.splits.dynamic:
                xt = np.asarray(
                    jax.random.bernoulli(jax.random.fold_in(ctx.key, 1), xt), np.float32
                )
            sg = surgery_lib.elbo_surgery(
                ctx.params,
                model,
                xt,
                ctx.key,
                samples_per_example=self.samples_per_example,
                examples_per_chunk=self.examples_per_chunk,
                components_per_chunk=self.components_per_chunk,
            )
            summary = {
                "n_components": n,
                "n_samples": int(len(sg["avg_kl"])),
                "log_n": float(np.log(n)),
                **{name: stat(sg[name]) for name in TERMS},
            }
            return EvalResult(summary, sg)

        return evaluate

    def rows(self, summary: dict) -> list[Row]:
        return [
            (
                f"surgery: {name}",
                summary[name]["mean"],
                summary[name]["se"],
                summary["n_components"],
                f"log N = {summary['log_n']:.3f}" if name == "mi" else "",
            )
            for name in TERMS
        ]

    def label(self) -> str:
        return "surgery"
