"""The Renyi (variational Renyi, VR) bound of Li & Turner (2016)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from elbo_lab.bounds import renyi_bound
from elbo_lab.objectives import REGISTRY, Objective, bound_objective, check_count
from elbo_lab.objectives.elbo import ELBO, estimator_suffix
from elbo_lab.objectives.gradients import ESTIMATORS, check_estimator
from elbo_lab.objectives.iwae import IWAE
from elbo_lab.registry import check


@REGISTRY.register("renyi")
@dataclass(frozen=True)
class Renyi:
    """log mean_k w_k^(1 - alpha) / (1 - alpha) with k samples: alpha = 0 is IWAE-k, alpha = 1
    the ELBO; alpha >= 0 keeps it a lower bound (VR-max, alpha -> -inf, is not one: left out)."""

    k: int = 5
    alpha: float = 0.5
    estimator: str = "reparam"
    estimators: ClassVar[tuple[str, ...]] = ESTIMATORS

    def __post_init__(self):
        check_count(self.k, "k")
        check(
            self.alpha >= 0,
            f"objective.alpha must be >= 0 (0: IWAE, 1: the ELBO; below 0 the Renyi bound is no "
            f"longer a lower bound on log p(x)), got {self.alpha}",
        )
        check_estimator(self)

    def build(self, model) -> Objective:
        bound = partial(renyi_bound, alpha=self.alpha)
        return bound_objective("renyi", bound, model=model, k=self.k, estimator=self.estimator)

    def same_as(self):
        """alpha = 0 is IWAE-k, alpha = 1 or k = 1 the ELBO: the same runs."""
        if self.alpha == 0:
            return IWAE(k=self.k, estimator=self.estimator).same_as()
        if self.alpha == 1 or self.k == 1:
            return ELBO(k=self.k, estimator=self.estimator).same_as()
        return self

    def label(self) -> str:
        return f"Renyi(alpha={self.alpha:g}, k={self.k}{estimator_suffix(self.estimator)})"
