"""A new dataset: continuous points near a random 3-dimensional plane in R^12 (for
likelihood=gaussian), generated from a seed."""

from dataclasses import dataclass

import numpy as np

from elbo_lab.data import REGISTRY, Splits, make_splits


@REGISTRY.register("plane")
@dataclass(frozen=True)
class Plane:
    n: int = 600
    seed: int = 0

    def build(self) -> Splits:
        rng = np.random.default_rng(self.seed)
        x = rng.normal(size=(self.n, 3)) @ rng.normal(size=(3, 12)) + 0.1 * rng.normal(
            size=(self.n, 12)
        )
        a, b = self.n * 8 // 10, self.n * 9 // 10
        return make_splits(f"data 'plane' (seed {self.seed})", x[:a], x[a:b], x[b:], (12,), "none")

    def label(self) -> str:
        return "plane"
