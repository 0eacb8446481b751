"""The run folder as one API: its file names, what "finished" means, config and params loading,
atomic writes. Train, evaluate and report all go through here.

    <out_root>/<name>/<overrides>/
      config.json            the validated, resolved TrainConfig (config.to_dict)
      metrics.jsonl          one record per epoch, then the test record (the source of truth)
      checkpoints/<epoch>/   the training state (orbax), the newest two kept
      results.json           the final numbers; done.json: the run is finished
      test_per_example.npz   each test example's log p(x) (paired comparisons between runs)
      provenance.json        every session that worked on the run: code version, packages,
                             command, host, start and end, outcome; and every accepted change
      checkpoints_unreadable/  checkpoints a kill left unreadable, kept aside (never deleted)
      figures/, wandb/, eval/ (elbo-lab-eval's outputs, one set per split)
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from elbo_lab import objectives, provenance
from elbo_lab.checkpoint import UNREADABLE_DIR as UNREADABLE_DIR
from elbo_lab.checkpoint import Checkpointer
from elbo_lab.config import TrainConfig, to_dict, to_train_config
from elbo_lab.errors import ConfigError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
DONE_FILE = "done.json"
PER_EXAMPLE_FILE = "test_per_example.npz"
EVAL_DIR = "eval"
PROVENANCE_FILE = "provenance.json"
LOCK_FILE = ".lock"
# Config keys that do not change what a run computes: they may differ on resume.
NOT_COMPARED = (
    "name",
    "out_root",
    "progress",
    "logger",
    "plugins",
    "checkpoint_every",
    "steps_per_dispatch",
    "allow_changes",
    "data.root",
    "data.download",
    "data.mirror",
    "eval.figures",
    "devices",  # the same numbers up to floating-point reassociation (elbo_lab.parallel)
    "distributed",
)


def is_finished(run_dir: str | Path) -> bool:
    """The one definition: done.json is written last, after results.json."""
    run_dir = Path(run_dir)
    return (run_dir / DONE_FILE).is_file() and (run_dir / RESULTS_FILE).is_file()


def _finite(v):
    """JSON has no NaN or infinity: they become null."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    if isinstance(v, float | np.floating) and not math.isfinite(v):
        return None
    if isinstance(v, np.integer | np.floating):
        return v.item()
    return v


def dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(_finite(obj), indent=indent, allow_nan=False)


def write_text(path: str | Path, text: str) -> None:
    """Write a file atomically (a temporary file in the same folder, then renamed): a kill
    leaves the old file or the new one, never a truncated one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (no bare NaN: see dumps)."""
    write_text(path, dumps(obj, indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is not readable JSON ({type(e).__name__}: {e})") from None


def save_config(run_dir: str | Path, cfg: TrainConfig) -> None:
    write_json(Path(run_dir) / CONFIG_FILE, to_dict(cfg))


def load_config(run_dir: str | Path) -> TrainConfig:
    """A run folder's TrainConfig (config.json of any format: see config.migrate)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not an elbo-lab run folder (no {CONFIG_FILE})")
    raw = read_json(path)  # its errors name the file
    try:
        return to_train_config(raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def read_results(run_dir: str | Path) -> dict:
    return read_json(Path(run_dir) / RESULTS_FILE)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every record of a run's metrics.jsonl, in order. A half-written last line (a kill while
    writing it) is dropped with a warning; a bad line before it is a ConfigError naming it."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for n, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if n < len(lines):
                raise ConfigError(f"{path}: line {n} is not JSON ({e})") from None
            warnings.warn(f"{path}: dropped a half-written last line", stacklevel=2)
    return records


def write_lines(path: Path, records: list[dict]) -> None:
    """Rewrite a JSON-lines file atomically (a kill leaves the old file or the new one)."""
    write_text(path, "".join(dumps(r) + "\n" for r in records))


def flat(tree: dict, prefix: str = "", sep: str = ".") -> dict:
    """A nested dict as one level: {"a": {"b": 1}} -> {"a.b": 1} (keys joined by `sep`)."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}{sep}", sep))
        else:
            out[f"{prefix}{k}"] = v
    return out


