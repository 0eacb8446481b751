"""log p(x) estimates and the bound ladder, from one set of K_max importance samples per example.

For each example we draw K_max samples z ~ q(z | x) (in chunks, so memory stays bounded whatever
K_max is) and keep their log weights [K_max]. From those:

- ELBO            = mean of all K_max log weights (the most precise ELBO estimate we can afford);
- IWAE-k, k < K_max = mean over the K_max // k disjoint groups of k of (logsumexp - log k): an
                     unbiased estimate of the IWAE-k bound, with K_max // k times less variance than
                     a single draw;
- log p(x)        = IWAE-K_max (K_max = 5000 by default, as in Burda et al.).

Differences between rungs are paired (same samples, same examples), so their standard errors are
those of the per-example differences, far smaller than those of the rungs themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from elbo_lab.bounds import iwae_bound, log_weights
from elbo_lab.chunking import chunked_map
from elbo_lab.diagnostics import active_units, active_units_per_layer


def ladder_plan(ks: Sequence[int], rows_per_chunk: int) -> tuple[int, int, int]:
    """(k_max, samples per chunk, examples per batch) so one chunk is about `rows_per_chunk` rows.

    K_max must be a multiple of every k on the ladder (each k uses disjoint groups of the samples).
    """
    k_max = max(ks)
    bad = [k for k in ks if k_max % k]
    if bad:
        raise ValueError(f"every K on the ladder must divide the largest ({k_max}); {bad} do not")
    chunk = max(d for d in range(1, min(k_max, rows_per_chunk) + 1) if k_max % d == 0)
    return k_max, chunk, max(1, rows_per_chunk // chunk)


def make_ladder_fn(model, *, k_max: int, chunk: int):
    """A jitted fn(params, key, x [B, X]) -> per-example arrays for a batch.

    Returns a dict with "log_w" [B, K_max] and the per-example means "recon", "kl" [B] and
    "q_mean" [B, D] (E_q[z] per example, Rao-Blackwellised through the per-layer means).
    """
    n_chunks = k_max // chunk

    @jax.jit
    def ladder(params, key, x):
        def one_chunk(i):
            keys = jax.random.split(jax.random.fold_in(key, i), x.shape[0])
            lw = jax.vmap(lambda kk, xx: log_weights(params, kk, xx, model=model, k=chunk))(keys, x)
            return (
                lw.log_w,
                jnp.sum(lw.log_lik, 1),
                jnp.sum(lw.log_q - lw.log_prior, 1),
                jnp.sum(lw.q_mean, 1),
            )

        log_w, recon, kl, q_mean = jax.lax.map(one_chunk, jnp.arange(n_chunks))
        return {
            "log_w": jnp.moveaxis(log_w, 0, 1).reshape(x.shape[0], k_max),
            "recon": jnp.sum(recon, 0) / k_max,
            "kl": jnp.sum(kl, 0) / k_max,
            "q_mean": jnp.sum(q_mean, 0) / k_max,
        }

    return ladder


def iwae_ladder(log_w: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Per-example IWAE-k estimates [N] from log weights [N, K_max] for each k (k=1: ELBO)."""
    out = {}
    for k in ks:
        groups = log_w.shape[1] // k
        grouped = jnp.asarray(log_w[:, : groups * k]).reshape(log_w.shape[0], groups, k)
        out[k] = np.asarray(jnp.mean(iwae_bound(grouped), axis=1), np.float64)
    return out


def mean_se(v: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error over examples."""
    v = np.asarray(v, np.float64)
    se = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(np.mean(v)), se


class Ladder:
    """The bound ladder for one model and set of Ks, compiled once (per input shape) and reused,
    e.g. by every epoch's validation.

        ladder = Ladder(model, ks=(1, 5, 50), rows_per_chunk=5000)
        summary, per_example = ladder(params, x, key)
    """

    def __init__(self, model, ks: Sequence[int], rows_per_chunk: int = 5000):
        self.model, self.ks = model, sorted(set(int(k) for k in ks))
        self.k_max, chunk, self.batch = ladder_plan(self.ks, rows_per_chunk)
        self._fn = make_ladder_fn(model, k_max=self.k_max, chunk=chunk)

    def __call__(
        self,
        params,
        x: np.ndarray,
        key: jax.Array,
        *,
        desc: str = "eval",
        progress: bool = False,
        first_row: int = 0,
    ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """The ladder on a data set x [N, X] (rows first_row.. of a larger set: chunked_map).

        Returns (summary, per_example). summary holds, each with "<name>_se" its standard error:
          elbo, iwae_<k> for every k, log_px (= IWAE-K_max), nll = -log_px, recon, kl,
          gap_elbo = log_px - elbo, gap_iwae_<k> = log_px - iwae_<k> (paired), active_units (and
          active_units_layer<i>, bottom-up, for models with several stochastic layers);
        per_example holds "iwae_<k>" [N], "elbo", "recon", "kl" [N] and "q_mean" [N, D].
        """
        ks, k_max = self.ks, self.k_max

        def post(out):
            kept = {f"iwae_{k}": v for k, v in iwae_ladder(out["log_w"], ks).items()}
            kept["elbo"] = np.mean(out["log_w"], 1, dtype=np.float64)
            for name in ("recon", "kl", "q_mean"):
                kept[name] = np.asarray(out[name], np.float64)
            return kept

        per = chunked_map(
            self._fn,
            [np.asarray(x, np.float32)],
            self.batch,
            key,
            params=params,
            post=post,
            desc=desc,
            progress=progress,
            first_row=first_row,
        )
        summary: dict[str, float] = {}

        def put(name, values):
            summary[name], summary[f"{name}_se"] = mean_se(values)

        log_px = per[f"iwae_{k_max}"]
        put("elbo", per["elbo"])
        for k in ks:
            put(f"iwae_{k}", per[f"iwae_{k}"])
        put("log_px", log_px)
        put("nll", -log_px)
        put("recon", per["recon"])
        put("kl", per["kl"])
        put("gap_elbo", log_px - per["elbo"])
        for k in ks:
            if k not in (1, k_max):  # iwae_1 is the ELBO, whose gap is gap_elbo
                put(f"gap_iwae_{k}", log_px - per[f"iwae_{k}"])
        summary["active_units"] = float(active_units(per["q_mean"]))
        layers = tuple(self.model.latent_dims)
        if len(layers) > 1:
            for i, n_active in enumerate(active_units_per_layer(per["q_mean"], layers), 1):
                summary[f"active_units_layer{i}"] = float(n_active)
        summary["k_max"] = float(k_max)
        summary["n_examples"] = float(x.shape[0])
        return summary, per
