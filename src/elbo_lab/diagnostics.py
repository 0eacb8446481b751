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


def active_units_per_layer(
    q_mean: np.ndarray, latent_dims: tuple[int, ...], threshold: float = ACTIVE_UNIT_THRESHOLD
) -> list[int]:
    """Active units of each stochastic layer (the paper reports them so, e.g. "16+5"), for a flat
    q_mean [N, sum(latent_dims)] laid out bottom-up as the models lay out z: [z1, z2, ...]."""
    edges = np.cumsum([0, *latent_dims])
    if q_mean.shape[1] != edges[-1]:
        raise ValueError(
            f"q_mean has {q_mean.shape[1]} units, latent_dims {latent_dims} sum to {edges[-1]}"
        )
    return [
        active_units(q_mean[:, a:b], threshold) for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
