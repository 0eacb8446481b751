"""The VAE objective with k samples per example (Burda et al.'s "VAE" column)."""

from __future__ import annotations

from dataclasses import dataclass

from elbo_lab.objectives import REGISTRY, Objective, k_sample_objective
from elbo_lab.registry import check


@REGISTRY.register("elbo")
@dataclass(frozen=True)
class ELBO:
    """mean over k of log w: the ELBO, estimated with k samples."""

    k: int = 1

    def __post_init__(self):
        check(self.k >= 1, f"objective.k must be a positive number of samples, got {self.k}")

    def build(self, model) -> Objective:
        return k_sample_objective("elbo", model=model, k=self.k)

    def label(self) -> str:
        return f"ELBO(k={self.k})"
