"""Sweeps through Hydra's launchers, the W&B sweep definition, and resuming an interrupted sweep."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cli_helpers import FAST, elbo_lab, env

from elbo_lab.runs import read_metrics

REPO = Path(__file__).resolve().parents[1]


def finished(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("default/*/done.json"))


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    r = elbo_lab(
        "-m",
        "hydra/launcher=joblib_pinned",
        "objective=elbo,iwae",
        "optim.epochs=1",
        f"out_root={tmp_path}",
        *FAST,
        cwd=tmp_path,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    runs = finished(tmp_path)
    assert len(runs) == 2
    assert {json.loads((p / "config.json").read_text())["objective"]["name"] for p in runs} == {
        "elbo",
        "iwae",
    }


@pytest.mark.slow
def test_submitit_local_launcher_runs_every_job(tmp_path):
    """The SLURM path (hydra/launcher=slurm) is the same code with the submitit_local executor."""
    r = elbo_lab(
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "objective.k=1,2",
        "optim.epochs=1",
        f"out_root={tmp_path}",
        *FAST,
        cwd=tmp_path,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    runs = finished(tmp_path)
    assert [json.loads((p / "config.json").read_text())["objective"]["k"] for p in runs] == [1, 2]
    assert list((tmp_path / "default" / ".submitit").iterdir())  # submitit's own job logs


@pytest.mark.slow
def test_wandb_sweep_parameters_reach_the_hydra_config(tmp_path):
    """Expand the sweep file's command as `wandb agent` does (${args_no_hyphens} -> key=value)
    for one grid point and check the run folder's validated config holds those values."""
    spec = yaml.safe_load((REPO / "sweeps" / "core_mnist.yaml").read_text())
    params = {
        "objective": "iwae",
        "objective.k": 3,
    }  # one grid point (data kept small for the test)
    macros = {
        "${env}": ["/usr/bin/env"],
        "${interpreter}": [sys.executable],
        "${args_no_hyphens}": [f"{k}={v}" for k, v in params.items()],
    }
    command = [part for item in spec["command"] for part in macros.get(item, [item])]
    assert "${args_no_hyphens}" in spec["command"] and set(spec["parameters"]) >= set(params)
    command = [c for c in command if not c.startswith("logger.mode")]  # no W&B server here
    r = subprocess.run(
        [*command, "optim.epochs=1", f"out_root={tmp_path}", *FAST],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env(),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = finished(tmp_path)
    objective = json.loads((run / "config.json").read_text())["objective"]
    assert (objective["name"], objective["k"]) == ("iwae", 3)


@pytest.mark.slow
def test_interrupted_sweep_resumes_and_skips_finished_jobs(tmp_path):
    """Kill a 2-job sweep while its second job trains, run the same command again: the first job
    is not touched, the second resumes from its checkpoint and finishes with every epoch logged."""
    args = ["-m", "objective.k=1,2", "optim.epochs=3", f"out_root={tmp_path}", *FAST]
    exe = Path(sys.executable).with_name("elbo-lab")
    proc = subprocess.Popen(
        [str(exe), *args],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 400
    while time.time() < deadline and not list(tmp_path.glob("default/*k=2*/checkpoints/1")):
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (first,) = finished(tmp_path)
    assert "objective.k=1" in first.name
    first_metrics = (first / "metrics.jsonl").read_text()

    r = elbo_lab(*args, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = finished(tmp_path)
    assert len(runs) == 2
    assert (first / "metrics.jsonl").read_text() == first_metrics
    epochs = [rec.get("epoch") for rec in read_metrics(runs[1])]
    assert epochs == [1, 2, 3, None]  # no epoch lost or logged twice; None: the test record
