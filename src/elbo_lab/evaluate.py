"""`elbo-lab-eval`: how tight is a trained model's bound? A loop over the configured evaluators.

    elbo-lab-eval "run_dir='runs/core_mnist/objective.k=5,objective=iwae'"   # all, test split
    elbo-lab-eval "run_dir='<run>'" split=valid examples=1000 ais.examples=0 logger=none
    elbo-lab-eval "run_dir='<run>'" evaluators=[ladder,ais] ais.chains=32
    elbo-lab-eval "run_dir='<run>'" evaluators=[ladder,ais] first=100 examples=200 out=<json>

(Run folders' names hold '=' and ',': quote the value for Hydra's override parser, as above.)

Loads the run folder's parameters (the latest checkpoint, or `epoch`) and runs the evaluators
named in `evaluators`, in order, each configured under its own key (configs/evaluate.yaml; the
defaults: ladder, ais, bdmc, gaps, surgery; see each in src/elbo_lab/evaluators/). Writes
`<run_dir>/eval/<split>.json` (or `out`): every evaluator's summary; `<split>_per_example.npz`:
its per-example arrays as "<evaluator>/<name>"; a Markdown table (`.md`) and the ladder figure
(`.png`); the same numbers go to `<run_dir>/eval/<split>/metrics.jsonl` and W&B (offline by
default). Per-example random keys depend on the example's index in the split, so `first=a` adds
examples a.. to an evaluation of the first a with the values one larger evaluation would have given
(a a multiple of each evaluator's examples per chunk). Also callable from Python:
`run(EvaluateConfig(run_dir=...)) -> dict`.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import jax
import numpy as np
from omegaconf import DictConfig, OmegaConf

from elbo_lab import evaluators, figures, objectives, parallel, runs
from elbo_lab.config import LoggerConfig, plain, to_dataclass
from elbo_lab.configs import CONFIG_DIR
from elbo_lab.errors import ConfigError, UserError
from elbo_lab.evaluators import EvalContext
from elbo_lab.launch import prevalidate
from elbo_lab.logging import RunLogger
from elbo_lab.registry import check, load_plugins

SPLITS = ("test", "valid", "train")


@dataclass(frozen=True)
class EvaluateConfig:
    run_dir: str | None = None  # required: a run folder of `elbo-lab`
    split: str = "test"  # test | valid | train
    examples: int | None = None  # n examples of the split from `first`; None: all the rest
    first: int = 0  # the index of the first evaluated example (extends an evaluation from 0)
    seed: int = 0
    epoch: int | None = None  # checkpoint; None: the latest
    data_root: str | None = None  # None: the root recorded in the run
    out: str | None = None  # JSON path; None: <run_dir>/eval/<split>.json
    progress: bool = True
    evaluators: dict[str, Any] = field(default_factory=dict)  # key -> entry, in running order
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    plugins: list[str] = ()
    devices: int = 1  # split the examples over this many devices (elbo_lab.parallel)

    def __post_init__(self):
        check(self.run_dir is not None, "run_dir is required: elbo-lab-eval run_dir=<a run folder>")
        check(Path(self.run_dir).is_dir(), f"run_dir {self.run_dir!r} is not a folder")
        check(self.split in SPLITS, f"unknown split {self.split!r}; valid: {', '.join(SPLITS)}")
        check(self.examples is None or self.examples >= 1, "examples must be >= 1 (or null)")
        check(self.first >= 0, f"first must be >= 0, got {self.first}")
        check(self.devices >= 1, f"devices must be >= 1, got {self.devices}")


def to_evaluate_config(cfg: DictConfig | dict) -> EvaluateConfig:
    """Validate a composed config: the evaluators named in `evaluators` through their registry
    (each from the node of the same key), the rest through EvaluateConfig."""
    raw = plain(cfg)
    load_plugins(raw.get("plugins") or ())
    names = raw.pop("evaluators", None) or []
    entries = {}
    for key in names:
        if key not in raw:
            raise ConfigError(
                f"evaluators lists {key!r} but the config has no node {key!r}: add it with "
                f"+evaluator@{key}=<name> (registered: {', '.join(evaluators.REGISTRY.names())})"
            )
        entries[key] = evaluators.REGISTRY.from_config(raw.pop(key), key)
    own = {f.name for f in dataclasses.fields(EvaluateConfig)}
    for key in [k for k, v in raw.items() if k not in own and isinstance(v, dict) and "name" in v]:
        raw.pop(key)  # an evaluator configured but not listed in `evaluators`: not run
    return dataclasses.replace(to_dataclass(raw, EvaluateConfig), evaluators=entries)


def run(cfg: EvaluateConfig) -> dict:
    """Evaluate the run in cfg.run_dir; write JSON, per-example arrays, Markdown and the figure;
    return the results."""
    parallel.request_cpu_devices(cfg.devices)
    with parallel.data_parallel(cfg.devices):
        return evaluate_run(cfg)


def evaluate_run(cfg: EvaluateConfig) -> dict:
    """run()'s work, within the configured devices."""
    loaded = runs.load_run(cfg.run_dir, cfg.epoch, data_root=cfg.data_root)
    model, splits = loaded.model, loaded.splits
    params = parallel.replicate(loaded.params)
    key = jax.random.key(cfg.seed)
    x = getattr(splits, cfg.split)
    if cfg.split == "train" and splits.dynamic:
        x = np.asarray(jax.random.bernoulli(jax.random.fold_in(key, 5), x), np.float32)
    if cfg.first >= len(x):
        raise ConfigError(
            f"first={cfg.first} but the {cfg.split} split has {len(x)} examples: first < {len(x)}"
        )
    x = x[cfg.first :] if cfg.examples is None else x[cfg.first : cfg.first + cfg.examples]
    results: dict = {
        "run_dir": str(cfg.run_dir),
        "checkpoint_epoch": loaded.epoch,
        "split": cfg.split,
        "config": {
            **{
                f.name: getattr(cfg, f.name)
                for f in dataclasses.fields(cfg)
                if f.name not in ("evaluators", "logger")
            },
            "evaluators": {k: evaluators.REGISTRY.to_dict(e) for k, e in cfg.evaluators.items()},
        },
        "seconds": {},
    }
    done: dict[str, evaluators.EvalResult] = {}
    objective = loaded.cfg.objective.build(model)
    for i, (name, entry) in enumerate(cfg.evaluators.items()):
        t0 = time.perf_counter()
        ctx = EvalContext(
            params,
            model,
            x,
            splits,
            jax.random.fold_in(key, i),
            dict(done),
            cfg.progress,
            objectives.gradient_fn(objective),
            objective.init(),
            cfg.first,
        )
        out = entry.build(model)(ctx)
        if out is not None:
            done[name] = out
            results[name] = out.summary
            results["seconds"][name] = time.perf_counter() - t0

    out_json = Path(cfg.out) if cfg.out else Path(cfg.run_dir) / runs.EVAL_DIR / f"{cfg.split}.json"
    runs.write_json(out_json, results)
    arrays = {f"{n}/{k}": v for n, r in done.items() for k, v in r.per_example.items()}
    np.savez_compressed(out_json.with_name(f"{out_json.stem}_per_example.npz"), **arrays)
    out_json.with_suffix(".md").write_text(markdown_table(results, cfg.evaluators, done))
    figs = {}
    if "ladder" in done:
        lad = done["ladder"].summary
        ks = sorted(int(k.split("_")[1]) for k in done["ladder"].per_example if "iwae_" in k)
        summary, band, n = lad, None, int(lad["n_examples"])
        if "ais" in done and "ladder_same_examples" in done["ais"].summary:
            a = done["ais"].summary
            summary, band, n = (
                a["ladder_same_examples"],
                (a["log_px"]["mean"], a["log_px"]["se"]),
                a["n"],
            )
        title = f"{Path(cfg.run_dir).name}: {cfg.split}, N={n}"
        figs[f"ladder_{cfg.split}"] = figures.ladder_figure(summary, ks, title=title, ais=band)
        figs[f"ladder_{cfg.split}"].savefig(
            out_json.with_suffix(".png"), dpi=110, bbox_inches="tight"
        )

    logger = RunLogger.from_config(
        Path(cfg.run_dir) / runs.EVAL_DIR / cfg.split, results["config"], cfg.logger
    )
    try:
        logger.log({"step": loaded.step, **runs.eval_numbers(results, cfg.split)})
        logger.figures(figs, step=loaded.step)
    finally:
        logger.close()
    return results


