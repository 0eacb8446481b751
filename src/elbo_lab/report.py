"""Collect runs into one tidy table and write every report as a view of it.

    elbo-lab-report runs/core_mnist/* --out experiments/core_mnist/results
    elbo-lab-report --wandb me/elbo_lab --wandb-group table1 --paper burda_table1 --out results

`runs_table` reads each finished run (its folder, or the W&B run that holds the same records)
into one row of a pandas DataFrame: the flattened config (`config.<key>`), the code version that
finished it (`code`), its results (`test/...`), the last epoch's training means (`last/train/...`)
and the last gradient SNR logged (`last/snr/...`),
every `elbo-lab-eval` summary (`eval/<split>/<evaluator>/...`), and, as object columns, its
training curve and per-example arrays. Runs whose configs differ only by seed are one cell
(`cell`); `seed_cells` aggregates each cell over its seeds. The Markdown and CSV tables, a
paper's layout and orderings, and the figures are views of these two tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from elbo_lab import runs as runs_lib
from elbo_lab.config import to_dict, to_train_config
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
# Training means every objective logs; the others (e.g. HMC's acceptance rate) are shown.
COMMON_TRAIN = {"loss", "elbo", "iwae", "kl", "recon", "grad_norm", "ess"}
COMMON_TRAIN |= {"seconds_per_epoch", "examples_per_s"}


def to_dict_defaults(entry) -> dict:
    """{field: default} of a registry entry's schema (a field without a default: None)."""
    return {
        f.name: None if f.default is dataclasses.MISSING else f.default
        for f in dataclasses.fields(entry)
    }


def run_record(
    source: str,
    config: dict,
    results: dict,
    epochs: list[dict],
    per_example: dict | None = None,
    code: str | None = None,
    evals: dict | None = None,
) -> dict:
    """One finished run as one row of the tidy table, whether read from its folder or from W&B.

    `epochs`: its per-epoch records; `per_example`: arrays by name ("log_px": each test image's
    log p(x); "eval/<split>/<evaluator>/<name>": elbo-lab-eval's); `code`: the code_hash of the
    session that finished it (None: "unrecorded"); `evals`: elbo-lab-eval summaries by split.
    s_per_epoch and examples_per_s are medians over the epochs after the first (which pays for
    compilation)."""
    tc = to_train_config(config)  # any config.json format (config.migrate)
    full = to_dict(tc)
    objective = type(tc.objective).registry_name
    k = getattr(tc.objective, "k", None)
    timed = epochs[1:] or epochs
    seconds = np.array([r["train/seconds_per_epoch"] for r in epochs], np.float64)
    defaults = to_dict_defaults(tc.objective)
    variant = {  # the objective's fields other than k that are not at their defaults
        f: v for f, v in full["objective"].items() if f not in ("name", "k") and v != defaults[f]
    }
    row = {
        "run_dir": source,
        "data": tc.data.label(),
        "model": tc.model.label(),  # from what was built (a preset's name could mislead)
        "objective": objective,
        "k": k,
        "variant": ",".join(f"{f}={v}" for f, v in variant.items()),  # the objective's others
        "seed": tc.seed,
        "cell": runs_lib.cell_key(full),
        "code": code or "unrecorded",
        "epochs": len(epochs),
        "s_per_epoch": float(np.median([r["train/seconds_per_epoch"] for r in timed])),
        "examples_per_s": float(np.median([r["train/examples_per_s"] for r in timed])),
        "train_minutes": float(seconds.sum() / 60),
        **{f"config.{key}": v for key, v in runs_lib.flat(full).items()},
        **results,
        **{f"last/{key}": v for key, v in epochs[-1].items() if key.startswith("train/")},
        **{f"last/{key}": v for key, v in last_snr(epochs).items()},
        "curve": {
            "minutes": np.cumsum(seconds) / 60,
            "val_nll": np.array([r.get("val/nll", np.nan) for r in epochs], np.float64),
        },
        "per_example": per_example or {},
    }
    row["run"] = f"{row['model']} {objective} k={k}" + (f" {row['variant']}" if variant else "")
    for split, summary in (evals or {}).items():
        row.update(runs_lib.eval_numbers(summary, split))
    return row


def last_snr(epochs: list[dict]) -> dict:
    """The gradient SNR summaries (snr/...) of the last epoch that logged them ({} if none)."""
    logged = [r for r in epochs if any(key.startswith("snr/") for key in r)]
    return {k: v for k, v in logged[-1].items() if k.startswith("snr/")} if logged else {}


