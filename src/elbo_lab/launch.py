"""Before Hydra starts: compose and validate every job of a command, so a bad value in job 9 of a
sweep, a misspelt key or an unknown component stops at once with a message (exit 2), before any
job trains and before Hydra creates a run folder."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from elbo_lab.configs import CONFIG_DIR
from elbo_lab.errors import UserError
from elbo_lab.registry import close_match, load_plugins

MULTIRUN_FLAGS = ("-m", "--multirun")


def sweep_jobs(config_name: str, overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override lists of the jobs the command launches, in launch order (the config's
    hydra.sweeper.params first, then the command line, as Hydra's basic sweeper combines them)."""
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(overrides)
    plain = [o.input_line for o in parsed if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name, plain, return_hydra_config=True)
    multirun = multirun or str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    if not multirun:
        return [overrides]
    params = cfg.hydra.sweeper.get("params") or {}
    swept = [f"{k}={v}" for k, v in params.items()] + overrides
    return BasicSweeper.split_arguments(parser.parse_overrides(swept), None)[0]


def compose_job(config_name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name, overrides)


def explain(config_name: str, overrides: list[str], error: Exception) -> str:
    """Hydra's composition error, with the valid keys where it is an unknown key."""
    text = str(error)
    found = re.search(r"Could not override '([^']+)'", text)
    if not found:
        cause = error.__cause__
        detail = f": {str(cause).splitlines()[0]}" if cause is not None else ""
        return text.split("\n    full_key")[0] + detail
    key = found.group(1)
    parent, _, leaf = key.rpartition(".")
    others = [o for o in overrides if not o.lstrip("+~").startswith(f"{key}=")]
    try:
        node = OmegaConf.select(compose_job(config_name, others), parent) if parent else None
    except (HydraException, OmegaConfBaseException):
        node = None
    if node is None or not OmegaConf.is_dict(node):
        return f"unknown key {key!r}"
    keys = [k for k in node if k != "name"]
    what = f"{parent} {node['name']!r}" if "name" in node else parent
    return f"{what} has no field {leaf!r}{close_match(leaf, keys)}; its fields: {', '.join(keys)}"


def prevalidate(config_name: str, validate: Callable, prog: str) -> None:
    """Validate every job of the command line in sys.argv; on a problem print it and exit 2.
    Commands with other Hydra flags (--help, --cfg, ...) are left to Hydra."""
    args = sys.argv[1:]
    if any(a.startswith("-") and a not in MULTIRUN_FLAGS for a in args):
        return
    overrides = [a for a in args if a not in MULTIRUN_FLAGS]
    try:
        for o in OverridesParser.create().parse_overrides(overrides):
            if o.key_or_group.lstrip("+") == "plugins":
                load_plugins(o.value() if isinstance(o.value(), list) else [o.value()])
        jobs = sweep_jobs(config_name, overrides, any(a in MULTIRUN_FLAGS for a in args))
        for job in jobs:
            try:
                validate(compose_job(config_name, job))
            except (HydraException, OmegaConfBaseException) as e:
                raise UserError(explain(config_name, job, e)) from None
            except UserError as e:
                raise UserError(
                    f"{e}" + (f"\n  (in the sweep job {' '.join(job)})" if len(jobs) > 1 else "")
                ) from None
    except (HydraException, OmegaConfBaseException) as e:
        print(f"{prog}: error: {explain(config_name, overrides, e)}", file=sys.stderr)
        sys.exit(2)
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
