"""The run folder as one API: its file names, what "finished" means, config and params loading,
atomic writes. Train, evaluate and report all go through here.

    <out_root>/<name>/<overrides>/
      config.json            the validated, resolved TrainConfig (config.to_dict)
      metrics.jsonl          one record per epoch, then the test record (the source of truth)
      checkpoints/<epoch>/   the training state (orbax), the newest two kept
      results.json           the final numbers; done.json: the run is finished
      test_per_example.npz   each test example's log p(x) (paired comparisons between runs)
      figures/, wandb/, eval/ (elbo-lab-eval's outputs, one set per split)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from elbo_lab.checkpoint import Checkpointer
from elbo_lab.config import TrainConfig, to_dict, to_train_config
from elbo_lab.errors import ConfigError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
DONE_FILE = "done.json"
PER_EXAMPLE_FILE = "test_per_example.npz"
EVAL_DIR = "eval"


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


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (a temporary file in the same folder, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dumps(obj, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    try:
        return to_train_config(read_json(path))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def read_results(run_dir: str | Path) -> dict:
    return read_json(Path(run_dir) / RESULTS_FILE)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every record of a run's metrics.jsonl, in order."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
        epoch = available[-1] if epoch is None else epoch
        if epoch not in available:
            raise ConfigError(
                f"{run_dir} has no checkpoint of epoch {epoch}; available: "
                f"{', '.join(map(str, available))}"
            )
        params, meta = ckpt.restore_params(epoch, like)
    finally:
        ckpt.close()
    return Restored(params, epoch, int(meta.get("step", 0)))


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
    import dataclasses

    cfg = load_config(run_dir)
    if data_root is not None:
        if "root" not in {f.name for f in dataclasses.fields(cfg.data)}:
            raise ConfigError(f"data_root: data {type(cfg.data).registry_name!r} has no root")
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=data_root))
    splits = cfg.data.build()
    model = build_model(cfg, splits.event_shape)
    restored = restore_params(run_dir, model, splits.train.mean(0), cfg.seed, epoch)
    return LoadedRun(cfg, model, restored.params, splits, restored.epoch, restored.step)
