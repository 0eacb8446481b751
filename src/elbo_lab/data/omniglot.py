"""Omniglot (the IWAE paper's chardata.mat layout): grey values as Bernoulli means, dynamic
binarization; validation = a fixed random 1,345 of the training images; test binarized once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elbo_lab.data import (
    REGISTRY,
    Downloadable,
    Splits,
    redownload_hint,
)
from elbo_lab.data import make_splits as _make_splits
from elbo_lab.data.readers import read_chardata
from elbo_lab.errors import DataError

FILES = ("chardata.mat",)
URL = "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/"
# No checksum: copies of chardata.mat differ (the canonical file is not the one on this machine),
# so loading checks its structure instead: keys, shapes, values in [0, 1], counts.
SIZES = (24_345, 8_115)  # (train, test) images
VALID = 1_345
SPLIT_SEED = 0  # part of the dataset's definition: independent of the binarization seed


@REGISTRY.register("omniglot")
@dataclass(frozen=True)
class Omniglot(Downloadable):
    """Omniglot 28x28, 24,345 / 8,115 images (chardata.mat under <root>/omniglot/)."""

    def build(self) -> Splits:
        folder = self.local_files("omniglot", FILES, URL)
        file = folder / FILES[0]
        with redownload_hint(URL):
            train, test = read_chardata(file)
            if (len(train), len(test)) != SIZES:
                raise DataError(
                    f"{file} has {len(train):,} training and {len(test):,} test images, "
                    f"expected {SIZES[0]:,} and {SIZES[1]:,}"
                )
        rng = np.random.default_rng(SPLIT_SEED)
        is_valid = np.zeros(len(train), bool)
        is_valid[rng.choice(len(train), VALID, replace=False)] = True
        return _make_splits(
            f"data 'omniglot' ({folder})",
            train[~is_valid],
            train[is_valid],
            test,
            (28, 28, 1),
            self.binarize,
        )

    def label(self) -> str:
        return "omniglot"
