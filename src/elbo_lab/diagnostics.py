"""Diagnostics of the posterior that are not bounds: active units and the like."""

from __future__ import annotations

import numpy as np

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2015): unit u is active if Cov_x(E_q[u]) > 0.01


def unit_activity(q_mean: np.ndarray) -> np.ndarray:
    """Var over examples of E_q[u | x], per latent unit: q_mean [N, D] -> [D]."""
    return np.var(np.asarray(q_mean, np.float64), axis=0, ddof=1)


def active_units(q_mean: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Number of latent units whose activity exceeds `threshold`."""
    return int(np.sum(unit_activity(q_mean) > threshold))
