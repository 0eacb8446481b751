"""The VAE objective with k samples per example (Burda et al.'s "VAE" column)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from elbo_lab.bounds import elbo_bound
from elbo_lab.objectives import REGISTRY, Objective, bound_objective, check_count
from elbo_lab.objectives.gradients import ESTIMATORS, check_estimator


@REGISTRY.register("elbo")
@dataclass(frozen=True)
class ELBO:
    """mean over k of log w: the ELBO, estimated with k samples; `estimator` forms the encoder's
    gradient (reparam | stl | dreg; dreg is stl here, the ELBO's weights being constant)."""

    k: int = 1
    estimator: str = "reparam"
    estimators: ClassVar[tuple[str, ...]] = ESTIMATORS

    def __post_init__(self):
        check_count(self.k, "k")
        check_estimator(self)

    def build(self, model) -> Objective:
        return bound_objective("elbo", elbo_bound, model=model, k=self.k, estimator=self.estimator)

    def same_as(self):
        """DReG's weights are STL's for the ELBO (its weights are constant): the same run."""
        return replace(self, estimator="stl") if self.estimator == "dreg" else self

    def label(self) -> str:
        return f"ELBO(k={self.k}{estimator_suffix(self.estimator)})"


def estimator_suffix(estimator: str) -> str:
    """ ", dreg" in a label, nothing for the plain reparameterised gradient."""
    return "" if estimator == "reparam" else f", {estimator}"