def eval_numbers(summary: dict, split: str) -> dict[str, float]:
    """The numbers of an elbo-lab-eval summary (eval/<split>.json) as
    {"eval/<split>/<evaluator>/<key>": value}: the names W&B, the eval metrics file and the report
    give them (no config, no strings)."""
    tree = {k: v for k, v in summary.items() if k != "config"}
    return {
        k: v
        for k, v in flat(tree, f"eval/{split}/", "/").items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def compared(key: str) -> bool:
    """Whether a flattened config key can change what a run computes (not in NOT_COMPARED)."""
    return not any(key == s or key.startswith(f"{s}.") for s in NOT_COMPARED)


def cell_key(config: dict) -> str:
    """What a run computes but for its seed: its config (config.to_dict) without the seed and
    the keys that do not change results (NOT_COMPARED), as JSON. An objective that is another
    under a second name (its entry's `same_as()`, e.g. IWAE k=1 is the ELBO k=1: the same
    bound, the same trained model) gets the other's key."""
    objective = objectives.REGISTRY.from_config(config["objective"])
    if hasattr(objective, "same_as"):
        config = {**config, "objective": objectives.REGISTRY.to_dict(objective.same_as())}
    key = {k: v for k, v in flat(config).items() if compared(k) and k != "seed"}
    return json.dumps(key, sort_keys=True)


def config_differences(old: dict, new: dict) -> list[str]:
    """ "key: old -> new" for every compared key (not NOT_COMPARED) whose value differs."""
    a, b = flat(old), flat(new)
    return [
        f"{k}: {a.get(k, '(absent)')} -> {b.get(k, '(absent)')}"
        for k in sorted(set(a) | set(b))
        if compared(k) and a.get(k, "(absent)") != b.get(k, "(absent)")
    ]


class RunLock:
    """One process per run folder: an exclusive lock on <run>/.lock, held while the process
    works on the run. The kernel drops it when the process dies, so a kill leaves nothing stuck."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._file = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise ConfigError(
                f"another process is running in {self.path.parent} (it holds {self.path}); "
                "wait for it to finish or stop it; two processes on one run folder would "
                "interleave their records"
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


class Provenance:
    """<run>/provenance.json: {"sessions": [...], "changes": [...]}."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / PROVENANCE_FILE
        self.data = read_json(self.path) if self.path.is_file() else {"sessions": [], "changes": []}

    def finished_by(self) -> dict | None:
        """The session that finished the run (the last one whose outcome is "finished")."""
        done = [s for s in self.data["sessions"] if s.get("outcome") == "finished"]
        return done[-1] if done else None

    def record_change(self, what: str, differences: list[str]) -> None:
        self.data["changes"].append(
            {
                "at": provenance.now(),
                "what": what,
                "differences": differences,
                **provenance.code_version(),
            }
        )
        write_json(self.path, self.data)

    def start(self) -> dict:
        session = {**provenance.collect(), "ended": None, "outcome": "running"}
        self.data["sessions"].append(session)
        write_json(self.path, self.data)
        return session

    def end(self, session: dict, outcome: str) -> None:
        session.update(ended=provenance.now(), outcome=outcome)
        write_json(self.path, self.data)


def read_per_example(run_dir: str | Path, name: str = PER_EXAMPLE_FILE):
    """A run's per-example arrays by name, or None if it stored none."""
    path = Path(run_dir) / name
    if not path.exists():
        return None
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def build_model(cfg: TrainConfig, event_shape: tuple[int, ...]):
    """The model a config describes, for data whose examples have `event_shape`."""
    return cfg.model.build(tuple(event_shape), cfg.likelihood)


class Restored(NamedTuple):
    params: Any
    epoch: int
    step: int


def restore_params(run_dir: str | Path, model, x_mean, seed: int, epoch: int | None = None):
    """The trained parameters of a run (the latest checkpoint by default), without rebuilding
    an optimizer: only the `params` of the stored training state are read, into the structure
    that model.init gives."""
    import jax

    like = jax.eval_shape(lambda: model.init(jax.random.key(seed), x_mean))
    ckpt = Checkpointer(run_dir)
    try:
        available = ckpt.all_epochs()
        if not available:
            raise ConfigError(f"{run_dir} has no checkpoint yet")
        if epoch is not None and epoch not in available:
            raise ConfigError(
                f"{run_dir} has no checkpoint of epoch {epoch}; available: "
                f"{', '.join(map(str, available))}"
            )
        candidates = [epoch] if epoch is not None else available[::-1]
        for i, candidate in enumerate(candidates):
            try:
                params, meta = ckpt.restore_params(candidate, like)
                break
            except ConfigError:
                raise
            except Exception as e:  # noqa: BLE001 - unreadable (a kill mid-write): an older one
                if i == len(candidates) - 1:
                    raise ConfigError(
                        f"checkpoint {candidate} of {run_dir} is unreadable ({type(e).__name__}) "
                        "and there is no older readable one"
                    ) from None
                warnings.warn(
                    f"checkpoint {candidate} of {run_dir} is unreadable ({type(e).__name__}); "
                    "using the one before it",
                    stacklevel=2,
                )
    finally:
        ckpt.close()
    return Restored(params, candidate, int(meta.get("step", 0)))


class LoadedRun(NamedTuple):
    cfg: TrainConfig
    model: Any
    params: Any
    splits: Any
    epoch: int
    step: int


def load_run(
    run_dir: str | Path, epoch: int | None = None, *, data_root: str | None = None
) -> LoadedRun:
    """A run folder's config, model, data and trained parameters (the latest checkpoint by
    default). `data_root` replaces the data root recorded in the run (the data may have moved)."""
    cfg = load_config(run_dir)
    if data_root is not None:
        if "root" not in {f.name for f in dataclasses.fields(cfg.data)}:
            raise ConfigError(f"data_root: data {type(cfg.data).registry_name!r} has no root")
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=data_root))
    splits = cfg.data.build()
    model = build_model(cfg, splits.event_shape)
    restored = restore_params(run_dir, model, splits.train.mean(0), cfg.seed, epoch)
    return LoadedRun(cfg, model, restored.params, splits, restored.epoch, restored.step)
