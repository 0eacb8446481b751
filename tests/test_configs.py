"""Every experiment config, for every job of its sweep, composes and passes validation.

A typo in a paper's config (a key, a value outside its valid choices) would otherwise surface
only when that job starts, possibly hours into a sweep.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from elbo_lab.cli import CONFIG_DIR
from elbo_lab.config import ConfigError, to_train_config

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def sweep_jobs(experiment: str) -> list[list[str]]:
    """The override lists of the jobs the experiment's sweep launches, in launch order."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", [f"experiment={experiment}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params or {}
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return BasicSweeper.split_arguments(parsed, None)[0]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_job_of_every_experiment_validates(experiment):
    jobs = sweep_jobs(experiment)
    assert jobs, f"{experiment} launches no job"
    for job in jobs:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("train", [f"experiment={experiment}", *job])
        to_train_config(cfg)  # raises ConfigError on an invalid value


def test_table1_sweep_launches_all_twelve_cells_longest_first():
    jobs = sweep_jobs("burda_table1_reduced")
    cells = [dict(o.split("=", 1) for o in job) for job in jobs]
    assert len({tuple(sorted(c.items())) for c in cells}) == 12
    assert [c["objective.k"] for c in cells] == ["50"] * 4 + ["5"] * 4 + ["1"] * 4
    assert cells[0]["model"] == "burda_2l"


def test_a_bad_value_in_a_sweep_job_is_caught():
    """The check above can fail: a job with k=0 is rejected with the key and the valid range."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", ["experiment=burda_table1_reduced", "objective.k=0"])
    with pytest.raises(ConfigError, match="objective.k must be a positive"):
        to_train_config(cfg)
