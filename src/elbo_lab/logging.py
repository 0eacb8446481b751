"""One logger per run: the same records to `metrics.jsonl` in the run folder and to W&B.

W&B is offline by default (works with no account and no network; `wandb sync` uploads later),
`logger.mode=online` uploads as it goes, `logger=none` writes metrics.jsonl only. All of W&B's
files stay inside the run folder.

metrics.jsonl is the source of truth. After a resume the W&B run holds every epoch exactly once:
the rows W&B does not hold yet are logged again from metrics.jsonl (online: those from the
server's next step on; offline: all kept rows, into the session's new offline folder, while the
earlier sessions' offline folders, which a kill may have cut short, move to wandb_superseded/ so
that syncing wandb/offline-run-* uploads each epoch once).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from elbo_lab.errors import UserError
from elbo_lab.runs import (
    METRICS_FILE,
    PER_EXAMPLE_FILE,
    RESULTS_FILE,
    dumps,
    read_metrics,
    write_json,
    write_lines,
    write_text,
)


class RunLogger:
    """Writes records; on resume, drops the records of epochs after the restored checkpoint.

    Args:
      run_dir: the run folder.
      config: the resolved config (a plain dict), stored with the W&B run.
      logger: "wandb" or "none"; mode: W&B mode; project/entity/group/tags: W&B fields.
      resume_epoch: the epoch restored from a checkpoint (None for a fresh run): per-epoch records
        up to it are kept; later ones, and the final test record, will be written again.
    """

    def __init__(
        self,
        run_dir: str | Path,
        config: dict,
        *,
        logger: str = "wandb",
        mode: str = "offline",
        project: str = "elbo_lab",
        entity: str | None = None,
        group: str | None = None,
        tags: tuple[str, ...] = (),
        resume_epoch: int | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        kept = [
            r
            for r in read_metrics(self.run_dir)
            if resume_epoch is not None
            and r.get("epoch") is not None
            and r["epoch"] <= resume_epoch
        ]
        path = self.run_dir / METRICS_FILE
        write_lines(path, kept)  # atomic: a kill keeps the old rows or the new ones
        self._file = path.open("a")
        self._wandb = None
        if logger == "wandb" and mode != "disabled":
            if mode == "offline":
                supersede_offline_runs(self.run_dir)
            self._wandb = _init_wandb(
                self.run_dir, config, mode, project, entity, group, list(tags)
            )
            for record in kept:  # the rows W&B does not hold yet (see the module's docstring)
                if int(record["step"]) >= self._wandb.starting_step:
                    self._log_wandb(record)

    @classmethod
    def from_config(cls, run_dir, config: dict, lg, resume_epoch: int | None = None) -> RunLogger:
        """A logger for `run_dir` as a LoggerConfig `lg` describes it."""
        return cls(
            run_dir,
            config,
            logger=lg.name,
            mode=lg.mode,
            project=lg.project,
            entity=lg.entity,
            group=lg.group,
            tags=tuple(lg.tags),
            resume_epoch=resume_epoch,
        )

    def log(self, record: dict[str, Any]) -> None:
        """Append one record (flat dict of JSON numbers/strings; must hold "step")."""
        self._file.write(dumps(record) + "\n")
        self._file.flush()
        if self._wandb is not None:
            self._log_wandb(record)

    def _log_wandb(self, record: dict[str, Any]) -> None:
        self._wandb.log({k: v for k, v in record.items() if k != "step"}, step=int(record["step"]))

    def summary(self, values: dict[str, Any]) -> None:
        """Final numbers: results.json in the run folder and the W&B run summary."""
        write_json(self.run_dir / RESULTS_FILE, values)
        if self._wandb is not None:
            self._wandb.summary.update(values)

    def per_example(self, **arrays: np.ndarray) -> None:
        """Save per-example test arrays (one value per test example, in split order) in the run
        folder and as a file of the W&B run (uploaded now online, by `wandb sync` offline)."""
        path = self.run_dir / PER_EXAMPLE_FILE
        np.savez_compressed(path, **arrays)
        if self._wandb is not None:
            # A literal path: run folders are named by overrides such as eval.ks=[1,10].
            self._wandb.save(str(path), base_path=str(self.run_dir), policy="now", glob=False)

    def figures(self, figs: dict[str, Any], step: int) -> None:
        """Save matplotlib figures as PNG under figures/ and log them to W&B as images."""
        import matplotlib.pyplot as plt

        out = self.run_dir / "figures"
        out.mkdir(exist_ok=True)
        for name, fig in figs.items():
            fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
        if self._wandb is not None:
            import wandb

            self._wandb.log({f"figures/{n}": wandb.Image(f) for n, f in figs.items()}, step=step)
        for fig in figs.values():
            plt.close(fig)

    def close(self) -> None:
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


class Silent:
    """A RunLogger's stand-in on the processes of a multi-host run other than process 0, which
    writes the records: it writes nothing."""

    def log(self, record: dict[str, Any]) -> None:
        pass

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def per_example(self, **arrays: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass


SUPERSEDED_DIR = "wandb_superseded"


def supersede_offline_runs(run_dir: Path) -> None:
    """Move the offline W&B folders of earlier sessions of this run to wandb_superseded/ (kept,
    not deleted): the new session's folder holds all of their epochs again."""
    for old in sorted((run_dir / "wandb").glob("offline-run-*")):
        target = run_dir / SUPERSEDED_DIR / old.name
        target.parent.mkdir(exist_ok=True)
        shutil.move(str(old), str(target))


def _init_wandb(run_dir: Path, config, mode, project, entity, group, tags):
    import wandb

    # Keep every W&B file inside the run folder (it otherwise also writes under the home folder).
    wb = run_dir / "wandb_home"
    for var, sub in (
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_DATA_DIR", "data"),
    ):
        os.environ[var] = str(wb / sub)
    id_file = run_dir / "wandb_id.txt"  # the same W&B run id across resumes of this folder
    run_id = id_file.read_text().strip() if id_file.exists() else ""
    run_id = os.environ.get("WANDB_RUN_ID", run_id) or uuid.uuid4().hex[:8]  # an agent's job
    write_text(id_file, run_id)  # atomic: a kill never leaves an empty id (W&B refuses one)
    try:
        return wandb.init(
            project=project,
            entity=entity,
            group=group,
            tags=tags,
            config=config,
            dir=str(run_dir),
            mode=mode,
            id=run_id,
            resume="allow",
            name=run_dir.name,
            settings=wandb.Settings(init_timeout=60, console="off", silent=True),
        )
    except wandb.errors.Error as e:
        raise UserError(
            f"W&B could not start the run in mode {mode!r}: {str(e).splitlines()[0]}\n"
            "Online logging needs a login (`wandb login`, or WANDB_API_KEY) and a network. "
            "Without them, log offline (logger.mode=offline, the default; `wandb sync` uploads "
            "later) or not at all (logger=none)."
        ) from None
