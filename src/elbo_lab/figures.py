"""Figures of a trained model: prior samples, reconstructions, and the bound ladder against K."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def image_grid(images: np.ndarray, rows: int, side: int = 28) -> np.ndarray:
    """[rows * cols, side * side] -> one [rows * side, cols * side] picture."""
    cols = images.shape[0] // rows
    return (
        images[: rows * cols]
        .reshape(rows, cols, side, side)
        .transpose(0, 2, 1, 3)
        .reshape(rows * side, cols * side)
    )


def ladder_figure(
    summary: dict[str, float],
    ks: Sequence[int],
    title: str = "",
    ais: tuple[float, float] | None = None,
):
    """Bound against K on a log axis, ±2 standard errors, with log p(x) = IWAE-K_max as a line.

    `ais`: (mean, standard error) of an AIS estimate of log p(x) on the same examples, drawn as a
    horizontal band of ±2 standard errors.
    """
    ks = sorted(ks)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    means = [summary[f"iwae_{k}"] for k in ks]
    errs = [2 * summary[f"iwae_{k}_se"] for k in ks]
    ax.errorbar(ks, means, yerr=errs, marker="o", capsize=3, label="IWAE-K (K=1: ELBO)")
    ax.axhline(summary["log_px"], color="k", ls="--", lw=1, label=f"log p(x) ≈ IWAE-{max(ks)}")
    if ais is not None:
        mean, se = ais
        ax.axhspan(
            mean - 2 * se,
            mean + 2 * se,
            color="tab:orange",
            alpha=0.3,
            lw=0,
            label="log p(x), AIS ±2 SE",
        )
        ax.axhline(mean, color="tab:orange", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("K (importance samples)")
    ax.set_ylabel("nats per example")
    ax.set_title(title or "bound ladder")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def run_figures(model, params, x: np.ndarray, summary, ks, key, n: int = 64) -> dict:
    """{"samples", "reconstructions", "ladder"} figures for a trained model and its test ladder."""
    k_prior, k_q = jax.random.split(key)
    z = jax.vmap(lambda k: model.sample_prior(params, k))(jax.random.split(k_prior, n))
    samples = np.asarray(jax.vmap(lambda zz: model.decode_mean(params, zz))(z))
    xs = np.asarray(x[: n // 2])
    zq = jax.vmap(lambda k, xx: model.sample_q(params, k, xx)[0])(
        jax.random.split(k_q, len(xs)), xs
    )
    recon = np.asarray(jax.vmap(lambda zz: model.decode_mean(params, zz))(zq))
    out = {}
    for name, img, title in (
        ("samples", image_grid(samples, 8), "samples: E[x | z], z ~ p(z)"),
        ("reconstructions", image_grid(np.concatenate([xs, recon]), 8), "data (top) / E[x | z~q]"),
    ):
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        out[name] = fig
    out["ladder"] = ladder_figure(summary, ks)
    return out
