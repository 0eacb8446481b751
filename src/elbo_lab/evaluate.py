"""`elbo-lab-eval`: how tight is a trained model's bound? The ladder, AIS, BDMC, gaps, ELBO surgery.

    elbo-lab-eval "run_dir='runs/core_mnist/objective.k=5,objective=iwae'"   # all, test split
    elbo-lab-eval "run_dir='<run>'" split=valid examples=1000 ais.examples=0 logger=none

(Run folders' names hold '=' and ',': quote the value for Hydra's override parser, as above.)

Loads the run folder's latest checkpoint and writes `<run_dir>/eval/<split>.json` (or `out`), a
markdown table next to it (`.md`) and the ladder figure (`.png`); the same numbers go to
`<run_dir>/eval/<split>/metrics.jsonl` and W&B (offline by default) through RunLogger, in a folder
of its own per split so neither the training metrics nor another split's evaluation are touched.
Also callable from Python: `run(EvaluateConfig(run_dir=...)) -> dict`.

What each section estimates (every number with its standard error over examples):
  ladder   ELBO <= IWAE-k <= log p(x) ~ IWAE-K_max on `examples` examples (estimators.evaluate).
  ais      log p(x) by AIS on the first `ais.examples` of them, with the ladder on the same subset
           and the paired difference AIS - IWAE-K_max.
  bdmc     forward/reverse AIS bounds on `bdmc.examples` pairs (x, z) simulated from the model.
  gaps     approximation and amortization gaps on the first `gaps.examples` examples; log p(x) is
           the AIS estimate where AIS ran on them, else IWAE-K_max (the JSON says which).
  surgery  average KL = I_q(n; z) + KL(q(z) || p(z)) over `surgery.examples` training examples
           (dynamically binarized datasets: binarized once with the evaluation seed).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf

from elbo_lab import ais as ais_lib
from elbo_lab import estimators, figures, gaps, surgery, train
from elbo_lab.cli import CONFIG_DIR
from elbo_lab.config import LOGGERS, WANDB_MODES, ConfigError, LoggerConfig, check, to_dataclass
from elbo_lab.data import DataError
from elbo_lab.logging import RunLogger

SPLITS = ("test", "valid", "train")


# The terms of the gap decomposition (gaps.inference_gaps), in the order they are reported.
GAP_TERMS = (
    "log_px",
    "elbo_q",
    "elbo_qstar",
    "inference_gap",
    "approximation_gap",
    "amortization_gap",
)


@dataclass(frozen=True)
class AISConfig:
    examples: int | None = 100  # the first n evaluated examples; None: all; 0: no AIS
    chains: int = 16
    temperatures: int = 500
    schedule: str = "sigmoid"  # sigmoid | linear
    init: str = "prior"  # the path's start: prior p(z) | q (the encoder's q(z | x))
    num_leapfrog: int = 10
    step_size: float = 0.05  # initial, then adapted towards target_accept along the path
    target_accept: float = 0.65
    adapt_rate: float = 0.05  # log step size moves by rate x (acceptance - target) per temperature
    examples_per_chunk: int = 25  # examples per jitted call (x chains rows per matmul)


@dataclass(frozen=True)
class BDMCConfig:
    examples: int = 100  # simulated (x, z) pairs; 0: no BDMC. AIS settings from `ais`.


@dataclass(frozen=True)
class GapsConfig:
    examples: int = 100  # the first n evaluated examples; 0: no gap decomposition
    steps: int = 2000  # Adam steps fitting each example's q*
    lr: float = 0.01  # cosine-decayed to 0 over the steps
    train_samples: int = 10  # samples per ELBO gradient
    init_samples: int = 1000  # encoder samples giving q*'s starting mean and std
    eval_samples: int = 5000  # samples per ELBO[q] and ELBO[q*] estimate


@dataclass(frozen=True)
class SurgeryConfig:
    examples: int | None = None  # training examples in q(z); None: all; 0: no ELBO surgery
    samples_per_example: int = 1
    components_per_chunk: int = 8192  # mixture components per matmul
    examples_per_chunk: int = 1000  # z samples' examples per jitted call


@dataclass(frozen=True)
class EvaluateConfig:
    run_dir: str | None = None  # required: a run folder of `elbo-lab`
    split: str = "test"  # test | valid | train
    examples: int | None = None  # the first n examples of the split; None: all
    ks: list[int] = field(default_factory=lambda: [1, 5, 50, 5000])  # max = log p(x)
    rows_per_chunk: int = 5000
    seed: int = 0
    epoch: int | None = None  # checkpoint; None: the latest
    data_root: str | None = None  # None: the root recorded in the run
    out: str | None = None  # JSON path; None: <run_dir>/eval/<split>.json
    progress: bool = True
    ais: AISConfig = field(default_factory=AISConfig)
    bdmc: BDMCConfig = field(default_factory=BDMCConfig)
    gaps: GapsConfig = field(default_factory=GapsConfig)
    surgery: SurgeryConfig = field(default_factory=SurgeryConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


def to_evaluate_config(cfg: DictConfig) -> EvaluateConfig:
    """Validate a composed config and return it as a frozen EvaluateConfig."""
    ec: EvaluateConfig = to_dataclass(cfg, EvaluateConfig)
    a, g, s = ec.ais, ec.gaps, ec.surgery
    check(ec.run_dir is not None, "run_dir is required: elbo-lab-eval run_dir=<a run folder>")
    check(Path(ec.run_dir).is_dir(), f"run_dir {ec.run_dir!r} is not a folder")
    check(ec.split in SPLITS, f"unknown split {ec.split!r}; valid: {', '.join(SPLITS)}")
    check(ec.examples is None or ec.examples >= 1, "examples must be >= 1 (or null: all)")
    check(len(ec.ks) >= 1 and all(k >= 1 for k in ec.ks), "ks must be positive K values")
    check(all(max(ec.ks) % k == 0 for k in ec.ks), f"ks={ec.ks}: every K must divide the largest")
    check(ec.rows_per_chunk >= 1, "rows_per_chunk must be >= 1")
    check(a.examples is None or a.examples >= 0, "ais.examples must be >= 0 (0: no AIS)")
    check(a.chains >= 1 and a.temperatures >= 1, "ais.chains and ais.temperatures must be >= 1")
    check(a.schedule in ais_lib.SCHEDULES, f"ais.schedule: valid: {', '.join(ais_lib.SCHEDULES)}")
    check(a.init in ais_lib.BASES, f"ais.init: valid: {', '.join(ais_lib.BASES)}")
    check(a.num_leapfrog >= 1 and a.step_size > 0, "ais.num_leapfrog >= 1, ais.step_size > 0")
    check(0 < a.target_accept < 1, "ais.target_accept must lie in (0, 1)")
    check(a.adapt_rate >= 0, "ais.adapt_rate must be >= 0 (0: a fixed step size)")
    check(a.examples_per_chunk >= 1, "ais.examples_per_chunk must be >= 1")
    check(ec.bdmc.examples >= 0, "bdmc.examples must be >= 0 (0: no BDMC)")
    check(g.examples >= 0, "gaps.examples must be >= 0 (0: no gap decomposition)")
    check(g.steps >= 1 and g.lr > 0, "gaps.steps >= 1 and gaps.lr > 0")
    check(min(g.train_samples, g.init_samples, g.eval_samples) >= 2, "gaps.*_samples must be >= 2")
    check(s.examples is None or s.examples >= 0, "surgery.examples must be >= 0 (0: none)")
    check(s.samples_per_example >= 1, "surgery.samples_per_example must be >= 1")
    check(min(s.components_per_chunk, s.examples_per_chunk) >= 1, "surgery chunks must be >= 1")
    lg = ec.logger
    check(lg.name in LOGGERS, f"unknown logger {lg.name!r}; valid: {', '.join(LOGGERS)}")
    check(lg.mode in WANDB_MODES, f"logger.mode must be one of {', '.join(WANDB_MODES)}")
    return ec


def _stat(values) -> dict[str, float]:
    mean, se = estimators.mean_se(values)
    return {"mean": mean, "se": se}


def _subset_ladder(per: dict[str, np.ndarray], ks, n: int) -> dict[str, float]:
    """The ladder summary (iwae_<k>, log_px, with _se) of the first n examples' estimates."""
    out = {}
    for k in ks:
        out[f"iwae_{k}"], out[f"iwae_{k}_se"] = estimators.mean_se(per[f"iwae_{k}"][:n])
    out["log_px"], out["log_px_se"] = out[f"iwae_{max(ks)}"], out[f"iwae_{max(ks)}_se"]
    return out


