"""The objectives table (issue 15): every method at m * k = 64 against IWAE-64, seed-level.

    python experiments/objectives/table.py experiments/objectives/objectives/* \
        --out experiments/objectives/results

Reads the finished run folders (elbo_lab.report: one row per run, cells over seeds) and writes
`table.md` (per method: test NLL = IWAE-5000 on all test images, mean over seeds with its SE
across seeds and over images; test ELBO; active units; the last logged encoder and decoder
gradient SNR; seconds per epoch; the published 3,280-epoch number where there is one) and, for
every method against IWAE-64, the difference of seed means with its SEs and a verdict, and
`nll.png` (each seed's NLL per method).

With two seeds a cell's own SE across seeds has one degree of freedom, too few to judge by. The
verdict uses the seed variance pooled over all cells (each cell's sample variance, averaged:
sum(n_i - 1) degrees of freedom; it assumes the seed-to-seed spread is alike across methods, which
the per-cell SEs in the table let a reader check): SE of a difference = s_pooled sqrt(1/n_a +
1/n_b), and a difference is "settled" when it exceeds the two-sided 95% t quantile times that SE.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from elbo_lab import provenance, report

# Rainforth et al. (2018) as quoted by pythae's reproduction, 3,280 epochs.
PUBLISHED = {"miwae m=8 k=8": 84.97, "piwae m=8 k=8": 84.46, "ciwae beta=0.05": 84.57}
REFERENCE = "iwae"  # the label of IWAE-64 with the plain gradient
ORDER = [  # run.sh's order; other cells follow
    "elbo",
    "iwae",
    "iwae estimator=stl",
    "iwae estimator=dreg",
    "rws estimator=wake",
    "miwae m=8 k=8",
    "piwae m=8 k=8",
    "ciwae beta=0.05",
    "renyi alpha=0.5",
]


def label(cell: pd.Series) -> str:
    """e.g. "iwae", "iwae estimator=dreg", "miwae m=8 k=8" (from the cell's config: every field
    of the objective but a reparam estimator; k shown unless it is 64)."""
    flat = json.loads(cell.name)  # the cell's key: its flattened config
    objective = {k.split(".", 1)[1]: v for k, v in flat.items() if k.startswith("objective.")}
    fields = [
        f"{f}={v}"
        for f, v in objective.items()
        if f not in ("name", "k") and not (f == "estimator" and v == "reparam")
    ]
    k = [] if objective["k"] == 64 else [f"k={objective['k']}"]
    return " ".join([objective["name"], *fields, *k])


def ordered(cells: pd.DataFrame) -> dict[str, pd.Series]:
    """{label: cell} in ORDER, then any others."""
    found = {label(c): c for _, c in cells.iterrows()}
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda item: rank.get(item[0], len(ORDER))))


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def table(cells: pd.DataFrame, runs: pd.DataFrame) -> str:
    by_label = ordered(cells)
    lines = [
        "| method | seeds | test NLL (± SE seeds) [SE images] | test ELBO | active units "
        "| SNR encoder | SNR decoder | s / epoch | published (3,280 epochs) |",
        "|" + "---|" * 9,
    ]
    for name, c in by_label.items():
        lines.append(
            f"| {name} | {','.join(map(str, c['seeds']))} "
            f"| {c['nll']:.2f} (± {fmt(c['se_seeds'])}) [{c['se_images']:.2f}] "
            f"| {-c['test/elbo']:.2f} | {c['test/active_units']:.1f} "
            f"| {fmt(c.get('last/snr/encoder/snr_median'), 3)} "
            f"| {fmt(c.get('last/snr/decoder/snr_median'), 3)} "
            f"| {c['s_per_epoch']:.1f} | {fmt(PUBLISHED.get(name))} |"
        )
    ref = by_label.get(REFERENCE)
    if ref is None:
        return "\n".join(lines)
    sd, df = report.pooled_seed_sd(runs, "test/nll")
    t = float(stats.t.ppf(0.975, df)) if df else float("nan")
    lines += [
        "",
        f"Against IWAE-64 (method − IWAE-64, nats; pooled seed SD {fmt(sd, 3)} with {df} degrees "
        f"of freedom, 95% t quantile {fmt(t)}):",
        "",
        "| method | difference | SE (pooled seeds) | SE (this pair's seeds) | SE (paired images) "
        "| verdict |",
        "|" + "---|" * 6,
    ]
    for name, c in by_label.items():
        if name == REFERENCE:
            continue
        d = report.contrast([(1, c), (-1, ref)])
        se = sd * np.sqrt(1 / c["n_seeds"] + 1 / ref["n_seeds"])
        if not np.isfinite(se) or abs(d["value"]) <= t * se:
            verdict = "not settled"
        else:
            verdict = "worse than IWAE-64" if d["value"] > 0 else "better than IWAE-64"
        lines.append(
            f"| {name} | {d['value']:+.2f} | {fmt(se)} | {fmt(d['se_seeds'])} "
            f"| {d['se_images']:.2f} | {verdict} |"
        )
    return "\n".join(lines)


def figure(runs: pd.DataFrame, cells: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_label = ordered(cells)
    names = list(by_label)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    for y, c in enumerate(by_label.values()):
        seeds = runs[runs["cell"] == c.name]["test/nll"].to_numpy(np.float64)
        ax.plot(seeds, [y] * len(seeds), "o", color="C0", alpha=0.6)
        if c["se_seeds"] is not None and np.isfinite(c["se_seeds"]):
            ax.errorbar(c["nll"], y, xerr=2 * c["se_seeds"], fmt="|", color="k", capsize=4)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("test NLL (IWAE-5000, nats): each seed; bar: mean ± 2 SE over seeds")
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    runs = report.runs_table(report.finished_runs(args.runs))
    if runs.empty:
        raise SystemExit(f"no finished runs among the {len(args.runs)} paths given")
    cells = report.seed_cells(runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    code = provenance.code_version()
    codes = ", ".join(sorted(set(runs["code"])))
    text = (
        f"{table(cells, runs)}\n\nRuns: {len(runs)}; finished by code {codes} (table written "
        f"at commit {code.get('git_commit', 'unknown')}).\n"
    )
    (out / "table.md").write_text(text)
    figure(runs, cells, out / "nll.png")
    print(text)


if __name__ == "__main__":
    main()
