"""Readers for the three file formats: IDX (gzip), Larochelle & Murray's .amat, Omniglot's .mat.

Each reader parses one file, checks its structure and returns numpy arrays. Anything wrong with the
file becomes a DataError naming the file and what is wrong, never a zlib/numpy traceback; the
caller adds how to fix it (re-download, reinstall), which depends on where the file came from.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import zlib
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import scipy.io

from elbo_lab.errors import DataError

PIXELS = 784  # 28 x 28, every dataset here
_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only type MNIST uses

# Every .amat line is 784 one-character values, each followed by one space, the last by a newline.
_AMAT_LINE = 2 * PIXELS
_AMAT_SEPARATORS = np.full(PIXELS, ord(" "), np.uint8)
_AMAT_SEPARATORS[-1] = ord("\n")


def read_idx(file: Path | Traversable, md5: str | None = None) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes (the MNIST format).

    Args:
      file: the `.gz` file (a path, or a Traversable from importlib.resources).
      md5: if given, the expected md5 of the UNCOMPRESSED content (the official MNIST md5s are of
        the uncompressed files; the .gz bytes differ between copies).
    Returns:
      uint8 array with the shape in the header, e.g. [N, 28, 28] for images, [N] for labels.
    """
    try:
        raw = gzip.decompress(file.read_bytes())
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; truncation, EOFError
        raise DataError(f"{file} is not a valid gzip file ({e})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != _UBYTE or raw[3] == 0:
        raise DataError(
            f"{file} is not an IDX file of unsigned bytes: its magic number is {raw[:4].hex()}, "
            "expected 000008 followed by the number of dimensions"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header]) if len(raw) >= header else None
    if shape is None or len(raw) != header + math.prod(shape):
        raise DataError(
            f"{file} has {len(raw):,} bytes uncompressed, which does not match its IDX header "
            f"(shape {shape}); the file is truncated or corrupt"
        )
    if md5 is not None and (got := hashlib.md5(raw).hexdigest()) != md5:
        raise DataError(
            f"{file} has the wrong content: md5 of the uncompressed data is {got}, expected {md5}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def read_amat(file: Path, sha256: str | None = None) -> np.ndarray:
    """Read a fixed-binarization .amat file: one image a line, 784 space-separated 0/1 values.

    Args:
      file: the .amat file.
      sha256: if given, the expected sha256 of the file's bytes.
    Returns:
      float32 [N, 784] with exact 0/1 values, rows row-major like MNIST.
    """
    blob = file.read_bytes()
    if sha256 is not None and (got := hashlib.sha256(blob).hexdigest()) != sha256:
        raise DataError(f"{file} has the wrong content: its sha256 is {got}, expected {sha256}")
    if not blob:
        raise DataError(f"{file} is empty")
    if not blob.endswith(b"\n"):
        blob += b"\n"
    # Parsing the bytes in place is ~0.3 s for the 78 MB train file; text parsers take 5-10 s.
    if len(blob) % _AMAT_LINE == 0:
        rows = np.frombuffer(blob, np.uint8).reshape(-1, _AMAT_LINE)
        bits = rows[:, 0::2] - np.uint8(ord("0"))  # '0'/'1' -> 0/1; any other byte lands above 1
        if (bits <= 1).all() and (rows[:, 1::2] == _AMAT_SEPARATORS).all():
            return bits.astype(np.float32)
    raise DataError(f"{file} is not in .amat format: {_first_bad_amat_line(blob)}")


def _first_bad_amat_line(blob: bytes) -> str:
    """Describe the first line of `blob` (which ends with a newline) that is not 784 0/1 values."""
    for n, line in enumerate(blob.split(b"\n")[:-1], start=1):
        values = line.split(b" ")
        if len(values) != PIXELS:
            return f"line {n} has {len(values)} space-separated values, expected {PIXELS}"
        bad = next((v for v in values if v not in (b"0", b"1")), None)
        if bad is not None:
            return f"line {n} has the value {bad!r}, expected 0 or 1"
    return "its lines are not 784 values 0/1 separated by single spaces"


def read_chardata(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read Omniglot's chardata.mat (the IWAE paper's layout) and make its images row-major.

    The file holds `data` [784, N] and `testdata` [784, Nt], grey values in [0, 1]; each column is
    one 28x28 image stored column-major (MATLAB order).
    Returns:
      (train, test): float32 [N, 784] and [Nt, 784] in [0, 1], each row a row-major image.
    """
    try:
        mat = scipy.io.loadmat(file, variable_names=("data", "testdata"))
    except Exception as e:  # scipy raises many exception types on corrupt or truncated files
        raise DataError(f"{file} is not a readable MATLAB file ({type(e).__name__}: {e})") from None
    images = []
    for key in ("data", "testdata"):
        if key not in mat:
            raise DataError(f"{file} has no variable {key!r}; expected 'data' and 'testdata'")
        x = mat[key]
        if x.ndim != 2 or x.shape[0] != PIXELS or not np.issubdtype(x.dtype, np.number):
            raise DataError(
                f"{file}: {key!r} is {x.dtype} {x.shape}, expected numbers of shape (784, N)"
            )
        if not ((x >= 0) & (x <= 1)).all():  # also catches NaN
            raise DataError(f"{file}: {key!r} has values outside [0, 1]")
        # Column-major 28x28 means each stored image is the transpose of the row-major one.
        images.append(x.T.reshape(-1, 28, 28).transpose(0, 2, 1).reshape(-1, PIXELS))
    return images[0].astype(np.float32), images[1].astype(np.float32)
