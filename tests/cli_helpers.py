"""Running the installed console script in a subprocess, as a user would, for the CLI tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# A run small enough for tests: 96 minibatches of 100 per epoch on the shipped mnist_small.
FAST = [
    "batch_size=100",
    "eval.ks=[1,10]",
    "eval.val_ks=[1,5]",
    "eval.test_examples=50",
    "eval.figures=false",
    "progress=false",
    "logger=none",
]
TIMING = ("train/seconds_per_epoch", "train/examples_per_s")


def elbo_lab(*args, cwd, timeout=300):
    """Run the installed console script as a user would; returns the CompletedProcess."""
    exe = Path(sys.executable).with_name("elbo-lab")
    return subprocess.run(
        [str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env()
    )


def env() -> dict:
    """The user's environment without data or W&B settings that would change what runs."""
    out = dict(os.environ)
    out.pop("ELBO_LAB_DATA", None)
    out.pop("WANDB_API_KEY", None)
    out["WANDB_MODE"] = "offline"
    return out


def wandb_history(run_dir: Path) -> list[dict]:
    """The history rows of a run folder's offline W&B run (its one wandb/offline-run-* folder),
    read back with `wandb leet inspect`."""
    (log,) = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    exe = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(exe), "leet", "inspect", "--json", str(log)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env(),
        check=True,
    )
    records = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return [r["history"]["item"] for r in records if r.get("type") == "history"]
