"""The IWAE k-sample bound (Burda et al. 2015)."""

from __future__ import annotations

from dataclasses import dataclass

from elbo_lab.objectives import REGISTRY, Objective, k_sample_objective
from elbo_lab.registry import check


@REGISTRY.register("iwae")
@dataclass(frozen=True)
class IWAE:
    """logsumexp over k of log w, minus log k."""

    k: int = 5

    def __post_init__(self):
        check(self.k >= 1, f"objective.k must be a positive number of samples, got {self.k}")

    def build(self, model) -> Objective:
        return k_sample_objective("iwae", model=model, k=self.k)

    def label(self) -> str:
        return f"IWAE(k={self.k})"