def markdown_table(results: dict, entries: dict, done: dict) -> str:
    """Every evaluator's rows as one Markdown table: quantity, estimate, SE, examples, notes."""
    lines = [
        f"# {results['run_dir']}: split {results['split']}, checkpoint epoch "
        f"{results['checkpoint_epoch']}\n",
        "| quantity | estimate (nats) | SE | N | notes |",
        "|---|---|---|---|---|",
    ]
    for name, out in done.items():
        for quantity, mean, se, n, note in entries[name].rows(out.summary):
            lines.append(f"| {quantity} | {mean:.3f} | {se:.3f} | {n} | {note} |")
    return "\n".join(lines) + "\n"


def _hydra_dir(run_dir: str | None) -> str:
    """Hydra's output folder: inside the run folder, so nothing lands in the working folder."""
    return f"{run_dir}/eval/hydra" if run_dir else f"{tempfile.gettempdir()}/elbo-lab-eval-hydra"


OmegaConf.register_new_resolver("eval_hydra_dir", _hydra_dir, replace=True)


# Folders Hydra will make for this command that did not exist before it (removed on an error, so
# a failed evaluation leaves the run folder as it was); set by validate().
_NEW_FOLDERS: list[Path] = []


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def _main(cfg: DictConfig) -> None:
    try:
        run(to_evaluate_config(cfg))
    except UserError as e:
        for folder in _NEW_FOLDERS:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"elbo-lab-eval: error: {e}", file=sys.stderr)
        sys.exit(2)


def validate(cfg) -> None:
    """The command's config; notes which of the run folder's eval folders are new."""
    ec = to_evaluate_config(cfg)
    if ec.run_dir:
        hydra_dir = Path(_hydra_dir(ec.run_dir))
        _NEW_FOLDERS[:] = [f for f in (hydra_dir.parent, hydra_dir) if not f.exists()][:1]


def main() -> None:
    """Evaluate one run folder; errors in the config or data exit with status 2."""
    prevalidate("evaluate", validate, "elbo-lab-eval")
    _main()


if __name__ == "__main__":
    main()
