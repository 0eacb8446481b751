"""MNIST (IDX .gz) and the real MNIST subset shipped in the package (`mnist_small`).

Protocol of the IWAE paper's public code: pixels/255 as Bernoulli means, dynamic binarization;
validation = the last 400 training images; test binarized once with a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import numpy as np

from elbo_lab.data import (
    REGISTRY,
    Downloadable,
    Splits,
    check_binarize,
    redownload_hint,
)
from elbo_lab.data import make_splits as _make_splits
from elbo_lab.data.readers import read_idx
from elbo_lab.errors import DataError

# mnist needs only the image files: no split uses the labels.
FILES = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# md5 of the UNCOMPRESSED official IDX files: the .gz bytes differ between copies.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
}
MNIST_VALID = 400  # the last 400 training images
EVENT_SHAPE = (28, 28, 1)
MNIST_SMALL_PREFIX = "mnist_small-"  # the shipped subset: elbo_lab/assets/mnist_small-<file>


def mnist_splits(source: str, train, test, binarize: str) -> Splits:
    """MNIST-protocol splits of IDX image arrays uint8 [N, 28, 28] (N > 400) and [Nt, 28, 28]:
    the validation set is the last 400 training images."""
    for x, file in zip((train, test), FILES, strict=True):
        if x.shape[1:] != EVENT_SHAPE[:2]:
            raise DataError(f"{file} holds an array of shape {x.shape}, expected (N, 28, 28)")
    if len(train) <= MNIST_VALID:
        raise DataError(f"{FILES[0]} holds only {len(train)} images, need > {MNIST_VALID}")
    train, test = (x.reshape(len(x), -1).astype(np.float32) / 255 for x in (train, test))
    return _make_splits(
        source, train[:-MNIST_VALID], train[-MNIST_VALID:], test, EVENT_SHAPE, binarize
    )


@REGISTRY.register("mnist")
@dataclass(frozen=True)
class MNIST(Downloadable):
    """MNIST, 60,000 / 10,000 images (IDX .gz under <root>/mnist/), downloaded if missing."""

    def build(self) -> Splits:
        folder = self.local_files("mnist", FILES, URL)
        with redownload_hint(URL):
            train, test = (read_idx(folder / f, md5=MNIST_MD5[f]) for f in FILES)
        return mnist_splits(f"data 'mnist' ({folder})", train, test, self.binarize)

    def label(self) -> str:
        return "mnist"


@REGISTRY.register("mnist_small")
@dataclass(frozen=True)
class MNISTSmall:
    """Shipped inside the package (9,600 train / 400 valid / 2,000 test real MNIST digits)."""

    binarize: str = "dynamic"

    def __post_init__(self):
        check_binarize(self.binarize)

    def build(self) -> Splits:
        assets = files("elbo_lab") / "assets"
        try:
            train, test = (read_idx(assets / f"{MNIST_SMALL_PREFIX}{f}") for f in FILES)
            return mnist_splits("data 'mnist_small' (shipped)", train, test, self.binarize)
        except (DataError, FileNotFoundError) as e:
            raise DataError(
                f"the shipped mnist_small files are missing or damaged: {e}. Reinstall elbo_lab, "
                "or rebuild them: python -m elbo_lab.data.make_mnist_small <folder with MNIST>"
            ) from None

    def label(self) -> str:
        return "mnist_small"
