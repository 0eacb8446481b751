"""Rebuild the shipped `mnist_small` dataset (elbo_lab/assets/) from the full MNIST IDX files.

    python -m elbo_lab.data.make_mnist_small ../shared/data/mnist

Keeps the first 10,000 training and the first 2,000 test images (the full files' md5s are checked
first) and writes them as gzip IDX files, which load("mnist_small") reads with the MNIST reader.
The gzip header carries no timestamp, so a rebuild is byte-identical. Prints the assets' size,
which must stay under 2 MB.
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

from elbo_lab.data.mnist import FILES, MNIST_MD5, MNIST_SMALL_PREFIX
from elbo_lab.data.readers import read_idx

SIZES = (10_000, 2_000)  # (train, test) images kept, in FILES order
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mnist", type=Path, help="folder with the four MNIST .gz files")
    parser.add_argument("--out", type=Path, default=ASSETS, help=f"default: {ASSETS}")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for file, n in zip(FILES, SIZES, strict=True):
        images = read_idx(args.mnist / file, md5=MNIST_MD5[file])[:n]
        header = struct.pack(">BBBB3I", 0, 0, 0x08, 3, *images.shape)  # IDX: uint8, 3 dims
        blob = gzip.compress(header + images.tobytes(), compresslevel=9, mtime=0)
        (args.out / f"{MNIST_SMALL_PREFIX}{file}").write_bytes(blob)
        print(f"{MNIST_SMALL_PREFIX}{file}: {images.shape[0]:,} images, {len(blob):,} bytes")
    total = sum(f.stat().st_size for f in args.out.iterdir() if f.is_file())
    print(f"{args.out}: {total:,} bytes in all")


if __name__ == "__main__":
    main()
