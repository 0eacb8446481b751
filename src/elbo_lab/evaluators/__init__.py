"""Evaluators of a trained model: the ladder, AIS, BDMC, the gaps, ELBO surgery, and yours.

An entry (`evaluator=<name>`, configured in `elbo-lab-eval` under its own key, e.g. `ais.chains=
32`, and run in the order of `evaluators=[ladder, ais, ...]`) builds a function

    evaluate(ctx: EvalContext) -> EvalResult(summary, per_example)

`summary` is a JSON-ready dict of the numbers (each estimate as {"mean", "se"} or flat), and
`per_example` a dict of arrays [N, ...], one row per evaluated example (saved, so any two runs can
be compared pairwise, image by image). `rows(summary)` gives the lines of the Markdown table.
Evaluator i of the list draws its randomness from fold_in(key(seed), i).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from elbo_lab.estimators import mean_se
from elbo_lab.registry import Registry

REGISTRY = Registry("evaluator")


class EvalContext(NamedTuple):
    params: Any
    model: Any
    x: np.ndarray  # [N, X] the evaluated examples of the split (binary where the data is)
    splits: Any  # the run's data.Splits (surgery reads the training split)
    key: jax.Array  # this evaluator's own key
    earlier: dict  # {evaluator key: EvalResult} of the evaluators that ran before this one
    progress: bool
    # fn(params, key, ostate, x) -> the gradient of the run's own training objective, and the
    # objective's initial state (objectives.gradient_fn; for the gradient diagnostics)
    gradient: Any = None
    objective_state: Any = None
    first: int = 0  # the index in the split of x's first row (per-example keys depend on it)


class EvalResult(NamedTuple):
    summary: dict
    per_example: dict[str, np.ndarray]


Row = tuple[str, float, float, int, str]  # (quantity, estimate, SE, N, notes)


def stat(values) -> dict[str, float]:
    """{"mean", "se"} over examples."""
    mean, se = mean_se(values)
    return {"mean": mean, "se": se}


def rms(values) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def _register_builtins() -> None:
    from elbo_lab.evaluators import ais, bdmc, gaps, gradient_snr, ladder, surgery  # noqa: F401


_register_builtins()
