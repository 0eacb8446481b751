"""Hydra's basic sweeper, less the jobs that would train a run an earlier job of the same sweep
trains: the same cell and seed under another name (runs.cell_key; e.g. `objective=iwae
objective.k=1` beside `objective=elbo objective.k=1`, which is the same bound and the same
trained model). Each skipped job is named, with the job it duplicates. Hydra finds the class here
because plugins must live in the `hydra_plugins` namespace.

Hydra's first plugin scan re-executes the modules it finds, its own BasicSweeper's included, so
the class is defined by `register()` after that scan, on the BasicSweeper Hydra then uses, and
registered by hand (an editable install hides this package from the scan). Nothing here runs at
import but the config node, so a scan that does find this module re-executes it harmlessly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins

log = logging.getLogger(__name__)


@dataclass
class ElboLabSweeperConf:
    _target_: str = "hydra_plugins.elbo_lab_sweeper.sweeper.ElboLabSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="elbo_lab", node=ElboLabSweeperConf, provider="elbo_lab"
)


class SkipDuplicates:
    """The sweeper's own part, mixed into BasicSweeper by register()."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._seen: dict[tuple, Sequence[str]] = {}

    def run_key(self, job: Sequence[str]) -> tuple:
        """What the job's run computes: its cell and seed."""
        from elbo_lab.config import to_dict, to_train_config
        from elbo_lab.runs import cell_key

        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
        tc = to_train_config(cfg)
        return cell_key(to_dict(tc)), tc.seed

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        kept = []
        for job in super().get_job_batch():
            key = self.run_key(job)
            if key in self._seen:
                log.info(f"skipped {' '.join(job)}: the same run as {' '.join(self._seen[key])}")
                continue
            self._seen[key] = job
            kept.append(job)
        return kept


def register() -> None:
    """Define ElboLabSweeper on Hydra's BasicSweeper and register it with Hydra (once)."""
    plugins = Plugins.instance()  # Hydra's scan, if it has not run yet, runs here
    if f"{__name__}.ElboLabSweeper" in plugins.class_name_to_class:
        return
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    cls = type("ElboLabSweeper", (SkipDuplicates, BasicSweeper), {"__module__": __name__})
    globals()["ElboLabSweeper"] = cls
    plugins.register(cls)
