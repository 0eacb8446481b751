"""Collect finished runs from their folders into a table (Markdown + CSV) and comparison figures.

    elbo-lab-report runs/core_mnist/* --out experiments/core_mnist/results
    elbo-lab-report --wandb me/elbo_lab --wandb-group table1 --paper burda_table1 --out results

Everything is read from the run folders (config.json, results.json, metrics.jsonl) or, online,
from the W&B runs that hold the same records, so a table can be rebuilt at any time from the runs
that produced it.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from elbo_lab import runs as runs_lib
from elbo_lab.config import to_train_config
from elbo_lab.errors import UserError
from elbo_lab.runs import PER_EXAMPLE_FILE, read_metrics, read_per_example

# Published test NLLs (nats) to compare with, keyed by (data, model, objective, k).
PAPERS = {
    # Burda, Grosse & Salakhutdinov (2015), Table 1, dynamically binarized MNIST, IWAE-5000,
    # after 3,280 epochs (the "VAE" rows train the k-sample ELBO).
    "burda_table1": {
        **{
            ("mnist", "burda_1l", "elbo", k): v
            for k, v in zip((1, 5, 50), (86.76, 86.47, 86.35), strict=True)
        },
        **{
            ("mnist", "burda_1l", "iwae", k): v
            for k, v in zip((1, 5, 50), (86.76, 85.54, 84.78), strict=True)
        },
        **{
            ("mnist", "burda_2l", "elbo", k): v
            for k, v in zip((1, 5, 50), (85.33, 85.01, 84.78), strict=True)
        },
        **{
            ("mnist", "burda_2l", "iwae", k): v
            for k, v in zip((1, 5, 50), (85.33, 83.89, 82.90), strict=True)
        },
    }
}
PAPER_EPOCHS = {"burda_table1": 3280}
# How each objective is named in the paper's table (its columns).
PAPER_COLUMNS = {"burda_table1": {"elbo": "VAE", "iwae": "IWAE"}}


def run_record(
    source: str,
    config: dict,
    results: dict,
    epochs: list[dict],
    log_px: np.ndarray | None = None,
    code: str | None = None,
) -> dict:
    """One finished run, whether read from its folder or from W&B: where it came from, its config,
    its test results and its training cost.

    Returns a dict with "run_dir" (the folder or W&B URL), "config", "results", "epochs",
    "seconds_per_epoch" (median over epochs after the first, which pays for compilation),
    "examples_per_s" (likewise) and "log_px" (per test image, None if not stored); `epochs` holds
    the per-epoch records.
    """
    timed = epochs[1:] or epochs
    tc = to_train_config(config)  # any config.json format (config.migrate)
    objective = type(tc.objective).registry_name
    k = getattr(tc.objective, "k", None)
    return {
        "run_dir": source,
        "config": config,
        # The run's place in tables, from what was built (a preset's name could mislead).
        "cell": (tc.data.label(), tc.model.label(), objective, k),
        "label": f"{tc.model.label()} {objective} k={k}"
        + ("" if objective in ("elbo", "iwae") else f" {tc.objective.label()}"),
        "seed": tc.seed,
        "code": code,  # code_hash of the session that finished the run; None: not recorded
        "results": results,
        "epochs": len(epochs),
        "seconds_per_epoch": float(np.median([r["train/seconds_per_epoch"] for r in timed])),
        "examples_per_s": float(np.median([r["train/examples_per_s"] for r in timed])),
        "log_px": log_px,
    }


def load_run(run_dir: str | Path) -> dict:
    """One finished run from its folder (config.json, results.json, metrics.jsonl and, if the
    run stored it, test_per_example.npz)."""
    run_dir = Path(run_dir)
    config = runs_lib.read_json(run_dir / runs_lib.CONFIG_FILE)
    results = runs_lib.read_results(run_dir)
    epochs = [r for r in read_metrics(run_dir) if r.get("epoch") is not None]
    per_example = read_per_example(run_dir) or {}
    finished = runs_lib.Provenance(run_dir).finished_by()
    code = finished["code_hash"] if finished else None
    return run_record(str(run_dir), config, results, epochs, per_example.get("log_px"), code)


EPOCH_KEYS = ["epoch", "train/seconds_per_epoch", "train/examples_per_s"]


def wandb_runs(project: str, group: str | None = None, api=None) -> list[dict]:
    """The finished runs of a W&B project ("entity/project"), optionally of one group, oldest
    first. The trainer stores config.json as the W&B config, results.json as the summary and
    the per-image test values as a file, so a run read from W&B gives the same table row and
    paired comparisons as its folder. `api`: a wandb.Api (needs network
    access and a login unless given)."""
    if api is None:
        import wandb

        api = wandb.Api()
    out = []
    for run in api.runs(project, filters={"group": group} if group else None):
        results = dict(run.summary)
        if run.state != "finished" or "test/nll" not in results:
            continue
        by_epoch = {r["epoch"]: r for r in run.scan_history(keys=EPOCH_KEYS)}  # last write wins
        epochs = [by_epoch[e] for e in sorted(by_epoch)]
        config = dict(run.config)
        code = (config.pop("provenance", None) or {}).get("code_hash")  # the trainer logs it
        out.append(run_record(run.url, config, results, epochs, wandb_log_px(run), code))
    return out


def wandb_log_px(run) -> np.ndarray | None:
    """A W&B run's per-image test log p(x) from the file the trainer saved to it, or None.
    W&B answers a query for a file the run lacks with a placeholder of size 0."""
    found = [f for f in run.files(names=[PER_EXAMPLE_FILE]) if f.size > 0]
    if not found:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        found[0].download(root=tmp, replace=True)
        return (read_per_example(tmp) or {}).get("log_px")


def finished_runs(paths: Sequence[str | Path]) -> list[dict]:
    """Every finished run among `paths`, in the given order. A run whose files cannot be read
    (a malformed results.json, a garbage metrics.jsonl line, a config of a component that is not
    registered) is skipped with a warning naming it, so one bad folder does not stop a report."""
    out = []
    for path in paths:
        if not runs_lib.is_finished(path):
            continue
        try:
            out.append(load_run(path))
        except (UserError, OSError, KeyError, ValueError) as e:
            warnings.warn(f"skipped {path}: {e}", stacklevel=2)
    return out


def cell(run: dict) -> tuple[str, str, str, int]:
    """A run's place in a paper's table: (data, model, objective, k), with IWAE k=1 named as
    the ELBO k=1 it is (the same bound, the same trained model)."""
    return canonical(run["cell"])


def canonical(c: tuple) -> tuple:
    data, model, objective, k = c
    return (data, model, "elbo", 1) if (objective, k) == ("iwae", 1) else c


def seed_cells(runs: list[dict]) -> dict[tuple, dict]:
    """The runs of each cell (its seeds, one run per seed: the first found) and their
    aggregates: "nll" (mean over seeds), "se_seeds" (SE of that mean across seeds, None for one
    seed), "n_seeds", "log_px" (per-image mean over seeds, None unless every seed kept it for
    the same images) and "se_images" (SE over images of the seed-mean NLL)."""
    grouped: dict[tuple, dict[int, dict]] = {}
    for run in runs:
        grouped.setdefault(cell(run), {}).setdefault(run["seed"], run)
    out = {}
    for c, by_seed in grouped.items():
        members = [by_seed[s] for s in sorted(by_seed)]
        nll = np.array([r["results"]["test/nll"] for r in members], np.float64)
        arrays = [r["log_px"] for r in members]
        same = all(a is not None for a in arrays) and len({len(a) for a in arrays}) == 1
        log_px = np.mean([a.astype(np.float64) for a in arrays], 0) if same else None
        se_images = (
            float(np.std(log_px, ddof=1) / np.sqrt(len(log_px)))
            if log_px is not None
            else float(np.mean([r["results"]["test/nll_se"] for r in members]))
        )
        out[c] = {
            "runs": members,
            "n_seeds": len(members),
            "nll": float(nll.mean()),
            "se_seeds": float(nll.std(ddof=1) / np.sqrt(len(nll))) if len(nll) > 1 else None,
            "log_px": log_px,
            "se_images": se_images,
            "codes": sorted({r["code"] or "unrecorded" for r in members}),
        }
    return out


def contrast(terms: Sequence[tuple[float, dict]]) -> dict:
    """A combination sum of w * NLL over (w, cell) terms of seed_cells' aggregates.

    Returns {"value", "se_seeds", "se_images", "images_paired"}: se_seeds is the SE across
    seeds, sqrt(sum w^2 se_seeds^2) (the cells' seeds are trained independently), None unless
    every cell has 2 or more seeds; se_images is the evaluation noise alone: paired over test
    images (the SE of the per-image combination of the seed means, which removes the large
    image-to-image variation the cells share) when every cell kept its per-image values for the
    same images, else the cells' image SEs combined as if independent (that overstates it).
    """
    value = sum(w * c["nll"] for w, c in terms)
    se_seeds = None
    if all(c["se_seeds"] is not None for _, c in terms):
        se_seeds = float(np.sqrt(sum((w * c["se_seeds"]) ** 2 for w, c in terms)))
    arrays = [c["log_px"] for _, c in terms]
    paired = all(a is not None for a in arrays) and len({len(a) for a in arrays}) == 1
    if paired:
        per_image = -sum(w * a for (w, _), a in zip(terms, arrays, strict=True))
        se_images = float(np.std(per_image, ddof=1) / np.sqrt(len(per_image)))
    else:
        se_images = float(np.sqrt(sum((w * c["se_images"]) ** 2 for w, c in terms)))
    return {"value": value, "se_seeds": se_seeds, "se_images": se_images, "images_paired": paired}


def orderings(runs: list[dict], paper: str) -> list[dict]:
    """The paper's comparisons between cells, ours beside the paper's, as NLL differences (nats;
    negative: the first named is better): for each model and k > 1, the second objective column
    minus the first (IWAE − VAE), and k − k=1 for each objective (the gain from more samples);
    for each objective and k, every later model minus the first (2 layers − 1 layer). Only
    comparisons whose cells we ran appear. "agrees": whether ours has the paper's sign, and by
    how many standard errors: the seed-level SE where every cell has 2 or more seeds, else the
    image-level one (column "judged_by"). A comparison that is the same after naming IWAE k=1
    as the ELBO k=1 it is appears once."""
    ours = seed_cells(runs)
    ref = PAPERS[paper]
    names = PAPER_COLUMNS[paper]
    first, second = list(names)
    models = list(dict.fromkeys(m for _, m, _, _ in ref))
    comparisons = []  # (label, {cell: weight})
    for data, model, objective, k in ref:
        if objective == second and k > 1:
            comparisons.append(
                (
                    f"{model} k={k}: {names[second]} − {names[first]}",
                    {(data, model, second, k): 1, (data, model, first, k): -1},
                )
            )
    for data, model, objective, k in ref:
        if k > 1:
            comparisons.append(
                (
                    f"{model} {names[objective]}: k={k} − k=1",
                    {(data, model, objective, k): 1, (data, model, objective, 1): -1},
                )
            )
    for data, model, objective, k in ref:
        if model != models[0]:
            comparisons.append(
                (
                    f"{names[objective]} k={k}: {model} − {models[0]}",
                    {(data, model, objective, k): 1, (data, models[0], objective, k): -1},
                )
            )
    out, seen = [], set()
    for label, weights in comparisons:
        merged: dict[tuple, float] = {}
        for c, w in weights.items():
            merged[canonical(c)] = merged.get(canonical(c), 0) + w
        key = frozenset((c, w) for c, w in merged.items() if w)
        if not key or key in seen or not all(c in ours for c in merged):
            continue
        seen.add(key)
        con = contrast([(w, ours[c]) for c, w in merged.items() if w])
        paper_value = sum(w * ref[c] for c, w in weights.items())
        judged = "seeds" if con["se_seeds"] is not None else "images"
        se = con["se_seeds"] if judged == "seeds" else con["se_images"]
        z = con["value"] / se if se > 0 else float("nan")
        if abs(z) < 2:
            agrees = f"not settled ({z:+.1f} SE)"
        else:
            same = np.sign(con["value"]) == np.sign(paper_value)
            agrees = f"{'yes' if same else 'NO'} ({z:+.1f} SE)"
        out.append(
            {
                "comparison": label,
                "paper": paper_value,
                "ours": con["value"],
                "seeds": min(ours[c]["n_seeds"] for c in merged),
                "se_seeds": con["se_seeds"],
                "se_images": con["se_images"],
                "images": "paired" if con["images_paired"] else "unpaired",
                "judged_by": judged,
                "agrees": agrees,
            }
        )
    return out


def rows(runs: list[dict], paper: str | None = None) -> list[dict]:
    """One row of numbers a run: test ladder, NLL, gaps, active units, cost and budget; with
    `paper`, also the paper's NLL for the same cell, ours minus the paper's, and its budget."""
    out = []
    for run in runs:
        r = run["results"]
        data, model, objective, k = run["cell"]
        ks = sorted(
            int(k.split("_")[-1]) for k in r if k.startswith("test/iwae_") and "_se" not in k
        )
        row = {
            "run": run["label"],
            "data": data,
            "epochs": run["epochs"],
            "seed": run["seed"],
            "test_examples": int(r["test/n_examples"]),
        }
        if paper is not None:
            ref = PAPERS[paper].get(run["cell"])
            row["paper_nll"] = ref
            row["paper_epochs"] = PAPER_EPOCHS[paper]
        row.update({"nll": r["test/nll"], "nll_se": r["test/nll_se"]})
        if paper is not None:
            row["nll_minus_paper"] = None if ref is None else r["test/nll"] - ref
        row["elbo"] = r["test/elbo"]
        row.update({f"iwae_{k}": r[f"test/iwae_{k}"] for k in ks if k > 1})
        row.update(
            {
                "gap_elbo": r["test/gap_elbo"],
                "gap_elbo_se": r["test/gap_elbo_se"],
                "kl": r["test/kl"],
                "active_units": int(r["test/active_units"]),
                "active_by_layer": "+".join(
                    str(int(r[f"test/active_units_layer{i}"]))
                    for i in range(1, 1 + sum(k.startswith("test/active_units_layer") for k in r))
                ),
                "s_per_epoch": run["seconds_per_epoch"],
                "examples_per_s": run["examples_per_s"],
                "code": (run["code"] or "unrecorded")[:12],
            }
        )
        out.append(row)
    return out


def markdown(table: list[dict], digits: int = 2) -> str:
    """A Markdown table of `table`'s rows (the union of their columns, in first-seen order)."""
    cols = list(dict.fromkeys(k for row in table for k in row))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in cols) + " |" for row in table]
    return "\n".join(lines) + "\n"


