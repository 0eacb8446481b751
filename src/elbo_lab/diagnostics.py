"""Diagnostics that are not bounds: active units, and the signal-to-noise ratio of gradients."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

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


def gradient_snr(
    grad_fn: Callable, params, keys: jax.Array, encoder_keys: tuple[str, ...], *args
) -> dict[str, dict[str, float]]:
    """The gradient's signal-to-noise ratio at fixed parameters (Rainforth et al. 2018), for the
    encoder's and the decoder's parameters apart.

    grad_fn(params, key, *args) -> a gradient with params' structure (a dict whose top-level keys
    in `encoder_keys` are the encoder's); keys [R]: R independent keys, one gradient each. Per
    parameter p: E g_p and Var g_p over the R gradients (ddof 1), SNR_p = |E g_p| / sd g_p.
    Returns {"encoder": s, "decoder": s}, s = {"snr_median", "snr_q10", "snr_q90" (over the
    parameters whose gradient varies), "aggregate" (mean_p (E g_p)^2 / mean_p Var g_p, the
    squared ratio the DReG authors log), "variance" (mean_p Var g_p), "parameters"}.
    Compiled once per grad_fn (keep one); memory: a few vectors of the parameters' size (a
    lax.scan over the keys); time: R gradients.
    """
    n_enc = ravel_pytree([params[n] for n in sorted(params) if n in encoder_keys])[0].size
    g0, s1, s2 = (
        np.asarray(v, np.float64)
        for v in _gradient_sums(grad_fn, tuple(encoder_keys), params, keys, *args)
    )
    r = keys.shape[0]
    return {
        "encoder": snr_summary(g0[:n_enc], s1[:n_enc], s2[:n_enc], r),
        "decoder": snr_summary(g0[n_enc:], s1[n_enc:], s2[n_enc:], r),
    }


@partial(jax.jit, static_argnums=(0, 1))
def _gradient_sums(grad_fn, encoder_keys, params, keys, *args):
    """(g_0, sum (g_r - g_0), sum (g_r - g_0)^2) over r >= 1, each [P]: the encoder's leaves
    first, then the decoder's (g_0, the first key's gradient, keeps the sums well conditioned)."""
    names = sorted(params)
    order = [n for n in names if n in encoder_keys] + [n for n in names if n not in encoder_keys]

    def flat(key):
        grads = grad_fn(params, key, *args)
        return ravel_pytree([grads[n] for n in order])[0]

    g0 = flat(keys[0])

    def add(sums, key):
        d = flat(key) - g0
        return (sums[0] + d, sums[1] + d * d), None

    (s1, s2), _ = jax.lax.scan(add, (jnp.zeros_like(g0), jnp.zeros_like(g0)), keys[1:])
    return g0, s1, s2


def snr_summary(g0: np.ndarray, s1: np.ndarray, s2: np.ndarray, r: int) -> dict[str, float]:
    """The summary of gradient_snr from the first gradient g0 [P] and the sums of the other
    r - 1 gradients' differences from it, s1 = sum (g - g0) and s2 = sum (g - g0)^2 [P]."""
    d_mean = s1 / r  # the first gradient's own difference is 0
    mean = g0 + d_mean
    var = np.maximum(s2 - r * d_mean**2, 0.0) / (r - 1)
    varies = var > 0
    snr = np.abs(mean[varies]) / np.sqrt(var[varies])
    q10, q50, q90 = np.quantile(snr, [0.1, 0.5, 0.9]) if snr.size else (np.nan,) * 3
    return {
        "snr_median": float(q50),
        "snr_q10": float(q10),
        "snr_q90": float(q90),
        "aggregate": float(np.mean(mean**2) / np.mean(var)) if np.any(varies) else np.nan,
        "variance": float(np.mean(var)),
        "parameters": int(mean.size),
    }
