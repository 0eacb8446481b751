"""Figures of a trained model: prior samples, reconstructions, and the bound ladder against K."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def image_grid(images: np.ndarray, rows: int, event_shape: tuple[int, int, int]) -> np.ndarray:
    """[rows * cols, H * W * C] -> one [rows * H, cols * W, C] picture, values clipped to [0, 1]."""
    cols = images.shape[0] // rows
    h, w, c = event_shape
    grid = (
        images[: rows * cols]
        .reshape(rows, cols, h, w, c)
        .transpose(0, 2, 1, 3, 4)
        .reshape(rows * h, cols * w, c)
    )
    return np.clip(grid[..., 0] if c == 1 else grid, 0.0, 1.0)


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


def run_figures(model, params, x: np.ndarray, summary, ks, key, event_shape, n: int = 64):
    """{"samples", "reconstructions", "ladder"} figures for a trained model and its test ladder
    ("ladder" only when the examples are not images, i.e. event_shape is not (H, W, C))."""
    out = {"ladder": ladder_figure(summary, ks)}
    if len(event_shape) != 3:
        return out
    k_prior, k_q = jax.random.split(key)
    z = jax.vmap(lambda k: model.sample_prior(params, k))(jax.random.split(k_prior, n))
    samples = np.asarray(jax.vmap(lambda zz: model.mean_x(params, zz))(z))
    xs = np.asarray(x[: n // 2])
    zq = jax.vmap(lambda k, xx: model.sample_q(params, k, xx)[0])(
        jax.random.split(k_q, len(xs)), xs
    )
    recon = np.asarray(jax.vmap(lambda zz: model.mean_x(params, zz))(zq))
    both = np.concatenate([xs, recon])
    for name, img, title in (
        ("samples", image_grid(samples, 8, event_shape), "samples: E[x | z], z ~ p(z)"),
        ("reconstructions", image_grid(both, 8, event_shape), "data (top) / E[x | z~q]"),
    ):
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        out[name] = fig
    return out