def paper_table(runs: list[dict], paper: str) -> str:
    """Markdown in the paper's own layout: a row per (data, model, k), for each objective the
    paper's NLL, ours (the mean over seeds, ± the SE across seeds and, in brackets, the SE over
    test images) and ours minus the paper's; cells with no finished run say so, and our cells
    the paper lacks (another data set) get rows with the paper's columns empty. The IWAE k=1
    cell is the ELBO k=1 model (one training, shown in both columns, as in the paper)."""
    ours = seed_cells(runs)
    columns = PAPER_COLUMNS[paper]
    head = ["data", "model", "k"]
    for name in columns.values():
        head += [f"{name} paper", f"{name} ours", f"{name} ours − paper"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = [(d, m, k) for d, m, _, k in [*PAPERS[paper], *ours]]  # ours: also data it lacks
    for data, model, k in dict.fromkeys(keys):
        cells = [data, model, str(k)]
        for objective in columns:
            ref = PAPERS[paper].get((data, model, objective, k))
            agg = ours.get(canonical((data, model, objective, k)))
            cells.append("" if ref is None else f"{ref:.2f}")
            if agg is None:
                cells += ["not run", ""]
                continue
            diff = "" if ref is None else f"{agg['nll'] - ref:+.2f}"
            if agg["se_seeds"] is None:
                text = f"{agg['nll']:.2f} ± {agg['se_images']:.2f}"
            else:
                text = (
                    f"{agg['nll']:.2f} ± {agg['se_seeds']:.2f} [{agg['se_images']:.2f}] "
                    f"({agg['n_seeds']} seeds)"
                )
            cells += [text, diff]
        lines.append("| " + " | ".join(cells) + " |")
    epochs = sorted({r["epochs"] for r in runs})
    seeds = sorted({r["seed"] for r in runs})
    ours_budget = f"{'/'.join(map(str, epochs))} epochs per cell, " + (
        f"seed {seeds[0]}"
        if len(seeds) == 1
        else f"seeds {', '.join(map(str, seeds))} (a cell without a count: one seed, the first)"
    )
    lines.append(
        f"\nTest NLL in nats (lower is better). Budget: ours {ours_budget}; the paper "
        f"{PAPER_EPOCHS[paper]:,} epochs. One seed: ± is one SE over test images. Several "
        "seeds: the mean over seeds ± the SE across seeds (training and evaluation noise), "
        "[in brackets] the SE over test images of the seed-mean (evaluation noise alone).\n"
    )
    codes = sorted({r["code"] or "unrecorded" for r in runs})
    if len(codes) > 1:
        lines.append(
            f"Note: these runs were finished by {len(codes)} code versions "
            f"({', '.join(c[:12] for c in codes)}; column `code` of the runs table).\n"
        )
    return "\n".join(lines) + "\n"


def write_csv(table: list[dict], path: Path) -> None:
    cols = list(dict.fromkeys(k for row in table for k in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols)
        writer.writeheader()
        writer.writerows(table)


def ladder_comparison(runs: list[dict]):
    """The test bound against K (log axis) for every run, log p(x) = IWAE-K_max at the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(run["cell"][1] for run in runs))
    fig, axes = plt.subplots(
        1, len(models), figsize=(6 * len(models), 4), sharey=True, squeeze=False
    )
    for run in runs:
        ax = axes[0, models.index(run["cell"][1])]
        r = run["results"]
        ks = sorted(
            int(k.split("_")[-1]) for k in r if k.startswith("test/iwae_") and "_se" not in k
        )
        means = [r[f"test/iwae_{k}"] for k in ks]
        errs = [2 * r[f"test/iwae_{k}_se"] for k in ks]
        ax.errorbar(ks, means, yerr=errs, marker="o", capsize=3, label=run["label"])
    for ax, model in zip(axes[0], models, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("K (importance samples at test time; K=1: ELBO)")
        ax.set_title(f"{model}: ELBO ≤ IWAE-K ≤ log p(x)")
        ax.legend(fontsize=8, loc="lower right")
    axes[0, 0].set_ylabel("test bound, nats per example (±2 SE)")
    fig.tight_layout()
    return fig


def against_k(table: list[dict], column: str, ylabel: str, paper: str | None = None):
    """`column` against the training k, one line per (data, model, objective), k on a log axis.

    With `paper` (and column "nll"), a second panel shows the paper's values in the same colours,
    on its own y-axis: the budgets differ, so the orderings are what the two panels compare."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for row in table:
        model, objective, k = row["run"].split()[:3]
        lines.setdefault((row["data"], model, objective), []).append((int(k[2:]), row[column]))
    several_data = len({d for d, _, _ in lines}) > 1
    panels = [("ours", lines, "/".join(f"{e:,}" for e in sorted({r["epochs"] for r in table})))]
    if paper is not None and column == "nll":
        ref: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
        for (d, m, o, k), v in PAPERS[paper].items():
            if (d, m, o) in lines:
                ref.setdefault((d, m, o), []).append((k, v))
        panels.append(("paper", ref, f"{PAPER_EPOCHS[paper]:,}"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    colours = {key: f"C{i}" for i, key in enumerate(sorted(lines))}
    ticks = sorted({k for _, panel, _ in panels for points in panel.values() for k, _ in points})
    for ax, (who, panel, epochs) in zip(axes[0], panels, strict=True):
        for key, points in sorted(panel.items()):
            ks, values = zip(*sorted(points), strict=True)
            label = " ".join(key if several_data else key[1:])
            ax.plot(ks, values, marker="o", color=colours[key], label=label)
        ax.set_xscale("log")
        ax.set_xticks(ticks, [str(k) for k in ticks])
        ax.minorticks_off()
        ax.set_xlabel("k (samples per example in training)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        if len(panels) > 1:
            ax.set_title(f"{who} ({epochs} epochs)")
    fig.tight_layout()
    return fig


def write_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    title: str = "",
    paper: str | None = None,
    extra_runs: Sequence[dict] = (),
) -> list[dict]:
    """results.md, results.csv, ladder.png, nll_vs_k.png and active_units_vs_k.png in `out`,
    from the finished runs among run_dirs and `extra_runs` (run_record dicts, e.g. wandb_runs'),
    with the paper's numbers beside ours if given (and its orderings, also as orderings.csv)."""
    import matplotlib.pyplot as plt

    runs = finished_runs(run_dirs) + list(extra_runs)
    if not runs:
        raise SystemExit(
            f"no finished runs (with results.json) among {list(map(str, run_dirs))} "
            "or from W&B: train them first, or point at their folders"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = rows(runs, paper)
    header = f"# {title}\n\n" if title else ""
    if paper is not None:
        header += paper_table(runs, paper)
        order = orderings(runs, paper)
        if order:
            write_csv(order, out / "orderings.csv")
            header += (
                "\nThe paper's orderings (test NLL differences in nats; negative: the first named "
                "is better), on seed means. se_seeds: the SE across seeds (with 2 or more seeds "
                "per cell; what the verdict uses then); se_images: evaluation noise alone, paired "
                "over the same test images where every cell kept them (unpaired: combined as if "
                "independent, which overstates it).\n\n" + markdown(order)
            )
        header += "\nEvery number of every run:\n\n"
    folders = "\n".join(f"- `{r['run_dir']}`" for r in runs)
    (out / "results.md").write_text(
        header + markdown(table) + "\nnll = -log p(x) by IWAE-K_max on the test split (nats); "
        "gaps = log p(x) - ELBO; s_per_epoch = median wall time of an epoch.\n\nRuns:\n"
        + folders
        + "\n"
    )
    write_csv(table, out / "results.csv")
    figs = {
        "ladder": ladder_comparison(runs),
        "nll_vs_k": against_k(table, "nll", "test NLL, nats (IWAE-5000)", paper),
        "active_units_vs_k": against_k(table, "active_units", "active units (of the latent units)"),
    }
    for name, fig in figs.items():
        fig.savefig(out / f"{name}.png", dpi=120)
        plt.close(fig)
    return table


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="elbo-lab-report", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", help="run folders (those without results.json are skipped)")
    p.add_argument("--out", required=True, help="folder for results.md, results.csv, ladder.png")
    p.add_argument("--title", default="")
    p.add_argument("--paper", choices=sorted(PAPERS), help="put a paper's numbers beside ours")
    p.add_argument("--wandb", metavar="ENTITY/PROJECT", help="also the project's finished runs")
    p.add_argument("--wandb-group", help="only this W&B group (with --wandb)")
    args = p.parse_args(argv)
    if not args.runs and not args.wandb:
        p.error("give run folders, --wandb ENTITY/PROJECT, or both")
    try:
        online = wandb_runs(args.wandb, args.wandb_group) if args.wandb else []
        table = write_report(args.runs, args.out, args.title, args.paper, online)
    except OSError as e:
        p.exit(2, f"elbo-lab-report: error: cannot write the report to {args.out}: {e}\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
