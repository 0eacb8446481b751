"""Datasets: the registry, splits, binarization as a data option, download and verification.

    splits = REGISTRY.get("mnist")(root="../shared/data").build()
    splits.train        # float32 [59600, 784] Bernoulli means (binarize=dynamic: the trainer
                        # binarizes afresh every minibatch)
    splits.test         # float32 [10000, 784] exact 0/1, binarized once with a fixed seed
    splits.event_shape  # (28, 28, 1): one example's shape; rows are flattened row-major

Entries (`data=<name>`): the four built in (mnist_small, mnist, binarized_mnist, omniglot), and
`npz` and `image_folder` for a user's own data. Every entry has a `binarize` option:
  dynamic  train stays as Bernoulli means and is binarized afresh for every minibatch; valid and
           test are binarized once with a fixed seed (the IWAE paper's protocol);
  once     train, valid and test are binarized once with a fixed seed;
  none     the values as they are (continuous data, or data that is already binary).
Files of the built-in datasets live under `<root>/<name>/` with their publishers' names; a mirror
(the `mirror` field or $ELBO_LAB_DATA_MIRROR) has the same layout: `<mirror>/<name>/<file>`.
"""

from __future__ import annotations

import http.client
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elbo_lab.data.download import fetch
from elbo_lab.errors import DataError
from elbo_lab.registry import Registry, check

__all__ = ["REGISTRY", "DataError", "Splits", "default_root", "load", "make_splits"]

REGISTRY = Registry("data")
BINARIZE = ("dynamic", "once", "none")
BINARIZE_SEED = 0  # part of each dataset's definition: the one-off binarizations are fixed


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, so compare by identity
class Splits:
    """One dataset's train/valid/test splits; each row is one example flattened row-major.

    Attributes:
      source: what was loaded, for messages (e.g. "data 'npz' (/path/my.npz)").
      train: float32 [N, X]: Bernoulli means when dynamic, else the values to train on.
      valid: float32 [Nv, X]; test: float32 [Nt, X] (binarized once unless binarize=none).
      event_shape: one example's shape, prod = X; images are (height, width, channels).
      dynamic: True when the trainer should binarize train afresh every minibatch.
    """

    source: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    event_shape: tuple[int, ...]
    dynamic: bool


def check_binarize(value: str) -> None:
    check(value in BINARIZE, f"data.binarize must be one of {', '.join(BINARIZE)}, got {value!r}")


def make_splits(
    source: str, train, valid, test, event_shape, binarize: str, seed: int = BINARIZE_SEED
) -> Splits:
    """Splits from arrays [N, X] in [0, 1] (or any values when binarize="none")."""
    # Separate streams, so no binarization depends on another split's size.
    valid_rng, test_rng, train_rng = np.random.default_rng(seed).spawn(3)
    if binarize != "none":
        valid, test = _binarize(valid, valid_rng), _binarize(test, test_rng)
        if binarize == "once":
            train = _binarize(train, train_rng)
    return Splits(
        source,
        np.asarray(train, np.float32),
        np.asarray(valid, np.float32),
        np.asarray(test, np.float32),
        tuple(int(d) for d in event_shape),
        dynamic=binarize == "dynamic",
    )


def _binarize(means: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli samples float32 [..] (exact 0/1) with the given means [..]."""
    return (rng.random(means.shape, dtype=np.float32) < means).astype(np.float32)


def default_root() -> str:
    """The data folder when none is given: $ELBO_LAB_DATA, else <user cache>/elbo_lab/data.

    The user cache is $XDG_CACHE_HOME if set, else ~/.cache.
    """
    if root := os.environ.get("ELBO_LAB_DATA"):
        return os.path.expanduser(root)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(cache, "elbo_lab", "data")


def dataset_folder(root: str | None, name: str) -> Path:
    return Path(root or default_root()).expanduser() / name


def ensure_files(
    name: str, folder: Path, files, url: str, download: bool, mirror: str | None
) -> None:
    """Make sure `files` are in `folder`, downloading the missing ones from `url` (or from
    `<mirror>/<name>/`, or $ELBO_LAB_DATA_MIRROR) if allowed.

    Raises:
      DataError naming the missing files, the folder to put them in and the URLs to get them from.
    """
    for part in (folder.parent, folder):
        if part.exists() and not part.is_dir():
            raise DataError(f"{part} is a file, not a folder: data.root must name a folder")
    for f in files:
        if (folder / f).is_dir():
            raise DataError(f"{folder / f} is a folder; {name} needs the file {f} there")
    missing = [f for f in files if not (folder / f).is_file()]
    if not missing:
        return
    mirror = mirror or os.environ.get("ELBO_LAB_DATA_MIRROR")
    base = f"{mirror.rstrip('/')}/{name}/" if mirror else url
    reason = "downloading is off (data.download=false)"
    if download:
        try:
            for f in missing:
                file_url = base + f
                fetch(file_url, folder / f)
            return
        except (OSError, http.client.HTTPException) as e:
            reason = f"downloading {file_url} failed: {e}"
    still = [f for f in missing if not (folder / f).is_file()]
    urls = "".join(f"\n  {base + f}" for f in still)
    raise DataError(
        f"dataset {name!r} is missing {', '.join(still)} in {folder}; {reason}.\n"
        f"To fix: download{urls}\nand put them in {folder}/, or point data.root=/path (or the "
        f"ELBO_LAB_DATA environment variable) at a folder holding {name}/ with these files."
    )


@dataclass(frozen=True)
class Downloadable:
    """The fields of a built-in dataset whose files are downloaded into <root>/<name>/ when
    missing, and the binarization option (subclasses set its default)."""

    root: str | None = None  # where <root>/<name>/ holds the files; None: default_root()
    download: bool = True
    mirror: str | None = None  # base URL replacing the canonical one (tests, local mirrors)
    binarize: str = "dynamic"

    def __post_init__(self):
        check_binarize(self.binarize)

    def local_files(self, name: str, files, url: str) -> Path:
        """The folder <root>/<name>/ holding `files`, downloaded from `url` if missing."""
        folder = dataset_folder(self.root, name)
        ensure_files(name, folder, files, url, self.download, self.mirror)
        return folder


@contextmanager
def redownload_hint(url: str):
    """A DataError about a local file gets the fix: download it afresh, or replace it."""
    try:
        yield
    except DataError as e:
        raise DataError(
            f"{e}.\nDelete that file and run again to download it afresh (from {url}), "
            "or replace it with a good copy."
        ) from None


def load(name: str, **fields) -> Splits:
    """The splits of the dataset entry `name` with the given fields (a shortcut for
    REGISTRY.get(name)(**fields).build())."""
    return REGISTRY.get(name)(**fields).build()


def _register_builtins() -> None:
    from elbo_lab.data import binarized_mnist, image_folder, mnist, npz, omniglot  # noqa: F401


_register_builtins()
