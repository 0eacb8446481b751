"""Which code made a number: the code version, packages, command, host and times of a process.

`code_hash` is the sha256 of elbo_lab's own source and configs (the code that computes results),
so it is the same in a checkout and in an installed copy of the same code, and changes with any
edit of the package whether committed or not. The git commit, dirty flag and a hash of the
uncommitted diff are recorded beside it when the package runs from a checkout.
"""

from __future__ import annotations

import datetime
import hashlib
import platform
import socket
import subprocess
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
PACKAGES = (
    "elbo_lab",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "hydra-core",
    "omegaconf",
    "numpy",
    "wandb",
)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


@cache
def code_hash() -> str:
    """sha256 over the package's .py files and its configs' .yaml files, by relative path."""
    from elbo_lab.configs import CONFIG_DIR

    h = hashlib.sha256()
    for root, pattern in ((PACKAGE, "*.py"), (Path(CONFIG_DIR), "*.yaml")):
        for f in sorted(root.rglob(pattern)):
            h.update(f"{root.name}/{f.relative_to(root)}\n".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=PACKAGE, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


@cache
def code_version() -> dict:
    """{"code_hash", and in a checkout "git_commit", "git_dirty", "git_diff_sha256"}."""
    out = {"code_hash": code_hash()}
    commit = _git("rev-parse", "HEAD")
    if commit:
        diff = _git("diff", "HEAD") or ""
        status = _git("status", "--porcelain", "--untracked-files=no") or ""
        out.update(
            git_commit=commit.strip(),
            git_dirty=bool(status.strip()),
            git_diff_sha256=hashlib.sha256(diff.encode()).hexdigest() if diff else None,
        )
    return out


def packages() -> dict[str, str | None]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def collect() -> dict:
    """This process's provenance (the end time is added when it finishes)."""
    return {
        **code_version(),
        "packages": packages(),
        "python": platform.python_version(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "host": socket.gethostname(),
        "started": now(),
    }