def load_run(run_dir: str | Path) -> dict:
    """One finished run from its folder: config.json, results.json, metrics.jsonl, provenance,
    test_per_example.npz and elbo-lab-eval's eval/<split>.json and their per-example arrays."""
    run_dir = Path(run_dir)
    config = runs_lib.read_json(run_dir / runs_lib.CONFIG_FILE)
    results = runs_lib.read_results(run_dir)
    epochs = [r for r in read_metrics(run_dir) if r.get("epoch") is not None]
    per_example = dict(read_per_example(run_dir) or {})
    evals = {}
    for path in sorted((run_dir / runs_lib.EVAL_DIR).glob("*.json")):
        evals[path.stem] = runs_lib.read_json(path)
        arrays = read_per_example(path.parent, f"{path.stem}_per_example.npz") or {}
        per_example.update({f"eval/{path.stem}/{name}": a for name, a in arrays.items()})
    finished = runs_lib.Provenance(run_dir).finished_by()
    code = finished["code_hash"] if finished else None
    return run_record(str(run_dir), config, results, epochs, per_example, code, evals)


EPOCH_KEYS = ["epoch", "train/seconds_per_epoch", "train/examples_per_s"]


def wandb_runs(project: str, group: str | None = None, api=None) -> list[dict]:
    """The finished runs of a W&B project ("entity/project"), optionally of one group, oldest
    first. The trainer stores config.json as the W&B config, results.json as the summary and
    the per-image test values as a file, so a run read from W&B gives the same table row and
    paired comparisons as its folder. `api`: a wandb.Api (needs network access and a login
    unless given)."""
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
        out.append(run_record(run.url, config, results, epochs, wandb_per_example(run), code))
    return out


def wandb_per_example(run) -> dict:
    """A W&B run's per-example test arrays from the file the trainer saved to it ({} if none).
    W&B answers a query for a file the run lacks with a placeholder of size 0."""
    found = [f for f in run.files(names=[PER_EXAMPLE_FILE]) if f.size > 0]
    if not found:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        found[0].download(root=tmp, replace=True)
        return dict(read_per_example(tmp) or {})


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


def runs_table(records: Sequence[dict]) -> pd.DataFrame:
    """The tidy table: one row per run (run_record's), in the given order."""
    return pd.DataFrame(list(records))


def _mean_se(values: np.ndarray) -> tuple[float, float | None]:
    """The mean of per-seed values and its SE across seeds (None for one seed)."""
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None
    return float(values.mean()), se


def _seed_mean_log_px(members: pd.DataFrame) -> np.ndarray | None:
    """Per test image, the mean over seeds of log p(x); None unless every seed kept its values
    for the same number of images."""
    arrays = [p.get("log_px") for p in members["per_example"]]
    if any(a is None for a in arrays) or len({len(a) for a in arrays}) != 1:
        return None
    return np.mean([a.astype(np.float64) for a in arrays], 0)


def seed_cells(table: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (runs whose configs differ only by seed), indexed by `cell`, in the order
    cells first appear; one run per seed (the first found). Columns: data, model, objective
    (IWAE k=1 named ELBO), k, variant, seeds, n_seeds, epochs, codes; "nll" (mean over seeds),
    "se_seeds" (its SE across seeds, None for one seed), "log_px" (per-image mean over seeds, or
    None), "se_images" (the SE over test images of the seed-mean NLL: evaluation noise alone);
    and for every other numeric result (test/..., eval/..., last/..., s_per_epoch) the mean over
    seeds and, as "<column> se_seeds", its SE across seeds."""
    first = table.drop_duplicates(["cell", "seed"])
    numeric = [
        c
        for c in first.columns
        if c.startswith(("test/", "eval/", "last/")) or c in ("s_per_epoch", "train_minutes")
    ]
    out = []
    for key, members in first.groupby("cell", sort=False):
        members = members.sort_values("seed")
        head = members.iloc[0]
        nll, se_seeds = _mean_se(members["test/nll"].to_numpy(np.float64))
        log_px = _seed_mean_log_px(members)
        if log_px is not None:
            se_images = float(np.std(log_px, ddof=1) / np.sqrt(len(log_px)))
        else:
            se_images = float(members["test/nll_se"].mean())
        row = {
            "cell": key,
            "data": head["data"],
            "model": head["model"],
            "objective": "elbo"
            if (head["objective"], head["k"]) == ("iwae", 1)
            else head["objective"],
            "k": head["k"],
            "variant": head["variant"],
            "seeds": tuple(int(s) for s in members["seed"]),
            "n_seeds": len(members),
            "epochs": "/".join(map(str, sorted(set(members["epochs"])))),
            "codes": sorted(set(members["code"])),
            "nll": nll,
            "se_seeds": se_seeds,
            "log_px": log_px,
            "se_images": se_images,
        }
        for c in numeric:
            values = pd.to_numeric(members[c], errors="coerce").to_numpy(np.float64)
            if np.isfinite(values).all():
                row[c], row[f"{c} se_seeds"] = _mean_se(values)
        out.append(row)
    return pd.DataFrame(out).set_index("cell")


def pooled_seed_sd(table: pd.DataFrame, column: str) -> tuple[float, int]:
    """(the seed-to-seed SD of `column` pooled over the table's cells, its degrees of freedom):
    each cell's sum of squared deviations from its mean, summed, over sum(n_i - 1). With two or
    three seeds a cell's own SE has too few degrees of freedom to judge by; pooling assumes the
    seed-to-seed spread is alike across cells (their own SEs let a reader check). (nan, 0) when
    no cell has two seeds."""
    groups = [g[column].to_numpy(np.float64) for _, g in table.groupby("cell")]
    groups = [g for g in groups if len(g) > 1]
    df = sum(len(g) - 1 for g in groups)
    if not df:
        return float("nan"), 0
    return float(np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / df)), df


def paper_cells(cells: pd.DataFrame, paper: str) -> dict[tuple, pd.Series]:
    """The cells that are cells of the paper's table, by (data, model, objective, k). Two cells
    at one place of the table (e.g. runs with different learning rates) are a UserError naming
    how they differ: report them separately."""
    out: dict[tuple, pd.Series] = {}
    for key, c in cells.iterrows():
        if c["objective"] not in PAPER_COLUMNS[paper] or c["variant"]:
            continue
        place = (c["data"], c["model"], c["objective"], c["k"])
        if place in out:
            diff = runs_lib.config_differences(json.loads(out[place].name), json.loads(key))
            raise UserError(
                f"two cells are {' '.join(map(str, place))} in {paper}'s table; they differ in "
                f"{'; '.join(diff)}. Report them separately (give each its own run folders)."
            )
        out[place] = c
    return out


def canonical(place: tuple) -> tuple:
    """A place in a paper's table with IWAE k=1 named as the ELBO k=1 it is."""
    data, model, objective, k = place
    return (data, model, "elbo", 1) if (objective, k) == ("iwae", 1) else place


def contrast(terms: Sequence[tuple[float, pd.Series]]) -> dict:
    """A combination sum of w * NLL over (w, cell) terms of seed_cells' rows.

    Returns {"value", "se_seeds", "se_images", "images_paired"}: se_seeds is the SE across
    seeds, sqrt(sum w^2 se_seeds^2) (the cells' seeds are trained independently), None unless
    every cell has 2 or more seeds; se_images is the evaluation noise alone: paired over test
    images (the SE of the per-image combination of the seed means, which removes the large
    image-to-image variation the cells share) when every cell kept its per-image values for the
    same images, else the cells' image SEs combined as if independent (that overstates it).
    """
    value = sum(w * c["nll"] for w, c in terms)
    se_seeds = None
    if all(pd.notna(c["se_seeds"]) for _, c in terms):
        se_seeds = float(np.sqrt(sum((w * c["se_seeds"]) ** 2 for w, c in terms)))
    arrays = [c["log_px"] for _, c in terms]
    paired = all(a is not None for a in arrays) and len({len(a) for a in arrays}) == 1
    if paired:
        per_image = -sum(w * a for (w, _), a in zip(terms, arrays, strict=True))
        se_images = float(np.std(per_image, ddof=1) / np.sqrt(len(per_image)))
    else:
        se_images = float(np.sqrt(sum((w * c["se_images"]) ** 2 for w, c in terms)))
    return {"value": value, "se_seeds": se_seeds, "se_images": se_images, "images_paired": paired}


def paper_comparisons(paper: str) -> list[tuple[str, dict[tuple, int]]]:
    """The paper's comparisons as (label, {place: weight}): for each model and k > 1, the second
    objective column minus the first (IWAE − VAE); k − k=1 for each objective (the gain from more
    samples); for each objective and k, every later model minus the first (2 layers − 1)."""
    ref = PAPERS[paper]
    names = PAPER_COLUMNS[paper]
    first, second = list(names)
    models = list(dict.fromkeys(m for _, m, _, _ in ref))
    out = []
    for data, model, objective, k in ref:
        if objective == second and k > 1:
            label = f"{model} k={k}: {names[second]} − {names[first]}"
            out.append((label, {(data, model, second, k): 1, (data, model, first, k): -1}))
    for data, model, objective, k in ref:
        if k > 1:
            label = f"{model} {names[objective]}: k={k} − k=1"
            out.append((label, {(data, model, objective, k): 1, (data, model, objective, 1): -1}))
    for data, model, objective, k in ref:
        if model != models[0]:
            label = f"{names[objective]} k={k}: {model} − {models[0]}"
            out.append(
                (label, {(data, model, objective, k): 1, (data, models[0], objective, k): -1})
            )
    return out


def verdict(value: float, se: float, paper_value: float) -> str:
    """Whether ours has the paper's sign, by how many SE; under 2 SE: not settled."""
    z = value / se if se > 0 else float("nan")
    if abs(z) < 2:
        return f"not settled ({z:+.1f} SE)"
    same = np.sign(value) == np.sign(paper_value)
    return f"{'yes' if same else 'NO'} ({z:+.1f} SE)"


def orderings(table: pd.DataFrame, paper: str) -> list[dict]:
    """The paper's comparisons between cells (paper_comparisons), ours beside the paper's, as NLL
    differences of seed means (nats; negative: the first named is better). Only comparisons
    whose cells we ran appear, and one that is the same after naming IWAE k=1 as the ELBO k=1 it
    is appears once. "agrees" judges ours by the seed-level SE where every cell has 2 or more
    seeds, else by the image-level one (column "judged_by")."""
    ours = paper_cells(seed_cells(table), paper)
    ref = PAPERS[paper]
    out, seen = [], set()
    for label, weights in paper_comparisons(paper):
        merged: dict[tuple, float] = {}
        for place, w in weights.items():
            merged[canonical(place)] = merged.get(canonical(place), 0) + w
        merged = {place: w for place, w in merged.items() if w}
        key = frozenset(merged.items())
        if not key or key in seen or not all(place in ours for place in merged):
            continue
        seen.add(key)
        con = contrast([(w, ours[place]) for place, w in merged.items()])
        paper_value = sum(w * ref[place] for place, w in weights.items())
        judged = "seeds" if con["se_seeds"] is not None else "images"
        se = con["se_seeds"] if judged == "seeds" else con["se_images"]
        out.append(
            {
                "comparison": label,
                "paper": paper_value,
                "ours": con["value"],
                "seeds": min(ours[place]["n_seeds"] for place in merged),
                "se_seeds": con["se_seeds"],
                "se_images": con["se_images"],
                "images": "paired" if con["images_paired"] else "unpaired",
                "judged_by": judged,
                "agrees": verdict(con["value"], se, paper_value),
            }
        )
    return out


def _ladder_ks(run: pd.Series) -> list[int]:
    """The K of every IWAE-K rung a run's test results hold."""
    return sorted(
        int(c.split("_")[-1])
        for c, v in run.items()
        if c.startswith("test/iwae_") and not c.endswith("_se") and pd.notna(v)
    )


def _eval_columns(run: pd.Series) -> dict:
    """elbo-lab-eval's headline numbers on the test split, where it was run: AIS NLL, AIS minus
    the run's largest IWAE-K on the same images (paired), the BDMC gap."""
    names = {
        "ais_nll": ("eval/test/ais/log_px/mean", -1),
        "ais_nll_se": ("eval/test/ais/log_px/se", 1),
        "ais_examples": ("eval/test/ais/n", 1),
        "ais_minus_iwae": ("eval/test/ais/minus_iwae_kmax/mean", 1),
        "ais_minus_iwae_se": ("eval/test/ais/minus_iwae_kmax/se", 1),
        "bdmc_gap": ("eval/test/bdmc/gap/mean", 1),
    }
    return {n: sign * run[c] for n, (c, sign) in names.items() if pd.notna(run.get(c))}


def rows(table: pd.DataFrame, paper: str | None = None) -> list[dict]:
    """The runs table's headline view, a dict per run: test ladder, NLL, gaps, active units,
    objective-specific training means (train_...), elbo-lab-eval's AIS/BDMC numbers where run,
    cost, budget and code; with `paper`, also the paper's NLL for the same cell, ours minus the
    paper's, and its budget."""
    out = []
    for _, run in table.iterrows():
        row = {
            "run": run["run"],
            "data": run["data"],
            "epochs": run["epochs"],
            "seed": run["seed"],
            "test_examples": int(run["test/n_examples"]),
        }
        if paper is not None:
            ref = PAPERS[paper].get((run["data"], run["model"], run["objective"], run["k"]))
            row["paper_nll"] = None if run["variant"] else ref
            row["paper_epochs"] = PAPER_EPOCHS[paper]
        row.update({"nll": run["test/nll"], "nll_se": run["test/nll_se"]})
        if paper is not None:
            row["nll_minus_paper"] = None if row["paper_nll"] is None else run["test/nll"] - ref
        row["elbo"] = run["test/elbo"]
        row.update({f"iwae_{k}": run[f"test/iwae_{k}"] for k in _ladder_ks(run) if k > 1})
        layers = sorted(c for c in run.index if c.startswith("test/active_units_layer"))
        row.update(
            {
                "gap_elbo": run["test/gap_elbo"],
                "gap_elbo_se": run["test/gap_elbo_se"],
                "kl": run["test/kl"],
                "active_units": int(run["test/active_units"]),
                "active_by_layer": "+".join(str(int(run[c])) for c in layers if pd.notna(run[c])),
            }
        )
        row.update(
            {
                f"train_{c.split('/')[-1]}": run[c]
                for c in run.index
                if c.startswith("last/train/")
                and c.split("/")[-1] not in COMMON_TRAIN
                and pd.notna(run[c])
            }
        )
        row.update(_eval_columns(run))
        row.update(
            {
                "s_per_epoch": run["s_per_epoch"],
                "examples_per_s": run["examples_per_s"],
                "code": run["code"][:12],
            }
        )
        out.append(row)
    return out


def cells_rows(cells: pd.DataFrame) -> list[dict]:
    """The seed-level view, a dict per cell: NLL mean over seeds with both SEs, and the seed
    means of the ELBO, its gap and the active units."""
    out = []
    for _, c in cells.iterrows():
        row = {
            "data": c["data"],
            "model": c["model"],
            "objective": c["objective"],
            "k": c["k"],
            "variant": c["variant"],
            "epochs": c["epochs"],
            "seeds": ",".join(map(str, c["seeds"])),
            "nll": c["nll"],
            "nll_se_seeds": c["se_seeds"],
            "nll_se_images": c["se_images"],
        }
        for name in ("test/elbo", "test/gap_elbo", "test/active_units"):
            row[name.split("/")[1]] = c.get(name)
            row[f"{name.split('/')[1]}_se_seeds"] = c.get(f"{name} se_seeds")
        row["codes"] = ",".join(code[:12] for code in c["codes"])
        out.append(row)
    return out


def markdown(table: list[dict], digits: int = 2) -> str:
    """A Markdown table of `table`'s rows (the union of their columns, in first-seen order)."""
    cols = list(dict.fromkeys(k for row in table for k in row))

    def fmt(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.{digits}f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in cols) + " |" for row in table]
    return "\n".join(lines) + "\n"


def _nll_text(c: pd.Series) -> str:
    """A cell's NLL as the paper table shows it: ± its SE across seeds [SE over images]."""
    if pd.isna(c["se_seeds"]):
        return f"{c['nll']:.2f} ± {c['se_images']:.2f}"
    return f"{c['nll']:.2f} ± {c['se_seeds']:.2f} [{c['se_images']:.2f}] ({c['n_seeds']} seeds)"


def paper_table(table: pd.DataFrame, paper: str) -> str:
    """Markdown in the paper's own layout (a pivot of seed_cells): a row per (data, model, k),
    for each objective the paper's NLL, ours (the mean over seeds, ± the SE across seeds and, in
    brackets, the SE over test images) and ours minus the paper's; cells with no finished run
    say so, and our cells the paper lacks (another data set) get rows with the paper's columns
    empty. The IWAE k=1 cell is the ELBO k=1 model (one training, shown in both columns, as in
    the paper)."""
    ours = paper_cells(seed_cells(table), paper)
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
            c = ours.get(canonical((data, model, objective, k)))
            cells.append("" if ref is None else f"{ref:.2f}")
            if c is None:
                cells += ["not run", ""]
            else:
                cells += [_nll_text(c), "" if ref is None else f"{c['nll'] - ref:+.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    epochs = sorted(set(table["epochs"]))
    seeds = sorted(set(table["seed"]))
    ours_budget = f"{'/'.join(map(str, epochs))} epochs per cell, " + (
        f"seed {seeds[0]}"
        if len(seeds) == 1
        else f"seeds {', '.join(map(str, seeds))} (a cell without a count: one seed)"
    )
    lines.append(
        f"\nTest NLL in nats (lower is better). Budget: ours {ours_budget}; the paper "
        f"{PAPER_EPOCHS[paper]:,} epochs. One seed: ± is one SE over test images. Several "
        "seeds: the mean over seeds ± the SE across seeds (training and evaluation noise), "
        "[in brackets] the SE over test images of the seed-mean (evaluation noise alone).\n"
    )
    return "\n".join(lines) + "\n"


def code_note(table: pd.DataFrame) -> str:
    """A line saying so when the runs were finished by more than one code version."""
    codes = sorted(set(table["code"]))
    if len(codes) < 2:
        return ""
    return (
        f"Note: these runs were finished by {len(codes)} code versions "
        f"({', '.join(c[:12] for c in codes)}; column `code` of the runs table).\n\n"
    )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ladder_comparison(table: pd.DataFrame):
    """The test bound against K (log axis) for every run, log p(x) = IWAE-K_max at the right."""
    plt = _pyplot()
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(
        1, len(models), figsize=(6 * len(models), 4), sharey=True, squeeze=False
    )
    for _, run in table.iterrows():
        ax = axes[0, models.index(run["model"])]
        ks = _ladder_ks(run)
        means = [run[f"test/iwae_{k}"] for k in ks]
        errs = [2 * run[f"test/iwae_{k}_se"] for k in ks]
        label = run["run"] + (f" seed {run['seed']}" if table["seed"].nunique() > 1 else "")
        ax.errorbar(ks, means, yerr=errs, marker="o", capsize=3, label=label)
    for ax, model in zip(axes[0], models, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("K (importance samples at test time; K=1: ELBO)")
        ax.set_title(f"{model}: ELBO ≤ IWAE-K ≤ log p(x)")
        ax.legend(fontsize=7, loc="lower right")
    axes[0, 0].set_ylabel("test bound, nats per example (±2 SE over images)")
    fig.tight_layout()
    return fig


def against_k(cells: pd.DataFrame, column: str, ylabel: str, paper: str | None = None):
    """`column` of seed_cells (its mean over seeds, ±2 SE across seeds where a cell has several)
    against the training k, one line per (data, model, objective, variant), k on a log axis.

    With `paper` (and column "nll"), a second panel shows the paper's values in the same
    colours, on its own y-axis: the budgets differ, so the orderings are what the panels
    compare."""
    plt = _pyplot()
    se_column = "se_seeds" if column == "nll" else f"{column} se_seeds"
    lines: dict[tuple, list[tuple[int, float, float]]] = {}
    for _, c in cells.iterrows():
        key = (c["data"], c["model"], c["objective"], c["variant"])
        se = c.get(se_column)
        lines.setdefault(key, []).append((c["k"], c[column], 2 * se if pd.notna(se) else 0.0))
    several_data = len({key[0] for key in lines}) > 1
    panels = [("ours", lines, cells["epochs"].iloc[0])]
    if paper is not None and column == "nll":
        ref: dict[tuple, list[tuple[int, float, float]]] = {}
        for (d, m, o, k), v in PAPERS[paper].items():
            if (d, m, o, "") in lines:
                ref.setdefault((d, m, o, ""), []).append((k, v, 0.0))
        panels.append(("paper", ref, f"{PAPER_EPOCHS[paper]:,}"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    colours = {key: f"C{i}" for i, key in enumerate(sorted(lines))}
    ticks = sorted({p[0] for _, panel, _ in panels for points in panel.values() for p in points})
    for ax, (who, panel, epochs) in zip(axes[0], panels, strict=True):
        for key, points in sorted(panel.items()):
            ks, values, errs = zip(*sorted(points), strict=True)
            label = " ".join(str(p) for p in (key if several_data else key[1:]) if p)
            ax.errorbar(
                ks, values, yerr=errs, marker="o", capsize=3, color=colours[key], label=label
            )
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


def validation_curves(table: pd.DataFrame):
    """Validation NLL against cumulative training time, one line per run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for _, run in table.iterrows():
        curve = run["curve"]
        label = run["run"] + (f" seed {run['seed']}" if table["seed"].nunique() > 1 else "")
        ax.plot(curve["minutes"], curve["val_nll"], marker=".", label=label)
    ax.set_xlabel("training time, minutes (as measured in each run)")
    ax.set_ylabel("validation NLL, nats")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_csv(records: list[dict] | pd.DataFrame, path: Path) -> None:
    pd.DataFrame(records).to_csv(path, index=False)


def scalar_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The runs table without its object columns (curves, per-example arrays), for CSV."""
    return table.drop(columns=["curve", "per_example"])


def write_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    title: str = "",
    paper: str | None = None,
    extra_runs: Sequence[dict] = (),
) -> list[dict]:
    """In `out`, from the finished runs among run_dirs and `extra_runs` (run_record rows, e.g.
    wandb_runs'): results.md (with `paper`: its layout and orderings first; then the cells over
    seeds and every run's numbers), results.csv (every run's headline numbers), cells.csv (the
    seed-level view), runs.csv (the whole tidy table), orderings.csv (with `paper`), and the
    figures ladder.png, nll_vs_k.png, active_units_vs_k.png and validation.png."""
    table = runs_table(finished_runs(run_dirs) + list(extra_runs))
    if table.empty:
        raise UserError(
            f"no finished runs (with done.json and results.json) among "
            f"{list(map(str, run_dirs))} or from W&B: train them first, or point at their folders"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = seed_cells(table)
    headline = rows(table, paper)
    text = f"# {title}\n\n" if title else ""
    text += code_note(table)
    if paper is not None:
        text += paper_table(table, paper)
        order = orderings(table, paper)
        if order:
            write_csv(order, out / "orderings.csv")
            text += (
                "\nThe paper's orderings (test NLL differences in nats; negative: the first named "
                "is better), on seed means. se_seeds: the SE across seeds (with 2 or more seeds "
                "per cell; what the verdict uses then); se_images: evaluation noise alone, paired "
                "over the same test images where every cell kept them (unpaired: combined as if "
                "independent, which overstates it).\n\n" + markdown(order)
            )
    text += (
        "\nEach cell over its seeds (mean; _se_seeds: SE across seeds, empty for one seed; "
        "nll_se_images: SE over test images of the seed-mean NLL):\n\n"
        + markdown(cells_rows(cells))
    )
    text += (
        "\nEvery number of every run:\n\n" + markdown(headline) + "\nnll = -log p(x) by "
        "IWAE-K_max on the test split (nats); gaps = log p(x) - ELBO; s_per_epoch = median wall "
        "time of an epoch; train_* = the last epoch's training means; ais_* / bdmc_gap: "
        "elbo-lab-eval on the test split, where it was run.\n\nRuns:\n"
        + "\n".join(f"- `{r}`" for r in table["run_dir"])
        + "\n"
    )
    (out / "results.md").write_text(text)
    write_csv(headline, out / "results.csv")
    write_csv(cells_rows(cells), out / "cells.csv")
    write_csv(scalar_columns(table), out / "runs.csv")
    figs = {
        "ladder": ladder_comparison(table),
        "nll_vs_k": against_k(cells, "nll", "test NLL, nats (IWAE-K_max)", paper),
        "active_units_vs_k": against_k(cells, "test/active_units", "active units"),
        "validation": validation_curves(table),
    }
    plt = _pyplot()
    for name, fig in figs.items():
        fig.savefig(out / f"{name}.png", dpi=120)
        plt.close(fig)
    return headline


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="elbo-lab-report", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", help="run folders (those without results.json are skipped)")
    p.add_argument("--out", required=True, help="folder for results.md, the CSVs and figures")
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
    except UserError as e:
        p.exit(2, f"elbo-lab-report: error: {e}\n")
    except OSError as e:
        p.exit(2, f"elbo-lab-report: error: cannot write the report to {args.out}: {e}\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
