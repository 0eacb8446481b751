"""The house's floors (README "Layout"): no module of src/elbo_lab imports one above it, and the
evaluator side and the training side meet only in the bounds and the layers below."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "elbo_lab"
FLOORS = [
    ["errors", "registry", "parallel", "chunking", "distributions", "hmc", "configs", "provenance"],
    ["likelihoods"],
    ["models"],
    ["bounds"],
    ["objectives", "data", "estimators", "ais", "gaps", "surgery", "diagnostics", "figures"],
    ["evaluators"],
    ["config", "checkpoint"],
    ["runs", "logging", "launch"],
    ["train", "evaluate"],
    ["cli", "report"],
]
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}


def room(path: Path) -> str:
    """The top-level name under elbo_lab: a module, or a package's folder."""
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("elbo_lab"):
            parts = node.module.split(".")
            names = [parts[1]] if len(parts) > 1 else [a.name for a in node.names]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("elbo_lab."))
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if room(p) not in ("assets", "__init__"))


def test_every_module_has_a_floor():
    assert {room(p) for p in MODULES} <= set(FLOOR)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_one_above_it(path):
    here = room(path)
    above = {m for m in imports(path) if m != here and FLOOR[m] > FLOOR[here]}
    assert not above, f"{here} (floor {FLOOR[here]}) imports {above}"


def test_objectives_and_evaluators_do_not_import_each_other():
    for side, other in (("objectives", "evaluators"), ("evaluators", "objectives")):
        for path in (SRC / side).glob("*.py"):
            assert other not in imports(path), path
