"""Gradient SNR against the number of samples K (Rainforth et al. 2018; Tucker et al. 2019).

    python experiments/gradient_snr/snr.py compute RUN_DIR [RUN_DIR ...] --out results/snr.json
    python experiments/gradient_snr/snr.py plot results/snr.json --out results/

`compute`: for each run folder's latest checkpoint, the encoder's and the decoder's gradient SNR
(diagnostics.gradient_snr: R gradients with independent keys at the fixed parameters, one fixed
minibatch of the first --examples training images binarized once) of IWAE-K with the
reparameterised, STL and DReG encoder gradients, for K on a log grid; writes every summary and
the code version. `plot`: the figure (SNR median over parameters against K, log-log, one panel
per checkpoint and half, the theory's slopes as guides) and a table of the slopes fitted by least
squares on log SNR against log K with their standard errors (from the fit's residuals over the K
grid).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import jax
import numpy as np

from elbo_lab import objectives, provenance, runs
from elbo_lab.diagnostics import gradient_snr

ESTIMATORS = ("reparam", "stl", "dreg")
THEORY = {  # slope of log SNR in log K (Rainforth et al. 2018; Tucker et al. 2019)
    ("decoder", "reparam"): 0.5,
    ("encoder", "reparam"): -0.5,
    ("encoder", "dreg"): 0.5,
}


def compute(run_dirs: list[str], ks: list[int], repeats: int, examples: int, seed: int) -> dict:
    out = {"ks": ks, "repeats": repeats, "examples": examples, "seed": seed, "checkpoints": []}
    for run_dir in run_dirs:
        loaded = runs.load_run(run_dir)
        key = jax.random.key(seed)
        x = loaded.splits.train[:examples]
        if loaded.splits.dynamic:
            x = np.asarray(jax.random.bernoulli(jax.random.fold_in(key, 0), x), np.float32)
        rows = []
        for k in ks:
            for estimator in ESTIMATORS:
                objective = objectives.REGISTRY.get("iwae")(k=k, estimator=estimator)
                built = objective.build(loaded.model)
                t0 = time.perf_counter()
                found = gradient_snr(
                    objectives.gradient_fn(built),
                    loaded.params,
                    jax.random.split(jax.random.fold_in(key, k), repeats),
                    loaded.model.encoder_keys,
                    built.init(),
                    x,
                )
                seconds = time.perf_counter() - t0
                rows.append({"k": k, "estimator": estimator, **found, "seconds": seconds})
                print(
                    f"{run_dir} epoch {loaded.epoch} K={k} {estimator}: encoder "
                    f"{found['encoder']['snr_median']:.3g}, decoder "
                    f"{found['decoder']['snr_median']:.3g} ({seconds:.0f} s)",
                    flush=True,
                )
        out["checkpoints"].append({"run_dir": run_dir, "epoch": loaded.epoch, "rows": rows})
    return out


def slope(ks, values) -> tuple[float, float]:
    """Least-squares slope of log(values) on log(ks) and its standard error."""
    x, y = np.log(np.asarray(ks, float)), np.log(np.asarray(values, float))
    a = np.vstack([x, np.ones_like(x)]).T
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    s2 = resid @ resid / max(len(x) - 2, 1)
    return float(coef[0]), float(math.sqrt(s2 / np.sum((x - x.mean()) ** 2)))


def plot(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    ks = result["ks"]
    fig, axes = plt.subplots(
        2, len(result["checkpoints"]), figsize=(5.5 * len(result["checkpoints"]), 8), squeeze=False
    )
    lines = [
        "| checkpoint | half | estimator | fitted slope | SE | theory |",
        "|---|---|---|---|---|---|",
    ]
    for col, ck in enumerate(result["checkpoints"]):
        for row, half in enumerate(("encoder", "decoder")):
            ax = axes[row][col]
            for estimator in ESTIMATORS:
                values = [r[half]["snr_median"] for r in ck["rows"] if r["estimator"] == estimator]
                lo = [r[half]["snr_q10"] for r in ck["rows"] if r["estimator"] == estimator]
                hi = [r[half]["snr_q90"] for r in ck["rows"] if r["estimator"] == estimator]
                (line,) = ax.loglog(ks, values, "o-", label=estimator)
                ax.fill_between(ks, lo, hi, color=line.get_color(), alpha=0.12)
                b, se = slope(ks, values)
                theory = THEORY.get((half, estimator))
                lines.append(
                    f"| epoch {ck['epoch']} | {half} | {estimator} | {b:+.3f} | {se:.3f} | "
                    f"{'' if theory is None else f'{theory:+.1f}'} |"
                )
            for s, style in ((0.5, ":"), (-0.5, "--")):
                anchor = np.median([r[half]["snr_median"] for r in ck["rows"] if r["k"] == ks[0]])
                ax.loglog(
                    ks,
                    anchor * (np.asarray(ks) / ks[0]) ** s,
                    "k" + style,
                    lw=0.8,
                    label=f"K^{s:+.1f}",
                )
            ax.set_title(f"{half}, epoch {ck['epoch']}")
            ax.set_xlabel("K (IWAE samples)")
            ax.set_ylabel("median SNR over parameters (band: 10-90%)")
            ax.legend(fontsize=8)
    fig.suptitle(
        f"gradient SNR of IWAE-K, {result['repeats']} gradients per point, "
        f"minibatch of {result['examples']}"
    )
    fig.tight_layout()
    fig.savefig(out / "snr_vs_k.png", dpi=110)
    (out / "slopes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compute")
    c.add_argument("run_dirs", nargs="+")
    c.add_argument("--ks", type=int, nargs="+", default=[1, 3, 10, 30, 100, 300, 1000])
    c.add_argument("--repeats", type=int, default=50)
    c.add_argument("--examples", type=int, default=20)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", type=Path, required=True)
    q = sub.add_parser("plot")
    q.add_argument("result", type=Path)
    q.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.command == "compute":
        result = compute(args.run_dirs, args.ks, args.repeats, args.examples, args.seed)
        result.update(code=provenance.code_version(), command=" ".join(["python", *sys.argv]))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    else:
        plot(json.loads(args.result.read_text()), args.out)


if __name__ == "__main__":
    main()
