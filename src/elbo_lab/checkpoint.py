"""Save and restore the training state with orbax, one checkpoint per finished epoch.

Resuming is exact because nothing random is carried in the state: every key is derived from the
seed and the step or epoch number (see train.py), so a run restored at epoch e continues with the
same minibatches and samples it would have drawn had it never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from elbo_lab.errors import ConfigError, disk_error

UNREADABLE_DIR = "checkpoints_unreadable"  # next to checkpoints/, outside orbax's folder


class Checkpointer:
    """Checkpoints under `<run_dir>/checkpoints/<epoch>`; keeps the newest `keep`."""

    def __init__(self, run_dir: str | Path, keep: int = 2):
        if set("[]*?") & set(str(Path(run_dir).absolute())):
            raise ConfigError(
                f"cannot checkpoint under {run_dir}: orbax treats [ ] * ? in a path as a glob "
                "pattern and writes unreadable checkpoints; use a folder name without them"
            )
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False)
        self._dir = Path(run_dir).absolute() / "checkpoints"
        self._manager = ocp.CheckpointManager(self._dir, options=options)

    def latest_epoch(self) -> int | None:
        """The last epoch with a checkpoint, or None."""
        return self._manager.latest_step()

    def all_epochs(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore_latest(self, like: Any) -> tuple[int, Any, dict] | None:
        """(epoch, state, meta) of the newest readable checkpoint, or None if there is none.

        A process killed while a checkpoint is written can leave it unreadable: it is moved to
        <run>/checkpoints_unreadable/<epoch>-<time>/ (kept, never deleted) with a warning and
        the one before it is used, so a kill costs at most the epochs since then. A checkpoint
        that reads but does not fit `like` (a changed model, objective or optimizer) is a
        ConfigError naming what differs, and nothing is moved.
        """
        for epoch in sorted(self._manager.all_steps(), reverse=True):
            if not self._reads(epoch):
                dest = self._put_aside(epoch)
                warnings.warn(
                    f"checkpoint {epoch} is unreadable; kept as {dest}, resuming from an older one",
                    stacklevel=2,
                )
                continue
            with held_stderr() as held:
                try:
                    state, meta = self.restore(epoch, like)
                except Exception:  # noqa: BLE001 - it reads, so the template is what differs
                    held.discard()
                    quiet_orbax_reads()
                    stored = self._manager.restore(epoch, args=_raw_restore())["state"]["params"]
                    raise ConfigError(
                        f"checkpoint {epoch} in {self._dir} does not match the training state of "
                        "this run's config (a changed model, objective or optimizer): stored "
                        f"parameters {_describe(_shapes(stored))}; the config's "
                        f"{_describe(_shapes(like.params))}. Nothing was changed: run the new "
                        "config under another name"
                    ) from None
            return epoch, state, meta
        return None

    def _reads(self, epoch: int) -> bool:
        """Whether the checkpoint of `epoch` reads at all (a kill can leave it half-written);
        the abandoned reads' reports of a failure are dropped."""
        with held_stderr() as held:
            try:
                self._manager.restore(epoch, args=_raw_restore())
                return True
            except Exception:  # noqa: BLE001 - any failure to read: it is unreadable
                held.discard()
                quiet_orbax_reads()
                return False

    def _put_aside(self, epoch: int) -> Path:
        dest = self._dir.parent / UNREADABLE_DIR / f"{epoch}-{time.strftime('%Y%m%dT%H%M%S')}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self._dir / str(epoch)), dest)
        self._manager.reload()
        return dest

    def save(self, epoch: int, state: Any, meta: dict) -> None:
        """Write `state` (a pytree) and `meta` (JSON) for `epoch`; blocks until on disk."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        # When a write fails (a full disk), orbax's and tensorstore's threads log and print a
        # traceback for every write it aborts: held back here, shown unless the failure is a
        # disk problem, which gets one message instead.
        absl = logging.getLogger("absl")
        level = absl.level
        absl.setLevel(logging.CRITICAL)
        with held_stderr() as held:
            try:
                self._manager.save(epoch, args=args, force=True)
                self._manager.wait_until_finished()
            except Exception as e:
                problem = disk_error(e, f"checkpoint {epoch} under {self._dir}")
                if problem is None:
                    raise
                held.discard()
                # the aborted writes' tasks report themselves once more when collected
                logging.getLogger("asyncio").setLevel(logging.CRITICAL)
                raise problem from None
            finally:
                absl.setLevel(level)

    def restore(self, epoch: int, like: Any) -> tuple[Any, dict]:
        """(state with the structure of `like`, meta) saved at `epoch`."""
        args = ocp.args.Composite(state=ocp.args.StandardRestore(like), meta=ocp.args.JsonRestore())
        out = self._manager.restore(epoch, args=args)
        return out["state"], out["meta"]

    def restore_params(self, epoch: int, like: Any) -> tuple[Any, dict]:
        """(the `params` of the state saved at `epoch`, meta), checked against the structure and
        shapes of `like` (e.g. jax.eval_shape of model.init); no optimizer state is rebuilt."""
        out = self._manager.restore(epoch, args=_raw_restore())
        params = out["state"]["params"]
        got, want = _shapes(params), _shapes(like)
        if got != want:
            raise ConfigError(
                f"checkpoint {epoch} holds parameters that do not match the model of the run's "
                f"config: stored {_describe(got)}, the config's model has {_describe(want)}"
            )
        return jax.tree.map(jnp.asarray, params), out["meta"]

    def close(self) -> None:
        self._manager.close()


def quiet_orbax_reads() -> None:
    """After a failed restore that is handled here (moved aside, or a clear error), orbax's
    abandoned read coroutines report "Exception ignored" with a traceback when collected: drop
    those reports (other unraisable exceptions are reported as before)."""
    default = sys.unraisablehook
    if getattr(default, "quiet_orbax", False):
        return

    def hook(unraisable) -> None:
        code = getattr(unraisable.object, "cr_code", None)
        if code is None or "orbax" not in code.co_filename:
            default(unraisable)

    hook.quiet_orbax = True
    sys.unraisablehook = hook


class _Held:
    def __init__(self, file):
        self.keep, self._file = True, file

    def discard(self) -> None:
        """Drop what was held, once the writers have gone quiet (the aborted writes of a full
        disk report from tensorstore's threads for a while after the save has failed)."""
        self.keep = False
        size, quiet_since, start = -1, time.time(), time.time()
        while time.time() - quiet_since < 0.5 and time.time() - start < 10:
            time.sleep(0.05)
            now = os.fstat(self._file.fileno()).st_size
            if now != size:
                size, quiet_since = now, time.time()


@contextlib.contextmanager
def held_stderr():
    """Collect what is written to file descriptor 2 (by Python or by C++ threads) inside the
    block and write it out at the end, unless the block called .discard() on what it yields."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        held = _Held(tmp)
        os.dup2(tmp.fileno(), 2)
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if held.keep:
                tmp.seek(0)
                os.write(2, tmp.read())


def _describe(shapes) -> str:
    """Parameter names and shapes, e.g. 'enc0/Dense_0/kernel (784, 200), ...'."""
    flat = jax.tree_util.tree_flatten_with_path(shapes, is_leaf=lambda v: isinstance(v, tuple))[0]
    return ", ".join(f"{jax.tree_util.keystr(path)} {shape}" for path, shape in flat)


def _raw_restore():
    """Restore args reading whatever was saved, as nested dicts (no template)."""
    return ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore())


def _shapes(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree)
