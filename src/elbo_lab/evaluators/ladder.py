"""The bound ladder ELBO <= IWAE-k <= log p(x) ~ IWAE-K_max (estimators.Ladder)."""

from __future__ import annotations

from dataclasses import dataclass

from elbo_lab.estimators import Ladder
from elbo_lab.evaluators import REGISTRY, EvalContext, EvalResult, Row
from elbo_lab.registry import check


def check_ks(ks, where: str) -> None:
    check(len(ks) >= 1 and all(k >= 1 for k in ks), f"{where} must be positive K values, got {ks}")
    check(
        all(max(ks) % k == 0 for k in ks),
        f"{where}={list(ks)}: every K must divide the largest, which estimates log p(x)",
    )


@REGISTRY.register("ladder")
@dataclass(frozen=True)
class LadderEval:
    """IWAE-k for every k of `ks` from one set of max(ks) samples per example."""

    ks: list[int] = (1, 5, 50, 5000)
    rows_per_chunk: int = 5000  # samples x examples per decoder matmul; bounds memory

    def __post_init__(self):
        check_ks(self.ks, "ladder.ks")
        check(self.rows_per_chunk >= 1, "ladder.rows_per_chunk must be >= 1")

    def build(self, model):
        ladder = Ladder(model, self.ks, self.rows_per_chunk)

        def evaluate(ctx: EvalContext) -> EvalResult:
            summary, per = ladder(
                ctx.params,
                ctx.x,
                ctx.key,
                desc="ladder",
                progress=ctx.progress,
                first_row=ctx.first,
            )
            return EvalResult(summary, per)

        return evaluate

    def rows(self, summary: dict) -> list[Row]:
        n, kmax = int(summary["n_examples"]), int(summary["k_max"])
        out = []
        for k in sorted(set(self.ks)):
            name = "ELBO" if k == 1 else f"IWAE-{k}"
            note = "log p(x) estimate" if k == kmax else ""
            out.append((name, summary[f"iwae_{k}"], summary[f"iwae_{k}_se"], n, note))
        return out

    def label(self) -> str:
        return f"ladder(K={max(self.ks)})"
