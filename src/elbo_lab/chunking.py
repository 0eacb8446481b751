"""The one chunked map: a jitted per-example function over N examples in chunks of one shape."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm


def chunked_map(
    fn: Callable[..., dict],
    arrays: Sequence[np.ndarray],
    batch: int,
    key: jax.Array | None = None,
    *,
    post: Callable[[dict], dict] | None = None,
    desc: str = "",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """fn over the rows of `arrays` (each [N, ...]) in chunks of `batch` rows.

    fn(*chunks) -> dict of arrays with a leading [batch] axis, or fn(key_i, *chunks) when `key`
    is given, with key_i = fold_in(key, first row of the chunk). The last chunk is padded by
    repeating its first row, so every call has one compiled shape (the padding rows' outputs are
    dropped; keys depend on the chunk's size only, so real rows' results do not depend on the
    padding). `post` maps one chunk's outputs (numpy, padding dropped) to the per-example arrays
    kept, so large intermediates (e.g. 5,000 log weights per example) are never all in memory.
    Returns the kept arrays concatenated over the N examples.
    """
    n = arrays[0].shape[0]
    parts: dict[str, list[np.ndarray]] = {}
    for start in tqdm(range(0, n, batch), desc=desc, disable=not progress, leave=False):
        chunk = [a[start : start + batch] for a in arrays]
        m = chunk[0].shape[0]
        if m < batch:
            chunk = [np.concatenate([c, np.repeat(c[:1], batch - m, 0)]) for c in chunk]
        args = [jnp.asarray(c) for c in chunk]
        out = fn(jax.random.fold_in(key, start), *args) if key is not None else fn(*args)
        out = {name: np.asarray(v)[:m] for name, v in jax.device_get(out).items()}
        for name, v in (post(out) if post else out).items():
            parts.setdefault(name, []).append(v)
    return {name: np.concatenate(v) for name, v in parts.items()}
