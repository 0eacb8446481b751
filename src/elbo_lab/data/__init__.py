"""Datasets: the registry, loading with download and verification, binarization, splits.

    splits = load("mnist")   # files under default_root()/mnist/, downloaded if missing
    splits.train             # float32 [59600, 784] Bernoulli means; the trainer binarizes afresh
    splits.test              # float32 [10000, 784] exact 0/1, binarized once with binarize_seed

Protocols follow the IWAE paper's public code (see ../shared/data/README.md):
- mnist, mnist_small: pixels/255 as Bernoulli means, dynamic binarization; validation = the last
  400 training images; test binarized once with a fixed seed.
- binarized_mnist: Larochelle & Murray's fixed binarization and their train/valid/test split.
- omniglot: grey values as Bernoulli means, dynamic; validation = a fixed random 1,345 of the
  training images; test binarized once with a fixed seed.

Files live under `<root>/<name>/` with their publishers' names. A mirror (the `mirror` argument or
$ELBO_LAB_DATA_MIRROR) has the same layout: `<mirror>/<name>/<file>`.
"""

from __future__ import annotations

import http.client
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from elbo_lab.data.download import fetch
from elbo_lab.data.errors import DataError
from elbo_lab.data.readers import PIXELS, read_amat, read_chardata, read_idx

__all__ = ["DATASETS", "DataError", "Splits", "default_root", "load"]

DATASETS: tuple[str, ...] = ("mnist_small", "mnist", "binarized_mnist", "omniglot")

# Files each downloadable dataset needs under <root>/<name>/, and their canonical base URLs.
# mnist needs only the image files: no split uses the labels.
FILES = {
    "mnist": ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"),
    "binarized_mnist": tuple(f"binarized_mnist_{s}.amat" for s in ("train", "valid", "test")),
    "omniglot": ("chardata.mat",),
}
URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "binarized_mnist": "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",
    "omniglot": "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/",
}

# md5 of the UNCOMPRESSED official IDX files: the .gz bytes differ between copies.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
}
BINARIZED_MNIST_SHA256 = {  # all known public copies are byte-identical
    "binarized_mnist_train.amat": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",  # noqa: E501
    "binarized_mnist_valid.amat": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",  # noqa: E501
    "binarized_mnist_test.amat": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
}
# No checksum for Omniglot: copies of chardata.mat differ (the canonical file is not the one on
# this machine), so loading checks its structure instead: keys, shapes, values in [0, 1], counts.
OMNIGLOT_SIZES = (24_345, 8_115)  # (train, test) images

MNIST_VALID = 400  # the last 400 training images
OMNIGLOT_VALID = 1_345
_OMNIGLOT_SPLIT_SEED = 0  # part of the dataset's definition: independent of binarize_seed

MNIST_SMALL_PREFIX = "mnist_small-"  # the shipped subset: elbo_lab/assets/mnist_small-<mnist file>


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is elementwise, so compare by identity
class Splits:
    """One dataset's train/valid/test splits, rows are flattened row-major 28x28 images.

    Attributes:
      name: the dataset's name, one of DATASETS.
      train: float32 [N, 784] in [0, 1]: Bernoulli means (grey/255) when dynamic, else exact 0/1.
      valid: float32 [Nv, 784] exact 0/1 (binarized once with a fixed seed for dynamic datasets).
      test: float32 [Nt, 784] exact 0/1 (binarized once with a fixed seed for dynamic datasets).
      dynamic: True when the trainer should binarize train afresh every minibatch.
    """

    name: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    dynamic: bool


def default_root() -> str:
    """The data folder when none is given: $ELBO_LAB_DATA, else <user cache>/elbo_lab/data.

    The user cache is $XDG_CACHE_HOME if set, else ~/.cache.
    """
    if root := os.environ.get("ELBO_LAB_DATA"):
        return os.path.expanduser(root)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(cache, "elbo_lab", "data")


