"""A user's arrays in one .npz file: `data=npz data.path=my.npz`.

Keys: `train` (required), `valid` and `test` (optional: cut from the end of train by
valid_fraction / test_fraction when absent). Each array is [N, D], [N, H, W] or [N, H, W, C],
uint8 (pixels, divided by 255), bool or float; see data/user.py for the rules. Make one with
`np.savez("my.npz", train=x_train, test=x_test)`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elbo_lab.data import REGISTRY, Splits, check_binarize
from elbo_lab.data.user import SPLITS, as_examples, check_fractions, user_splits
from elbo_lab.errors import DataError
from elbo_lab.registry import check


@REGISTRY.register("npz")
@dataclass(frozen=True)
class NPZ:
    """Arrays from an .npz file with keys train (required), valid, test (optional)."""

    path: str | None = None  # required
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    binarize: str = "none"

    def __post_init__(self):
        check(self.path is not None, "data=npz needs data.path=<file.npz>")
        check_binarize(self.binarize)
        check_fractions(self.valid_fraction, self.test_fraction)

    def build(self) -> Splits:
        path = Path(self.path).expanduser()
        if path.is_dir():
            raise DataError(f"data.path {path} is a folder; data=npz needs an .npz file")
        if not path.is_file():
            raise DataError(f"data.path {path} does not exist; data=npz needs an .npz file")
        try:
            with np.load(path, allow_pickle=False) as f:
                keys = list(f.files)
                if "train" not in keys:
                    raise DataError(
                        f"{path} has no array 'train' (it holds {', '.join(keys) or 'nothing'}); "
                        "save one with np.savez(path, train=x_train, test=x_test)"
                    )
                arrays = {k: as_examples(f[k], f"{path}: '{k}'") for k in SPLITS if k in keys}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise DataError(
                f"{path} is not a readable .npz file ({type(e).__name__}: {e})"
            ) from None
        return user_splits(
            f"data 'npz' ({path})", arrays, self.valid_fraction, self.test_fraction, self.binarize
        )

    def label(self) -> str:
        return f"npz({Path(self.path).name})"
