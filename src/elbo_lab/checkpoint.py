"""Save and restore the training state with orbax, one checkpoint per finished epoch.

Resuming is exact because nothing random is carried in the state: every key is derived from the
seed and the step or epoch number (see train.py), so a run restored at epoch e continues with the
same minibatches and samples it would have drawn had it never stopped.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp


class Checkpointer:
    """Checkpoints under `<run_dir>/checkpoints/<epoch>`; keeps the newest `keep`."""

    def __init__(self, run_dir: str | Path, keep: int = 2):
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(
            Path(run_dir).absolute() / "checkpoints", options=options
        )

    def latest_epoch(self) -> int | None:
        """The last epoch with a checkpoint, or None."""
        return self._manager.latest_step()

    def restore_latest(self, like: Any) -> tuple[int, Any, dict] | None:
        """(epoch, state, meta) of the newest checkpoint that restores, or None if there is none.

        A process killed while orbax finalises a checkpoint can leave its folder in place with
        part of the data missing; such a checkpoint is deleted (with a warning) for the one
        before it, so a kill costs at most the epochs since that one.
        """
        for epoch in sorted(self._manager.all_steps(), reverse=True):
            try:
                state, meta = self.restore(epoch, like)
            except Exception as e:  # noqa: BLE001 - any failure to read means: use an older one
                warnings.warn(
                    f"checkpoint {epoch} is incomplete ({type(e).__name__}); deleted it, "
                    "resuming from an older one",
                    stacklevel=2,
                )
                self._manager.delete(epoch)
                continue
            return epoch, state, meta
        return None

    def save(self, epoch: int, state: Any, meta: dict) -> None:
        """Write `state` (a pytree) and `meta` (JSON) for `epoch`; blocks until on disk."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self._manager.save(epoch, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, epoch: int, like: Any) -> tuple[Any, dict]:
        """(state with the structure of `like`, meta) saved at `epoch`."""
        args = ocp.args.Composite(state=ocp.args.StandardRestore(like), meta=ocp.args.JsonRestore())
        out = self._manager.restore(epoch, args=args)
        return out["state"], out["meta"]

    def close(self) -> None:
        self._manager.close()
