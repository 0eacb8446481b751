"""Larochelle & Murray (2011)'s fixed binarization of MNIST (.amat): 50,000 / 10,000 / 10,000."""

from __future__ import annotations

from dataclasses import dataclass

from elbo_lab.data import (
    REGISTRY,
    Downloadable,
    Splits,
    redownload_hint,
)
from elbo_lab.data import make_splits as _make_splits
from elbo_lab.data.readers import read_amat

FILES = tuple(f"binarized_mnist_{s}.amat" for s in ("train", "valid", "test"))
URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
SHA256 = {  # all known public copies are byte-identical
    "binarized_mnist_train.amat": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",  # noqa: E501
    "binarized_mnist_valid.amat": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",  # noqa: E501
    "binarized_mnist_test.amat": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
}


@REGISTRY.register("binarized_mnist")
@dataclass(frozen=True)
class BinarizedMNIST(Downloadable):
    """The fixed binarization and its train/valid/test split (already 0/1: binarize=none)."""

    binarize: str = "none"

    def build(self) -> Splits:
        folder = self.local_files("binarized_mnist", FILES, URL)
        with redownload_hint(URL):
            train, valid, test = (read_amat(folder / f, sha256=SHA256[f]) for f in FILES)
        source = f"data 'binarized_mnist' ({folder})"
        return _make_splits(source, train, valid, test, (28, 28, 1), self.binarize)

    def label(self) -> str:
        return "binarized_mnist"