def simulate(model, params, key: jax.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n pairs (x [n, X] binary, z [n, D]) ~ p(z) p(x | z): z is an exact posterior sample of x."""
    k_z, k_x = jax.random.split(key)
    z = jax.vmap(lambda k: model.sample_prior(params, k))(jax.random.split(k_z, n))
    probs = jax.vmap(lambda zz: model.decode_mean(params, zz))(z)
    x = jax.random.bernoulli(k_x, probs).astype(jnp.float32)
    return np.asarray(x), np.asarray(z)


def run(cfg: EvaluateConfig) -> dict:
    """Evaluate the run in cfg.run_dir; write JSON, markdown and figure; return the results."""
    loaded = train.load_run(cfg.run_dir, cfg.epoch, data_root=cfg.data_root)
    model, params, splits = loaded.model, loaded.state.params, loaded.splits
    key = jax.random.key(cfg.seed)
    k_ladder, k_ais, k_bdmc, k_gaps, k_surgery = (jax.random.fold_in(key, i) for i in range(5))
    x = getattr(splits, cfg.split)
    if cfg.split == "train" and splits.dynamic:
        x = np.asarray(jax.random.bernoulli(jax.random.fold_in(key, 5), x), np.float32)
    x = x if cfg.examples is None else x[: cfg.examples]
    ks = sorted(set(cfg.ks))
    a = cfg.ais
    ais_settings = ais_lib.AISSettings(
        num_temps=a.temperatures,
        schedule=a.schedule,
        base=a.init,
        chains=a.chains,
        num_leapfrog=a.num_leapfrog,
        step_size=a.step_size,
        target_accept=a.target_accept,
        adapt_rate=a.adapt_rate,
        examples_per_chunk=a.examples_per_chunk,
    )
    results: dict = {
        "run_dir": str(cfg.run_dir),
        "checkpoint_epoch": loaded.epoch,
        "split": cfg.split,
        "config": dataclasses.asdict(cfg),
        "seconds": {},
    }

    t0 = time.perf_counter()
    summary, per = estimators.evaluate(
        params,
        model,
        x,
        k_ladder,
        ks=ks,
        rows_per_chunk=cfg.rows_per_chunk,
        desc=cfg.split,
        progress=cfg.progress,
    )
    results["ladder"] = summary
    results["seconds"]["ladder"] = time.perf_counter() - t0
    plot_summary, ais_band, plot_n = summary, None, x.shape[0]

    n_ais = x.shape[0] if a.examples is None else min(a.examples, x.shape[0])
    ais_px = None
    if n_ais:
        t0 = time.perf_counter()
        out = ais_lib.ais(params, model, x[:n_ais], k_ais, ais_settings, progress=cfg.progress)
        ais_px = out["log_px"]
        sub = _subset_ladder(per, ks, n_ais)
        results["ais"] = {
            "n": n_ais,
            "log_px": _stat(ais_px),
            "minus_iwae_kmax": _stat(ais_px - per[f"iwae_{max(ks)}"][:n_ais]),
            "mc_se_per_example_rms": float(np.sqrt(np.mean(out["mc_se"] ** 2))),
            "accept_mean": float(np.mean(out["accept"])),
            "step_size_final_mean": float(np.mean(out["step_size"][:, -1])),
            "ladder_same_examples": sub,
        }
        results["seconds"]["ais"] = time.perf_counter() - t0
        plot_summary, plot_n = sub, n_ais
        ais_band = (results["ais"]["log_px"]["mean"], results["ais"]["log_px"]["se"])

    if cfg.bdmc.examples:
        t0 = time.perf_counter()
        xs, zs = simulate(model, params, k_bdmc, cfg.bdmc.examples)
        b = ais_lib.bdmc(
            params,
            model,
            xs,
            zs,
            jax.random.fold_in(k_bdmc, 1),
            ais_settings,
            progress=cfg.progress,
        )
        results["bdmc"] = {
            "n": cfg.bdmc.examples,
            "lower": _stat(b["lower"]),
            "upper": _stat(b["upper"]),
            "gap": _stat(b["gap"]),
            "lower_mc_se_rms": float(np.sqrt(np.mean(b["lower_mc_se"] ** 2))),
            "upper_mc_se_rms": float(np.sqrt(np.mean(b["upper_mc_se"] ** 2))),
        }
        results["seconds"]["bdmc"] = time.perf_counter() - t0

    n_gaps = min(cfg.gaps.examples, x.shape[0])
    if n_gaps:
        t0 = time.perf_counter()
        use_ais = ais_px is not None and n_gaps <= n_ais
        log_px = ais_px[:n_gaps] if use_ais else per[f"iwae_{max(ks)}"][:n_gaps]
        g = cfg.gaps
        gp = gaps.inference_gaps(
            params,
            model,
            x[:n_gaps],
            log_px,
            k_gaps,
            steps=g.steps,
            lr=g.lr,
            train_samples=g.train_samples,
            init_samples=g.init_samples,
            eval_samples=g.eval_samples,
        )
        results["gaps"] = {
            "n": n_gaps,
            "log_px_from": "ais" if use_ais else f"iwae_{max(ks)}",
            **{name: _stat(gp[name]) for name in GAP_TERMS},
            "elbo_mc_se_rms": float(np.sqrt(np.mean(gp["elbo_q_mc_se"] ** 2))),
            "elbo_qstar_mc_se_rms": float(np.sqrt(np.mean(gp["elbo_qstar_mc_se"] ** 2))),
            "elbo_qstar_at_start": _stat(gp["elbo_qstar_init"]),
        }
        results["seconds"]["gaps"] = time.perf_counter() - t0

    s = cfg.surgery
    n_train = splits.train.shape[0] if s.examples is None else min(s.examples, len(splits.train))
    if n_train:
        t0 = time.perf_counter()
        xt = splits.train[:n_train]
        if splits.dynamic:
            xt = np.asarray(jax.random.bernoulli(jax.random.fold_in(k_surgery, 1), xt), np.float32)
        sg = surgery.elbo_surgery(
            params,
            model,
            xt,
            k_surgery,
            samples_per_example=s.samples_per_example,
            examples_per_chunk=s.examples_per_chunk,
            components_per_chunk=s.components_per_chunk,
        )
        results["surgery"] = {
            "n_components": n_train,
            "n_samples": int(len(sg["avg_kl"])),
            "log_n": float(np.log(n_train)),
            **{name: _stat(sg[name]) for name in ("avg_kl", "mi", "marg_kl")},
        }
        results["seconds"]["surgery"] = time.perf_counter() - t0

    out_json = Path(cfg.out) if cfg.out else Path(cfg.run_dir) / "eval" / f"{cfg.split}.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=2) + "\n")
    out_json.with_suffix(".md").write_text(markdown_table(results, ks))
    title = f"{Path(cfg.run_dir).name}: {cfg.split}, N={plot_n}"
    fig = figures.ladder_figure(plot_summary, ks, title=title, ais=ais_band)
    fig.savefig(out_json.with_suffix(".png"), dpi=110, bbox_inches="tight")

    logger = RunLogger.from_config(
        Path(cfg.run_dir) / "eval" / cfg.split, results["config"], cfg.logger
    )
    try:
        step = int(loaded.state.step)
        logger.log({"step": step, **flatten(results, f"eval/{cfg.split}")})
        logger.figures({f"ladder_{cfg.split}": fig}, step=step)
    finally:
        logger.close()
    return results


def flatten(tree: dict, prefix: str) -> dict[str, float]:
    """The numbers of a nested results dict as {"prefix/a/b": value} (no config, no strings)."""
    out = {}
    for k, v in tree.items():
        if k == "config":
            continue
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}/{k}"))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[f"{prefix}/{k}"] = v
    return out


def markdown_table(results: dict, ks) -> str:
    """The results as a markdown table: quantity, estimate, standard error, examples, notes."""
    rows = []

    def row(name, mean, se, n, note=""):
        rows.append(f"| {name} | {mean:.3f} | {se:.3f} | {n} | {note} |")

    lad, n = results["ladder"], int(results["ladder"]["n_examples"])
    kmax = max(ks)
    for k in ks:
        name = "ELBO" if k == 1 else f"IWAE-{k}"
        note = "log p(x) estimate" if k == kmax else ""
        row(name, lad[f"iwae_{k}"], lad[f"iwae_{k}_se"], n, note)
    if "ais" in results:
        r = results["ais"]
        c = results["config"]["ais"]
        for k in ks:
            name = "ELBO" if k == 1 else f"IWAE-{k}"
            sub = r["ladder_same_examples"]
            row(f"{name} (AIS subset)", sub[f"iwae_{k}"], sub[f"iwae_{k}_se"], r["n"])
        note = (
            f"{c['chains']} chains, {c['temperatures']} {c['schedule']} temperatures, from "
            f"{c['init']}, HMC {c['num_leapfrog']} leapfrog, target accept {c['target_accept']}; "
            f"per-example MC SE (rms) {r['mc_se_per_example_rms']:.3f}"
        )
        row("log p(x), AIS", r["log_px"]["mean"], r["log_px"]["se"], r["n"], note)
        d = r["minus_iwae_kmax"]
        row(f"AIS - IWAE-{kmax} (paired)", d["mean"], d["se"], r["n"])
    if "bdmc" in results:
        b = results["bdmc"]
        for name in ("lower", "upper", "gap"):
            row(
                f"BDMC {name} (simulated x)",
                b[name]["mean"],
                b[name]["se"],
                b["n"],
                "same AIS settings, reverse from the exact z" if name == "upper" else "",
            )
    if "gaps" in results:
        g = results["gaps"]
        for name in GAP_TERMS:
            note = f"log p(x) from {g['log_px_from']}" if name == "log_px" else ""
            row(f"gaps: {name}", g[name]["mean"], g[name]["se"], g["n"], note)
    if "surgery" in results:
        s = results["surgery"]
        for name in ("avg_kl", "mi", "marg_kl"):
            note = f"log N = {s['log_n']:.3f}" if name == "mi" else ""
            row(f"surgery: {name}", s[name]["mean"], s[name]["se"], s["n_components"], note)
    head = (
        f"# {results['run_dir']}: split {results['split']}, checkpoint epoch "
        f"{results['checkpoint_epoch']}\n\n| quantity | estimate (nats) | SE | N | notes |\n"
        "|---|---|---|---|---|\n"
    )
    return head + "\n".join(rows) + "\n"


def _hydra_dir(run_dir: str | None) -> str:
    """Hydra's output folder: inside the run folder, so nothing lands in the working folder."""
    return f"{run_dir}/eval/hydra" if run_dir else f"{tempfile.gettempdir()}/elbo-lab-eval-hydra"


OmegaConf.register_new_resolver("eval_hydra_dir", _hydra_dir, replace=True)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Evaluate one run folder; errors in the config or data exit with status 2."""
    try:
        run(to_evaluate_config(cfg))
    except (ConfigError, DataError) as e:
        print(f"elbo-lab-eval: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
