"""MIWAE (Rainforth et al. 2018): the mean of m IWAE-k bounds, m * k samples per example."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from elbo_lab.bounds import miwae_bound
from elbo_lab.objectives import REGISTRY, Objective, bound_objective, check_count
from elbo_lab.objectives.elbo import ELBO, estimator_suffix
from elbo_lab.objectives.gradients import ESTIMATORS, check_estimator
from elbo_lab.objectives.iwae import IWAE


@REGISTRY.register("miwae")
@dataclass(frozen=True)
class MIWAE:
    """mean over m groups of k samples of IWAE-k; m = 1 is IWAE-k, k = 1 the ELBO with m samples.
    Rainforth et al.'s encoder SNR grows like sqrt(m / k), the decoder's like sqrt(m * k)."""

    m: int = 8
    k: int = 8
    estimator: str = "reparam"
    estimators: ClassVar[tuple[str, ...]] = ESTIMATORS

    def __post_init__(self):
        check_count(self.m, "m", "groups")
        check_count(self.k, "k")
        check_estimator(self)

    def build(self, model) -> Objective:
        bound = partial(miwae_bound, m=self.m)
        return bound_objective(
            "miwae", bound, model=model, k=self.m * self.k, estimator=self.estimator
        )

    def same_as(self):
        """m = 1 is IWAE-k, k = 1 the ELBO with m samples: the same runs."""
        if self.m == 1:
            return IWAE(k=self.k, estimator=self.estimator).same_as()
        if self.k == 1:
            return ELBO(k=self.m, estimator=self.estimator).same_as()
        return self

    def label(self) -> str:
        return f"MIWAE(m={self.m}, k={self.k}{estimator_suffix(self.estimator)})"
