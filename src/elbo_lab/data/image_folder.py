"""A user's images (PNG or JPEG) in folders: `data=image_folder data.path=my_images`.

Layout: `<path>/train/`, and optionally `<path>/valid/` and `<path>/test/` (images anywhere
below each, e.g. in class folders, read in sorted order); a split without a folder is cut from
the end of train by valid_fraction / test_fraction. Without a train/ folder, every image below
<path> is train. Images are read as grey (channels=1) or RGB (channels=3) and, with size=[H, W],
resized; without it they must all have one size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from elbo_lab.data import REGISTRY, Splits, check_binarize
from elbo_lab.data.user import SPLITS, as_examples, check_fractions, user_splits
from elbo_lab.errors import DataError
from elbo_lab.registry import check

EXTENSIONS = (".png", ".jpg", ".jpeg")


def read_images(folder: Path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """uint8 [N, H, W, channels] of every image below `folder`, in sorted path order."""
    from PIL import Image, UnidentifiedImageError

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS)
    if not paths:
        raise DataError(f"{folder} holds no images ({', '.join(EXTENSIONS)} files)")
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                im = im.convert("L" if channels == 1 else "RGB")
                if size is not None:
                    im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                a = np.asarray(im, np.uint8)
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"{p} is not a readable image ({type(e).__name__}: {e})") from None
        if images and a.shape != images[0].shape:
            raise DataError(
                f"{p} is {a.shape[1]}x{a.shape[0]} but {paths[0]} is "
                f"{images[0].shape[1]}x{images[0].shape[0]}: give data.size=[height,width] to "
                "resize every image"
            )
        images.append(a)
    x = np.stack(images)
    return x[..., None] if x.ndim == 3 else x


@REGISTRY.register("image_folder")
@dataclass(frozen=True)
class ImageFolder:
    """PNG/JPEG images, one folder per split (train/, optional valid/, test/)."""

    path: str | None = None  # required
    channels: int = 1  # 1: grey, 3: RGB
    size: list[int] | None = None  # [height, width] to resize to; None: as they are
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    binarize: str = "none"

    def __post_init__(self):
        check(self.path is not None, "data=image_folder needs data.path=<folder>")
        check(self.channels in (1, 3), f"data.channels must be 1 or 3, got {self.channels}")
        check(
            self.size is None or (len(self.size) == 2 and min(self.size) >= 1),
            f"data.size must be [height, width] or null, got {self.size}",
        )
        check_binarize(self.binarize)
        check_fractions(self.valid_fraction, self.test_fraction)

    def build(self) -> Splits:
        root = Path(self.path).expanduser()
        if not root.is_dir():
            what = "is a file" if root.exists() else "does not exist"
            raise DataError(f"data.path {root} {what}; data=image_folder needs a folder")
        size = None if self.size is None else tuple(self.size)
        folders = {s: root / s for s in SPLITS if (root / s).is_dir()}
        if "train" not in folders:
            folders = {"train": root}
        arrays = {
            s: as_examples(read_images(f, self.channels, size), str(f)) for s, f in folders.items()
        }
        return user_splits(
            f"data 'image_folder' ({root})",
            arrays,
            self.valid_fraction,
            self.test_fraction,
            self.binarize,
        )

    def label(self) -> str:
        return f"image_folder({Path(self.path).name})"
