"""The `elbo-lab` command: compose the Hydra config, validate it, train and evaluate.

Kept short on purpose (like flax's examples/vae/main.py): the work is in train.run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from elbo_lab import runs
from elbo_lab.config import to_train_config
from elbo_lab.configs import CONFIG_DIR
from elbo_lab.errors import DiskError, UserError, disk_error
from elbo_lab.launch import prevalidate


def run_id(overrides: str) -> str:
    """The run folder's name from the job's overrides ("default" when there are none).

    Glob characters are replaced (brackets by parentheses: `eval.ks=[1,10]` names the folder
    `eval.ks=(1,10)`): orbax globs the checkpoint path, and a bracket in it makes every
    checkpoint unreadable.
    """
    return (overrides.replace("/", "_") or "default").translate(GLOB_SAFE)


GLOB_SAFE = str.maketrans({"[": "(", "]": ")", "*": "_", "?": "_"})


OmegaConf.register_new_resolver("run_id", run_id, replace=True)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _main(cfg: DictConfig) -> float | None:
    """Train and test one configuration; returns the test NLL (for sweepers), or None."""
    hc = HydraConfig.get()
    pin_joblib_worker(hc)
    from elbo_lab import train

    try:
        tc = to_train_config(cfg)
        if tc.logger.group is None and hc.mode == RunMode.MULTIRUN:
            logger = dataclasses.replace(tc.logger, group=Path(hc.sweep.dir).name)
            tc = dataclasses.replace(tc, logger=logger)
        results = train.run(tc, hc.runtime.output_dir)
    except OSError as e:  # a write that failed outside the checkpointer (metrics, results)
        problem = disk_error(e, f"the run folder {hc.runtime.output_dir}")
        if problem is None:
            raise
        print(f"elbo-lab: error: {problem}", file=sys.stderr)
        sys.exit(2)
    except UserError as e:
        discard_unstarted(Path(hc.runtime.output_dir))
        print(f"elbo-lab: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(summary_text(results, hc.runtime.output_dir))
    return results.get("test/nll")


def main() -> None:
    """The console script: validate every job of the command, then hand over to Hydra."""
    prevalidate("train", validate, "elbo-lab")
    _main()


def validate(cfg) -> None:
    """A job's config, and that its out_root can be written (Hydra writes there first)."""
    tc = to_train_config(cfg)
    writable(Path(tc.out_root))


def writable(folder: Path) -> None:
    """A DiskError unless `folder` (or, if it does not exist yet, its nearest existing parent)
    can be written."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        ro = os.statvfs(existing).f_flag & os.ST_RDONLY
        what = "is on a read-only file system" if ro else "is not writable by this user"
        raise DiskError(
            f"out_root={folder} cannot be written: {existing} {what}. Choose a writable "
            "folder (out_root=...); a finished run's numbers can be read without writing, from "
            "its results.json or with elbo-lab-report --out <a writable folder>."
        )


def discard_unstarted(run_dir: Path) -> None:
    """Remove the folder Hydra made for a job that stopped before writing its config (e.g. on
    bad data), so no stray run folder (.hydra/, an empty cli.log) is left behind."""
    if run_dir.is_dir() and not (run_dir / runs.CONFIG_FILE).exists():
        if {p.name for p in run_dir.iterdir()} <= {".hydra", "cli.log"}:
            shutil.rmtree(run_dir, ignore_errors=True)
            for parent in (run_dir.parent, run_dir.parent.parent):  # <name>/, then out_root
                if parent.is_dir() and not any(parent.iterdir()):
                    parent.rmdir()


def pin_joblib_worker(hc) -> None:
    """In a joblib worker, pin the process to one core before JAX starts its thread pool.

    Two unpinned XLA processes on a 2-core machine fight over both cores and a parallel sweep is
    no faster than a sequential one (../shared/PLATFORM.md); pinned, each job owns a core. Only
    the first job of a worker can pin (a reused worker keeps the core it started on).
    """
    if "JoblibLauncher" not in str(hc.launcher.get("_target_", "")) or "jax" in sys.modules:
        return
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[hc.job.num % len(cores)]})


def summary_text(results: dict, run_dir: str) -> str:
    """What a run found, in a few lines: the test ladder with standard errors and the gaps."""
    lines = [f"run folder: {run_dir}"]
    ks = sorted(
        int(k.rsplit("_", 1)[1]) for k in results if k.startswith("test/iwae_") and "se" not in k
    )
    if ks:
        n = int(results["test/n_examples"])
        lines.append(f"test ladder over {n} examples (nats, ± standard error):")
        for k in ks:
            name = "ELBO" if k == 1 else f"IWAE-{k}"
            value, se = results[f"test/iwae_{k}"], results[f"test/iwae_{k}_se"]
            lines.append(f"  {name:>10}  {value:9.2f} ± {se:.2f}")
        gap, gap_se = results["test/gap_elbo"], results["test/gap_elbo_se"]
        lines.append(
            f"  NLL = -log p(x) (IWAE-{ks[-1]}): {results['test/nll']:.2f}; "
            f"log p(x) - ELBO = {gap:.2f} ± {gap_se:.2f}; "
            f"KL = {results['test/kl']:.2f}; active units = {int(results['test/active_units'])}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
