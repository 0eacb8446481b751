"""Issue 17's answer: test log p(x) by AIS against training compute, seed-level, per objective.

    python experiments/hmc_compute/table.py --out experiments/hmc_compute/results

Reads every run of the sweep that evaluate.py has evaluated (eval/test.json) and writes
`table.md` (one row per method and budget: compute, AIS NLL with its seed and image SEs and the
BDMC gap of the models it averages, IWAE-5000, ELBO, log p(x) - ELBO and its approximation /
amortization split, ELBO surgery, active units; then every pair of methods at the same budget)
and `nll_vs_compute.png`.

The AIS NLL of a run is for all its 2,000 test images: their IWAE-5000 (from training) plus
the mean of AIS - IWAE-5000 over the first n of them (evaluate.py's AIS images, with those its
`extend` step added; the IWAE-5000 there is the ladder's own): a difference estimator that is
unbiased for the mean AIS value of the 2,000 images and, because AIS - IWAE varies far less from
image to image than log p(x) does, has a smaller image SE than AIS on the n images alone. A cell
(method and budget) uses the first n images that all its seeds have. For two cells A and B (seed
means per image), with y = IWAE_A - IWAE_B over N images and d_A, d_B the AIS - IWAE over the
first n_A and n_B: difference = mean(y) + mean(d_A) - mean(d_B), and its image variance is
var(y)/N + var(d_A)/n_A + var(d_B)/n_B - 2 cov(d_A, d_B)/max(n_A, n_B)
+ 2 cov(y, d_A)/N - 2 cov(y, d_B)/N (each (co)variance over the images both terms have; the
means over nested first-n sets covary by the covariance over the shorter one's images).

Seed uncertainty: the seed-to-seed SD pooled over all cells (report.pooled_seed_sd, 2 degrees of
freedom per cell of 3 seeds); the SE of a difference combines it with the paired image SE, and a
difference is settled when it exceeds the two-sided 95% t quantile (pooled degrees of freedom)
times that SE. The SE of the per-seed paired differences (2 degrees of freedom) is shown beside.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from elbo_lab import provenance, report

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from evaluate import RUNS, method_of  # noqa: E402

EVAL = "eval/test/"


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def ais_minus_iwae(per: dict) -> np.ndarray:
    """A run's AIS - IWAE-5000 per test image: evaluate.py's first images, then extend's."""
    prefix, parts, n = EVAL, [], 0
    while f"{prefix}ais/log_px" in per:
        parts.append(per[f"{prefix}ais/log_px"] - per[f"{prefix}ladder/iwae_5000"])
        n += len(parts[-1])
        prefix = f"eval/test_from{n}/"
    return np.concatenate(parts)


def load(plan: dict) -> pd.DataFrame:
    """One row per evaluated run: the report's row plus method, budget, compute and the run's
    AIS log p(x) over the training test images (the difference estimator, on the first images
    that every seed of its cell has)."""
    rows = []
    for row in report.finished_runs(sorted(RUNS.glob("*"))):
        per = row["per_example"]
        if f"{EVAL}ais/log_px" not in per:
            continue
        method = method_of(Path(row["run_dir"]), plan["methods"])
        budget = [int(b) for b, e in method["epochs"].items() if e == row["epochs"]]
        row.update(
            method=method["label"],
            budget=min(budget) if budget else None,
            compute=row["epochs"] * method["relative_cost"],  # ELBO k=1 epochs of FLOPs
            ais_correction=ais_minus_iwae(per),
        )
        rows.append(row)
    runs = pd.DataFrame(rows)
    n = runs.groupby(["method", "budget"])["ais_correction"].transform(lambda c: c.map(len).min())
    runs["ais_correction"] = [d[:k] for d, k in zip(runs["ais_correction"], n, strict=True)]
    runs["log_px_ais"] = [
        float(p["log_px"].mean() + d.mean())
        for p, d in zip(runs["per_example"], runs["ais_correction"], strict=True)
    ]
    return runs


def per_example(g: pd.DataFrame, name: str) -> list[np.ndarray]:
    """Each run's per-example array `name`."""
    return [p[name] for p in g["per_example"]]


