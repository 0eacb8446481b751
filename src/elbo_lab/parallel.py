"""Data parallelism over devices: one mesh axis, "batch"; parameters replicated, data sharded.

    with parallel.data_parallel(2):   # the first 2 of jax.devices()
        ...                           # the trainer and chunked_map shard their work

Training shards each minibatch over the devices (GSPMD splits the step; the gradient's mean over
the batch becomes an all-reduce). The evaluators shard over test images: chunked_map hands each
device one of its chunks, with the chunk's own key, so every example sees the random numbers it
sees on one device. With jax's partitionable threefry (the default), random numbers do not depend
on the sharding either; results then equal one device's up to floating-point reassociation.

On a CPU the devices are host threads: `devices=N` asks JAX for N CPU devices if no JAX
computation has run yet in the process (XLA_FLAGS=--xla_force_host_platform_device_count=N does
the same from outside). One process drives all devices: several hosts are not supported yet.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from elbo_lab.errors import ConfigError

AXIS = "batch"
_MESH: ContextVar[Mesh | None] = ContextVar("elbo_lab_mesh", default=None)


def request_cpu_devices(n: int) -> None:
    """Ask JAX for n CPU devices when it has none yet (a no-op once any computation ran)."""
    if n > 1 and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        try:
            jax.config.update("jax_num_cpu_devices", n)
        except RuntimeError:  # the backend is up already; make_mesh says what to do
            pass


def make_mesh(devices: int) -> Mesh | None:
    """A 1-D mesh over the first `devices` of jax.devices(), or None for one device."""
    if devices == 1:
        return None
    available = jax.devices()
    if devices > len(available):
        raise ConfigError(
            f"devices={devices}, but JAX sees {len(available)} {available[0].platform} "
            f"device(s). On a CPU, start the process with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={devices} (elbo-lab asks for them "
            "itself when nothing ran before it); on GPUs, make them visible "
            "(CUDA_VISIBLE_DEVICES) or lower devices"
        )
    return Mesh(np.asarray(available[:devices]), (AXIS,))


@contextmanager
def data_parallel(devices: int) -> Iterator[Mesh | None]:
    """Within the block, the trainer and chunked_map shard over `devices` devices."""
    token = _MESH.set(make_mesh(devices))
    try:
        yield _MESH.get()
    finally:
        _MESH.reset(token)


def device_count() -> int:
    """Devices the active mesh shards over (1 without one)."""
    mesh = _MESH.get()
    return 1 if mesh is None else mesh.size


def _sharding(axis: int | None) -> NamedSharding | None:
    mesh = _MESH.get()
    if mesh is None:
        return None
    return NamedSharding(mesh, P() if axis is None else P(*([None] * axis), AXIS))


def replicate(tree):
    """`tree` with every array on every device of the mesh (as it is without a mesh)."""
    sharding = _sharding(None)
    return tree if sharding is None else jax.device_put(tree, sharding)


def shard(x, axis: int = 0):
    """x split along `axis` over the mesh's devices (as it is without a mesh)."""
    sharding = _sharding(axis)
    return x if sharding is None else jax.device_put(x, sharding)


def constrain(x, axis: int = 0):
    """Inside jit: ask for x split along `axis` over the mesh (as it is without a mesh)."""
    sharding = _sharding(axis)
    return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)


def over_devices(fn: Callable) -> Callable:
    """fn(params, key, *chunks) -> dict, run once per device on stacked inputs: a jitted
    g(params, keys [n], *stacked [n, ...]) -> dict of [n, ...], the leading axis sharded over the
    mesh, params replicated. Each device computes exactly what fn computes on its slice."""
    mesh = _MESH.get()
    split, whole = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())

    def g(params, keys, stacked):
        return jax.vmap(fn, in_axes=(None, 0) + (0,) * len(stacked))(params, keys, *stacked)

    run = jax.jit(g, in_shardings=(whole, split, split), out_shardings=split)
    return lambda params, keys, *stacked: run(params, keys, stacked)
