"""Table and figure of the hmc_vs_iwae experiment, read from its run folders only.

    python experiments/hmc_vs_iwae/report.py [--runs DIR] [--out DIR]   # defaults below

Reads every finished run (done.json) under --runs (default runs/hmc_vs_iwae): config.json (what
was trained), results.json (the test ladder: NLL = -IWAE-5000, active units) and metrics.jsonl
(per-epoch train and validation records). Writes results.csv, results.md and hmc_vs_iwae.png into
--out. Time per epoch is the median over epochs 2.. (epoch 1 includes compilation); if
benchmarks/results/hmc_objective.json holds the same setting, its estimate is shown next to it.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

from elbo_lab.report import load_run
from elbo_lab.runs import read_metrics

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "benchmarks" / "results" / "hmc_objective.json"
COLUMNS = [
    "method", "objective", "k", "num_steps", "num_leapfrog", "epochs", "test_nll", "test_nll_se",
    "test_elbo", "test_iwae_5", "test_kl", "active_units", "test_examples", "s_per_epoch",
    "bench_s_per_epoch", "train_minutes", "train_accept", "train_step_size", "train_log_joint_gain",
    "ais_examples", "ais_nll", "ais_nll_se", "ais_minus_iwae_5000", "ais_minus_iwae_5000_se",
]  # fmt: skip


def label(obj: dict) -> str:
    if obj["name"] == "hmc":
        return (
            f"HMC T={obj['num_steps']} L={obj['num_leapfrog']} (enc {obj['encoder']} k={obj['k']})"
        )
    return f"{obj['name'].upper()} k={obj['k']}"


def setting(obj: dict) -> tuple:
    """What determines a step's cost, to match runs with benchmark rows."""
    if obj["name"] == "hmc":
        return ("hmc", obj["k"], obj["num_steps"], obj["num_leapfrog"])
    return (obj["name"], obj["k"], None, None)


def benchmark_epochs() -> dict[tuple, float]:
    """Seconds per epoch estimated by benchmarks/hmc_objective.py, by setting (if it was run)."""
    if not BENCHMARK.exists():
        return {}
    rows = json.loads(BENCHMARK.read_text())["rows"]
    return {
        (r["objective"], r["k"], r.get("num_steps"), r.get("num_leapfrog")): r["epoch_seconds"]
        for r in rows
    }


def read_ais(run: Path) -> dict:
    """AIS log p(x) from `elbo-lab-eval` (<run>/eval/test.json), if it was run: the NLL and the
    paired difference AIS - IWAE-5000 on the same images (how loose IWAE-5000 is there)."""
    path = run / "eval" / "test.json"
    ais = json.loads(path.read_text()).get("ais") if path.exists() else None
    if not ais:
        return {}
    return {
        "ais_examples": ais["n"],
        "ais_nll": -ais["log_px"]["mean"],
        "ais_nll_se": ais["log_px"]["se"],
        "ais_minus_iwae_5000": ais["minus_iwae_kmax"]["mean"],
        "ais_minus_iwae_5000_se": ais["minus_iwae_kmax"]["se"],
    }


def read_run(run: Path, bench: dict[tuple, float]) -> dict:
    loaded = load_run(run)  # config, results and per-epoch cost, as every report reads a run
    cfg, results = loaded["config"], loaded["results"]
    epochs = [r for r in read_metrics(run) if r.get("epoch") is not None]
    seconds = [r["train/seconds_per_epoch"] for r in epochs]
    obj, last = cfg["objective"], epochs[-1]
    return {
        "method": label(obj),
        "objective": obj["name"],
        "k": obj["k"],
        "num_steps": obj["num_steps"] if obj["name"] == "hmc" else "",
        "num_leapfrog": obj["num_leapfrog"] if obj["name"] == "hmc" else "",
        "epochs": results["epochs"],
        "test_nll": results["test/nll"],
        "test_nll_se": results["test/nll_se"],
        "test_elbo": results["test/elbo"],
        "test_iwae_5": results.get("test/iwae_5", ""),
        "test_kl": results["test/kl"],
        "active_units": results["test/active_units"],
        "test_examples": int(results["test/n_examples"]),
        "s_per_epoch": loaded["seconds_per_epoch"],
        "bench_s_per_epoch": bench.get(setting(obj), ""),
        "train_minutes": sum(seconds) / 60,
        "train_accept": last.get("train/accept", ""),
        "train_step_size": last.get("train/step_size", ""),
        "train_log_joint_gain": last.get("train/log_joint_gain", ""),
        **read_ais(run),
        # for the figure: validation NLL (IWAE-50, 400 images) against cumulative training time
        "_curve": (
            [sum(seconds[: i + 1]) / 60 for i in range(len(seconds))],
            [r["val/nll"] for r in epochs],
        ),
    }


