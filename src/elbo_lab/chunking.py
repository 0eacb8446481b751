"""The one chunked map: a jitted per-example function over N examples in chunks of one shape."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from elbo_lab import parallel


def chunked_map(
    fn: Callable[..., dict],
    arrays: Sequence[np.ndarray],
    batch: int,
    key: jax.Array | None = None,
    *,
    params: Any = None,
    post: Callable[[dict], dict] | None = None,
    desc: str = "",
    progress: bool = False,
    first_row: int = 0,
) -> dict[str, np.ndarray]:
    """fn over the rows of `arrays` (each [N, ...]) in chunks of `batch` rows.

    fn(params, key_i, *chunks) -> dict of arrays with a leading [batch] axis, with key_i =
    fold_in(key, first_row + the chunk's first row) (None without a `key`): with `first_row` the
    index of arrays' first row in a larger data set, rows [a, b) mapped with first_row=a get the
    keys, hence the results, of the whole set's map whenever a is a multiple of `batch`.
    `params` (any pytree, e.g. the model's parameters) is passed, not closed over, so a compiled
    fn is reused and the arrays are never baked into it. The last chunk is padded by repeating
    its first row, so every call has one compiled shape (the padding rows' outputs are dropped;
    keys depend on the chunk's size only, so real rows' results do not depend on the padding).
    `post` maps one chunk's outputs (numpy, padding dropped) to the per-example arrays kept, so
    large intermediates (e.g. 5,000 log weights per example) are never all in memory. Returns
    the kept arrays concatenated over the N examples.

    Under parallel.data_parallel(n), n chunks run at once, one per device, each with its own
    key: the results are the one-device results.
    """
    n = arrays[0].shape[0]
    per_call = parallel.device_count()
    call = fn if per_call == 1 else parallel.over_devices(fn)
    starts = list(range(0, n, batch))
    parts: dict[str, list[np.ndarray]] = {}
    bar = tqdm(total=len(starts), desc=desc, disable=not progress, leave=False)
    for g in range(0, len(starts), per_call):
        group = starts[g : g + per_call]
        chunks = [_padded([a[s : s + batch] for a in arrays], batch) for s in group]
        keys = [None if key is None else jax.random.fold_in(key, first_row + s) for s in group]
        if per_call == 1:
            outs = [jax.device_get(call(params, keys[0], *chunks[0]))]
        else:
            outs = _over_devices(call, params, keys, chunks, per_call)
        for s, out in zip(group, outs, strict=True):
            m = min(batch, n - s)
            out = {name: np.asarray(v)[:m] for name, v in out.items()}
            for name, v in (post(out) if post else out).items():
                parts.setdefault(name, []).append(v)
        bar.update(len(group))
    bar.close()
    return {name: np.concatenate(v) for name, v in parts.items()}


def _padded(chunk: list[np.ndarray], batch: int) -> list[np.ndarray]:
    m = chunk[0].shape[0]
    if m == batch:
        return chunk
    return [np.concatenate([c, np.repeat(c[:1], batch - m, 0)]) for c in chunk]


def _over_devices(call, params, keys: list, chunks: list, per_call: int) -> list[dict]:
    """One call of parallel.over_devices on `per_call` chunks (the last group padded with
    copies of its first chunk, dropped); one output dict per given chunk."""
    real = len(chunks)
    chunks = chunks + [chunks[0]] * (per_call - real)
    keys = keys + [keys[0]] * (per_call - real)
    stacked = [np.stack(c) for c in zip(*chunks, strict=True)]
    stacked_keys = None if keys[0] is None else jax.numpy.stack(keys)
    out = call(params, stacked_keys, *stacked)
    return [{name: v[i] for name, v in out.items()} for i in range(real)]