def cells(runs: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """One row per (method, budget): means over seeds, per-run lists and per-image seed means."""
    out = []
    for (method, budget), g in runs.groupby(["method", "budget"]):
        g = g.sort_values("seed")
        nll = -g["log_px_ais"].to_numpy(np.float64)

        def mean(column: str, g=g) -> float:
            return float(pd.to_numeric(g[column], errors="coerce").mean())

        out.append(
            {
                "method": method,
                "budget": budget,
                "rank": order.index(method),
                "seeds": list(g["seed"]),
                "epochs": int(g["epochs"].iloc[0]),
                "compute": float(g["compute"].iloc[0]),
                "train_minutes": mean("train_minutes"),
                "nll": float(nll.mean()),
                "nll_by_seed": dict(zip(g["seed"], nll, strict=True)),
                "iwae": np.mean(per_example(g, "log_px"), 0),  # seed means per image
                "correction": np.mean(np.stack(list(g["ais_correction"])), 0),
                "bdmc_gap": np.concatenate(per_example(g, f"{EVAL}bdmc/gap")),  # every pair
                "iwae_nll": mean("test/nll"),
                "elbo": -mean("test/elbo"),
                "approximation": mean(f"{EVAL}gaps/approximation_gap/mean"),
                "amortization": mean(f"{EVAL}gaps/amortization_gap/mean"),
                "mi": mean(f"{EVAL}surgery/mi/mean"),
                "marg_kl": mean(f"{EVAL}surgery/marg_kl/mean"),
                "active_units": mean("test/active_units"),
            }
        )
    return pd.DataFrame(out).sort_values(["budget", "rank"]).reset_index(drop=True)


def image_se(a: pd.Series, b: pd.Series | None = None) -> float:
    """The image SE of a cell's NLL, or of the difference a - b (the difference estimator)."""

    def cov(u: np.ndarray, v: np.ndarray) -> float:
        m = min(len(u), len(v))
        return float(np.cov(u[:m], v[:m])[0, 1])

    y, d_a = a["iwae"] - (0 if b is None else b["iwae"]), a["correction"]
    big_n = len(y)
    var = cov(y, y) / big_n + cov(d_a, d_a) / len(d_a) + 2 * cov(y, d_a) / big_n
    if b is not None:
        d_b = b["correction"]
        var += cov(d_b, d_b) / len(d_b) - 2 * cov(y, d_b) / big_n
        var -= 2 * cov(d_a, d_b) / max(len(d_a), len(d_b))
    return float(np.sqrt(max(var, 0.0)))


def contrast(a: pd.Series, b: pd.Series, sd: float, t: float) -> dict:
    """a - b in NLL: value, its SEs (pooled seeds, paired seeds, paired images, total), verdict."""
    value = a["nll"] - b["nll"]
    se_pooled = sd * np.sqrt(1 / len(a["seeds"]) + 1 / len(b["seeds"]))
    shared = sorted(set(a["nll_by_seed"]) & set(b["nll_by_seed"]))
    paired = np.array([a["nll_by_seed"][s] - b["nll_by_seed"][s] for s in shared])
    se_paired = float(paired.std(ddof=1) / np.sqrt(len(paired))) if len(paired) > 1 else None
    se_img = image_se(a, b)
    se = float(np.sqrt(se_pooled**2 + se_img**2))
    if not np.isfinite(se) or abs(value) <= t * se:
        verdict = "not settled"
    else:
        verdict = "worse" if value > 0 else "better"
    return {
        "value": value,
        "se_pooled": se_pooled,
        "se_paired": se_paired,
        "se_images": se_img,
        "se": se,
        "verdict": verdict,
    }


def cells_table(table: pd.DataFrame, sd: float) -> list[str]:
    lines = [
        "| budget | method | epochs | compute | train min | seeds | **AIS NLL** ± SE seeds "
        "[SE images] | AIS images | BDMC gap | IWAE-5000 NLL | −ELBO | log p(x) − ELBO "
        "| approx. gap | amort. gap | I(x; z) | KL(q(z) ‖ p(z)) | active units |",
        "|" + "---|" * 17,
    ]
    for _, c in table.iterrows():
        gap = c["bdmc_gap"]
        lines.append(
            f"| {c['budget']} | {c['method']} | {c['epochs']} | {c['compute']:.1f} "
            f"| {c['train_minutes']:.1f} | {len(c['seeds'])} "
            f"| **{c['nll']:.2f}** ± {fmt(sd / np.sqrt(len(c['seeds'])))} [{image_se(c):.2f}] "
            f"| {len(c['correction'])} "
            f"| {gap.mean():.2f} ± {gap.std(ddof=1) / np.sqrt(len(gap)):.2f} "
            f"| {c['iwae_nll']:.2f} | {c['elbo']:.2f} | {c['elbo'] - c['nll']:.2f} "
            f"| {c['approximation']:.2f} | {c['amortization']:.2f} | {c['mi']:.2f} "
            f"| {c['marg_kl']:.2f} | {c['active_units']:.1f} |"
        )
    return lines


def contrasts_table(table: pd.DataFrame, sd: float, t: float) -> list[str]:
    """Every pair of methods at each budget, each against those before it in the plan."""
    lines = [
        "| budget | method | against | difference (NLL) | SE | SE seeds (pooled) "
        "| SE seeds (paired, 2 df) | SE images (paired) | verdict |",
        "|" + "---|" * 9,
    ]
    for budget, g in table.groupby("budget"):
        cells_here = [c for _, c in g.sort_values("rank").iterrows()]
        for i, ref in enumerate(cells_here):
            for c in cells_here[i + 1 :]:
                d = contrast(c, ref, sd, t)
                lines.append(
                    f"| {budget} | {c['method']} | {ref['method']} | {d['value']:+.2f} "
                    f"| {d['se']:.2f} | {d['se_pooled']:.2f} | {fmt(d['se_paired'])} "
                    f"| {d['se_images']:.2f} | {d['verdict']} |"
                )
    return lines


def figure(table: pd.DataFrame, runs: pd.DataFrame, sd: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels = [
        ("nll", "test NLL (AIS, nats)"),
        ("gap", "log p(x) − ELBO (nats)"),
        ("marg_kl", "KL(q(z) ‖ p(z)) (nats)"),
    ]
    for i, (_, g) in enumerate(table.groupby("rank")):
        g = g.sort_values("compute")
        name, color = g["method"].iloc[0], f"C{i}"
        x = g["compute"].to_numpy()
        values = {
            "nll": g["nll"].to_numpy(),
            "gap": (g["elbo"] - g["nll"]).to_numpy(),
            "marg_kl": g["marg_kl"].to_numpy(),
        }
        for ax, (key, _) in zip(axes, panels, strict=True):
            ax.plot(x, values[key], "o-", color=color, label=name)
        band = 2 * sd / np.sqrt(g["seeds"].map(len).to_numpy())
        axes[0].fill_between(x, values["nll"] - band, values["nll"] + band, color=color, alpha=0.15)
        mine = runs[runs["method"] == name]
        axes[0].plot(mine["compute"], -mine["log_px_ais"], ".", color=color, alpha=0.6)
    for ax, (_, label) in zip(axes, panels, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("training compute (ELBO k=1 epochs of FLOPs)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_title("dots: seeds; band: mean ± 2 SE (pooled seed SD)", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    plan = json.loads((HERE / "plan.json").read_text())
    runs = load(plan)
    if runs.empty:
        raise SystemExit(f"no evaluated runs in {RUNS}: run evaluate.py evaluate first")
    table = cells(runs, [m["label"] for m in plan["methods"]])
    sd, df = report.pooled_seed_sd(runs, "log_px_ais")
    t = float(stats.t.ppf(0.975, df)) if df else float("nan")
    n_ais = "/".join(map(str, sorted({len(c) for c in runs["ais_correction"]})))
    n_test = "/".join(map(str, sorted({len(p["log_px"]) for p in runs["per_example"]})))
    code = provenance.code_version().get("git_commit", "unknown")
    text = "\n".join(
        [
            f"Test NLL by AIS (IWAE-5000 on {n_test} test images + AIS − IWAE-5000 on the first "
            f"{n_ais}); seed SEs from the seed SD pooled over all cells: {fmt(sd, 3)} nats, "
            f"{df} degrees of freedom (95% t quantile {t:.2f}); BDMC gap: mean ± SE over every "
            "seed's simulated pairs. Compute: FLOPs of training in ELBO k=1 epochs (plan.json).",
            "",
            *cells_table(table, sd),
            "",
            "Differences (method − reference, NLL; negative: the method is better):",
            "",
            *contrasts_table(table, sd, t),
            "",
            f"Runs: {len(runs)}; table written at commit {code}.",
            "",
        ]
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    figure(table, runs, sd, out / "nll_vs_compute.png")
    print(text)


if __name__ == "__main__":
    main()