def fmt(v, digits=2) -> str:
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def ais_cells(r: dict) -> str:
    if "ais_nll" not in r:
        return " | "
    return (
        f"{r['ais_nll']:.2f} ± {r['ais_nll_se']:.2f} ({r['ais_examples']}) | "
        f"{r['ais_minus_iwae_5000']:.2f} ± {r['ais_minus_iwae_5000_se']:.2f}"
    )


def markdown(rows: list[dict]) -> str:
    head = (
        "| method | epochs | test NLL (IWAE-5000) | test ELBO | active units | s / epoch (run) |"
        " s / epoch (benchmark) | train min | accept | step size | log p(x,z_T) - log p(x,z_0) |"
        " AIS NLL (n) | AIS - IWAE-5000 (paired) |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['epochs']} | {r['test_nll']:.2f} ± {r['test_nll_se']:.2f} | "
            f"{r['test_elbo']:.2f} | {r['active_units']:.0f} | {r['s_per_epoch']:.1f} | "
            f"{fmt(r['bench_s_per_epoch'], 1)} | {r['train_minutes']:.1f} | "
            f"{fmt(r['train_accept'])} | {fmt(r['train_step_size'], 3)} | "
            f"{fmt(r['train_log_joint_gain'])} | {ais_cells(r)} |"
        )
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    names = [r["method"] for r in rows]
    ypos = range(len(rows))
    nll = [r["test_nll"] for r in rows]
    axes[0].barh(ypos, nll, xerr=[r["test_nll_se"] for r in rows], label="IWAE-5000")
    ais = [(i, r["ais_nll"]) for i, r in enumerate(rows) if "ais_nll" in r]
    if ais:
        axes[0].scatter([v for _, v in ais], [i for i, _ in ais], color="k", zorder=3, label="AIS")
        axes[0].legend(loc="lower right")
    axes[0].set_xlim(min(nll + [v for _, v in ais]) - 3, max(nll) + 2)
    axes[0].set_xlabel("test NLL, nats (± 1 SE over images)")
    axes[1].barh(ypos, [r["s_per_epoch"] for r in rows], label="in the run")
    bench = [(i, r["bench_s_per_epoch"]) for i, r in enumerate(rows) if r["bench_s_per_epoch"]]
    if bench:
        axes[1].scatter(
            [v for _, v in bench], [i for i, _ in bench], color="k", zorder=3, label="benchmark"
        )
        axes[1].legend(loc="lower right")
    axes[1].set_xlabel("seconds per epoch (one core)")
    for ax in axes[:2]:
        ax.set_yticks(list(ypos), names if ax is axes[0] else [""] * len(rows))
        ax.invert_yaxis()
    for r in rows:
        axes[2].plot(*r["_curve"], marker="o", label=r["method"])
    axes[2].set_xlabel("training time, minutes")
    axes[2].set_ylabel("validation NLL (IWAE-50, 400 images)")
    axes[2].legend(fontsize=8)
    fig.suptitle(
        f"HMC-refined training vs ELBO / IWAE, burda_1l on MNIST, {rows[0]['epochs']} epochs"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "hmc_vs_iwae")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = p.parse_args()
    bench = benchmark_epochs()
    runs = sorted(d for d in args.runs.iterdir() if (d / "done.json").exists())
    if not runs:
        raise SystemExit(f"no finished runs under {args.runs}")
    order = {"elbo": 0, "iwae": 1, "hmc": 2}
    rows = sorted(
        (read_run(d, bench) for d in runs),
        key=lambda r: (order.get(r["objective"], 3), r["k"], str(r["num_steps"]).zfill(4)),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    header = (
        "# HMC-refined training vs ELBO / IWAE (configs/experiment/hmc_vs_iwae.yaml)\n\n"
        "Produced by `experiments/hmc_vs_iwae/run.sh` (the commands are in the config's header),\n"
        f"then `python experiments/hmc_vs_iwae/report.py`. Runs: `{args.runs.relative_to(ROOT)}`.\n"
        f"Test NLL on the first {rows[0]['test_examples']} test images. s / epoch (run): median\n"
        "over epochs 2.. of the run itself (one core, shared with other jobs: noisy);\n"
        "s / epoch (benchmark): benchmarks/hmc_objective.py's ms/step x steps per epoch.\n"
        "accept, step size and the log-joint gain are the last epoch's train means.\n"
        "AIS NLL: `elbo-lab-eval` (AIS from the prior, 500 temperatures, 16 chains) on the\n"
        "first n test images, where it was run; AIS - IWAE-5000: paired, on those images.\n\n"
    )
    (args.out / "results.md").write_text(header + markdown(rows))
    figure(rows, args.out / "hmc_vs_iwae.png")
    print(markdown(rows))
    print(f"wrote {args.out}/results.csv, results.md, hmc_vs_iwae.png")


if __name__ == "__main__":
    main()
