"""The IWAE k-sample bound (Burda et al. 2015)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from elbo_lab.bounds import iwae_bound
from elbo_lab.objectives import REGISTRY, Objective, bound_objective, check_count
from elbo_lab.objectives.elbo import ELBO, estimator_suffix
from elbo_lab.objectives.gradients import ESTIMATORS, check_estimator


@REGISTRY.register("iwae")
@dataclass(frozen=True)
class IWAE:
    """logsumexp over k of log w, minus log k; `estimator`: reparam | stl (biased for k > 1) |
    dreg (Tucker et al. 2019)."""

    k: int = 5
    estimator: str = "reparam"
    estimators: ClassVar[tuple[str, ...]] = ESTIMATORS

    def __post_init__(self):
        check_count(self.k, "k")
        check_estimator(self)

    def build(self, model) -> Objective:
        return bound_objective("iwae", iwae_bound, model=model, k=self.k, estimator=self.estimator)

    def same_as(self):
        """IWAE-1 is the ELBO with one sample: the same run (the sweeper trains it once)."""
        return ELBO(k=1, estimator=self.estimator).same_as() if self.k == 1 else self

    def label(self) -> str:
        return f"IWAE(k={self.k}{estimator_suffix(self.estimator)})"
