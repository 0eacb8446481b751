"""CIWAE (Rainforth et al. 2018): a convex combination of the ELBO and IWAE on the same samples."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from elbo_lab.bounds import ciwae_bound
from elbo_lab.objectives import REGISTRY, Objective, bound_objective, check_count
from elbo_lab.objectives.elbo import ELBO, estimator_suffix
from elbo_lab.objectives.gradients import ESTIMATORS, check_estimator
from elbo_lab.objectives.iwae import IWAE
from elbo_lab.registry import check


@REGISTRY.register("ciwae")
@dataclass(frozen=True)
class CIWAE:
    """beta * ELBO + (1 - beta) * IWAE-k on the same k samples; beta = 0 is IWAE, 1 the ELBO."""

    k: int = 64
    beta: float = 0.05
    estimator: str = "reparam"
    estimators: ClassVar[tuple[str, ...]] = ESTIMATORS

    def __post_init__(self):
        check_count(self.k, "k")
        check(0 <= self.beta <= 1, f"objective.beta must lie in [0, 1], got {self.beta}")
        check_estimator(self)

    def build(self, model) -> Objective:
        bound = partial(ciwae_bound, beta=self.beta)
        return bound_objective("ciwae", bound, model=model, k=self.k, estimator=self.estimator)

    def same_as(self):
        """beta = 0 is IWAE-k, beta = 1 the ELBO: the same runs."""
        if self.beta == 0:
            return IWAE(k=self.k, estimator=self.estimator).same_as()
        if self.beta == 1:
            return ELBO(k=self.k, estimator=self.estimator).same_as()
        return self

    def label(self) -> str:
        return f"CIWAE(beta={self.beta:g}, k={self.k}{estimator_suffix(self.estimator)})"
