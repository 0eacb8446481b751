"""From a user's arrays to Splits: dtype and shape rules, checks, and the split rule shared by
the `npz` and `image_folder` datasets.

Arrays are [N, ...] per split: [N, D] vectors (event shape (D,)), [N, H, W] grey images (event
shape (H, W, 1)) or [N, H, W, C] images. uint8 values are divided by 255; bool becomes 0/1;
floats are kept. A split that is not given is cut from the end of train: test the last
`test_fraction`, then valid the last `valid_fraction` of what is left.
"""

from __future__ import annotations

import math

import numpy as np

from elbo_lab.data import Splits, make_splits
from elbo_lab.errors import DataError
from elbo_lab.registry import check

SPLITS = ("train", "valid", "test")


def check_fractions(valid_fraction: float, test_fraction: float) -> None:
    check(
        0 <= valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1,
        "data.valid_fraction and data.test_fraction must lie in [0, 1) with a sum below 1, got "
        f"{valid_fraction} and {test_fraction}",
    )


def as_examples(x: np.ndarray, what: str) -> np.ndarray:
    """One split's array [N, ...] as float32 [N, ...] (see the module docstring)."""
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255
    elif x.dtype == np.bool_:
        x = x.astype(np.float32)
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    else:
        raise DataError(
            f"{what} has dtype {x.dtype}; supported: uint8 pixels (divided by 255), bool, or "
            "floats. Convert it, e.g. x.astype(np.float32)"
        )
    if x.ndim not in (2, 3, 4):
        raise DataError(
            f"{what} has shape {x.shape} (rank {x.ndim}); expected [N, D] vectors, [N, H, W] grey "
            "images or [N, H, W, C] images"
        )
    if x.shape[0] == 0 or math.prod(x.shape[1:]) == 0:
        raise DataError(f"{what} is empty (shape {x.shape})")
    if not np.isfinite(x).all():
        raise DataError(f"{what} has non-finite values (NaN or inf)")
    return x[..., None] if x.ndim == 3 else x


def user_splits(
    source: str,
    arrays: dict[str, np.ndarray],
    valid_fraction: float,
    test_fraction: float,
    binarize: str,
) -> Splits:
    """Splits from {"train": [N, ...], optional "valid", "test"} (already as_examples)."""
    train = arrays["train"]
    shapes = {name: a.shape[1:] for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(f"{source}: the splits' examples differ in shape: {shapes}")
    n = len(train)
    n_test = 0 if "test" in arrays else math.ceil(test_fraction * n)
    n_valid = 0 if "valid" in arrays else math.ceil(valid_fraction * (n - n_test))
    if (
        n - n_test - n_valid < 1
        or ("test" not in arrays and n_test < 1)
        or ("valid" not in arrays and n_valid < 1)
    ):
        raise DataError(
            f"{source}: {n} training examples cannot give the missing splits (valid_fraction "
            f"{valid_fraction}, test_fraction {test_fraction}); provide valid and test arrays, "
            "or more examples, or larger fractions"
        )
    test = arrays.get("test", train[n - n_test :])
    valid = arrays.get("valid", train[n - n_test - n_valid : n - n_test])
    train = train[: n - n_test - n_valid]
    if binarize != "none":
        for name, a in (("train", train), ("valid", valid), ("test", test)):
            lo, hi = float(a.min()), float(a.max())
            if lo < 0 or hi > 1:
                raise DataError(
                    f"{source}: {name} has values in [{lo:g}, {hi:g}]; binarize={binarize} "
                    "needs probabilities in [0, 1]: rescale, or use data.binarize=none"
                )
    flat = [a.reshape(len(a), -1) for a in (train, valid, test)]
    return make_splits(source, *flat, train.shape[1:], binarize)