def load(
    name: str,
    root: str | None = None,
    *,
    download: bool = True,
    mirror: str | None = None,
    binarize_seed: int = 0,
) -> Splits:
    """Load a dataset's splits, downloading missing files into `<root>/<name>/` if allowed.

    Args:
      name: one of DATASETS.
      root: the data folder; None means default_root(). Ignored by mnist_small (shipped).
      download: fetch missing files; if False, a missing file is a DataError.
      mirror: base URL replacing the canonical ones, laid out as `<mirror>/<name>/<file>`;
        None means $ELBO_LAB_DATA_MIRROR if set, else each file's canonical URL.
      binarize_seed: seed of the one-off binarization of valid and test (dynamic datasets).
    Returns:
      Splits; see its docstring for shapes and values.
    Raises:
      DataError: unknown name, missing files that cannot be downloaded, or a corrupt file.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)} (data=<name>)")
    if name == "mnist_small":
        assets = files("elbo_lab") / "assets"
        try:
            train, test = (read_idx(assets / f"{MNIST_SMALL_PREFIX}{f}") for f in FILES["mnist"])
            means = _mnist_splits(train, test)
        except (DataError, FileNotFoundError) as e:
            raise DataError(
                f"the shipped mnist_small files are missing or damaged: {e}. Reinstall elbo_lab, "
                "or rebuild them: python -m elbo_lab.data.make_mnist_small <folder with MNIST>"
            ) from None
        return _binarized_once(name, *means, seed=binarize_seed)

    folder = Path(root or default_root()).expanduser() / name
    _ensure_files(name, folder, download, mirror or os.environ.get("ELBO_LAB_DATA_MIRROR"))
    try:
        if name == "mnist":
            train, test = (read_idx(folder / f, md5=MNIST_MD5[f]) for f in FILES["mnist"])
            return _binarized_once(name, *_mnist_splits(train, test), seed=binarize_seed)
        if name == "omniglot":
            return _binarized_once(name, *_omniglot_splits(folder), seed=binarize_seed)
        train, valid, test = (
            read_amat(folder / f, sha256=BINARIZED_MNIST_SHA256[f]) for f in FILES[name]
        )
        return Splits(name, train, valid, test, dynamic=False)
    except DataError as e:
        raise DataError(
            f"{e}.\nDelete that file and run again to download it afresh (from {URLS[name]}), "
            "or replace it with a good copy."
        ) from None


def _mnist_splits(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, ...]:
    """MNIST-protocol splits of IDX image arrays.

    Args:
      train: uint8 [N, 28, 28] training images, N > 400.
      test: uint8 [Nt, 28, 28] test images.
    Returns:
      (train, valid, test) Bernoulli means, float32 [N - 400, 784], [400, 784], [Nt, 784]: the
      validation set is the last 400 training images.
    """
    for x, file in zip((train, test), FILES["mnist"], strict=True):
        if x.shape[1:] != (28, 28):
            raise DataError(f"{file} holds an array of shape {x.shape}, expected (N, 28, 28)")
    if len(train) <= MNIST_VALID:
        raise DataError(f"{FILES['mnist'][0]} holds only {len(train)} images, need > {MNIST_VALID}")
    train, test = (x.reshape(len(x), PIXELS).astype(np.float32) / 255 for x in (train, test))
    return train[:-MNIST_VALID], train[-MNIST_VALID:], test


def _omniglot_splits(folder: Path) -> tuple[np.ndarray, ...]:
    """Omniglot splits: (train, valid, test) grey values, float32 [N - 1345, 784], [1345, 784],
    [Nt, 784]; the validation images are a fixed random subset of chardata.mat's `data`."""
    file = folder / FILES["omniglot"][0]
    train, test = read_chardata(file)
    if (len(train), len(test)) != OMNIGLOT_SIZES:
        raise DataError(
            f"{file} has {len(train):,} training and {len(test):,} test images, expected "
            f"{OMNIGLOT_SIZES[0]:,} and {OMNIGLOT_SIZES[1]:,}"
        )
    rng = np.random.default_rng(_OMNIGLOT_SPLIT_SEED)
    is_valid = np.zeros(len(train), bool)
    is_valid[rng.choice(len(train), OMNIGLOT_VALID, replace=False)] = True
    return train[~is_valid], train[is_valid], test


def _binarized_once(
    name: str, train: np.ndarray, valid: np.ndarray, test: np.ndarray, seed: int
) -> Splits:
    """Dynamic-dataset Splits: train kept as means [N, 784]; valid and test binarized once."""
    # Separate streams, so the test binarization does not depend on the validation set's size.
    valid_rng, test_rng = np.random.default_rng(seed).spawn(2)
    return Splits(
        name,
        train,
        _binarize(valid, valid_rng),
        _binarize(test, test_rng),
        dynamic=True,
    )


def _binarize(means: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli samples float32 [..] (exact 0/1) with the given means [..]."""
    return (rng.random(means.shape, dtype=np.float32) < means).astype(np.float32)


def _ensure_files(name: str, folder: Path, download: bool, mirror: str | None) -> None:
    """Make sure FILES[name] are in `folder`, downloading the missing ones if allowed.

    Raises:
      DataError naming the missing files, the folder to put them in and the URLs to get them from.
    """
    missing = [f for f in FILES[name] if not (folder / f).is_file()]
    if not missing:
        return
    base = f"{mirror.rstrip('/')}/{name}/" if mirror else URLS[name]
    reason = "downloading is off (data.download=false)"
    if download:
        try:
            for f in missing:
                url = base + f
                fetch(url, folder / f)
            return
        except (OSError, http.client.HTTPException) as e:
            reason = f"downloading {url} failed: {e}"
    still = [f for f in missing if not (folder / f).is_file()]
    urls = "".join(f"\n  {base + f}" for f in still)
    raise DataError(
        f"dataset {name!r} is missing {', '.join(still)} in {folder}; {reason}.\n"
        f"To fix: download{urls}\nand put them in {folder}/, or point data.root=/path (or the "
        f"ELBO_LAB_DATA environment variable) at a folder holding {name}/ with these files."
    )
