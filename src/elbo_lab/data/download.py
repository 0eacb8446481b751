"""Download one file atomically, with a progress bar for large files."""

from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

TIMEOUT_S = 60  # per blocking socket operation, so a stalled server cannot hang a run
_CHUNK = 1 << 16
_BAR_MIN_BYTES = 1 << 20  # below this a progress bar is noise


def fetch(url: str, dest: Path) -> None:
    """Download `url` (http, https or file) to `dest`, creating dest's folder.

    The bytes go to a temp file in the same folder, renamed to `dest` only once complete, so an
    interrupted download never leaves a partial file where a loader would trust it.
    Raises:
      OSError (urllib's URLError/HTTPError are OSErrors) or http.client.HTTPException on failure.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            size = resp.headers.get("Content-Length")  # absent when the server does not say
            total = int(size) if size else None
            received = 0
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                disable=(total or 0) < _BAR_MIN_BYTES,
            ) as bar:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"the connection closed after {received:,} of {total:,} bytes")
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise
