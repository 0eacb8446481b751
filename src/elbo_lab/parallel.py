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
the same from outside).

Several hosts (`distributed=true`): one process per host (or per task) joins the others through
jax.distributed, which reads its cluster's environment (SLURM's srun, Open MPI, ...); the mesh
then spans every process's devices. Every process runs the same program on the same data (each
holds all of it and feeds its devices their slices); process 0 writes the run's records, all of
them take part in the checkpoints (orbax) and every computation, and `to_host` gathers sharded
results onto each process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from elbo_lab.errors import ConfigError

AXIS = "batch"
_MESH: ContextVar[Mesh | None] = ContextVar("elbo_lab_mesh", default=None)


def initialize_distributed() -> None:
    """Join the other processes of a multi-host run (jax.distributed, its cluster detected from
    the environment); before any other JAX call. A ConfigError when there is no cluster to join."""
    if jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU meshes across hosts
    try:
        jax.distributed.initialize()
    except (ValueError, RuntimeError) as e:
        raise ConfigError(
            f"distributed=true could not join a multi-host run ({str(e).splitlines()[0]}). It "
            "needs one process per host started by a cluster JAX recognises, e.g. SLURM's srun "
            "(hydra/launcher=slurm with hydra.launcher.nodes=N), or JAX_COORDINATOR_ADDRESS with "
            "the process count and id; on one machine, leave distributed=false"
        ) from None


def is_writer() -> bool:
    """Whether this process writes the run's records: process 0 (the only one on one host)."""
    return jax.process_index() == 0


def request_cpu_devices(n: int) -> None:
    """Ask JAX for n CPU devices when it has none yet (a no-op once any computation ran)."""
    if n > 1 and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        try:
            jax.config.update("jax_num_cpu_devices", n)
        except RuntimeError:  # the backend is up already; make_mesh says what to do
            pass


def make_mesh(devices: int) -> Mesh | None:
    """A 1-D mesh over the first `devices` of jax.devices(), or None for one device."""
    available = jax.devices()
    if jax.process_count() > 1 and devices != len(available):
        raise ConfigError(
            f"devices={devices}, but a multi-host run shards over every device of its "
            f"{jax.process_count()} processes: use devices={len(available)}"
        )
    if devices == 1:
        return None
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


def _put(tree, sharding: NamedSharding):
    """tree's arrays laid out as `sharding` says; across processes, each process supplies the
    slices its devices hold (every process holds the same values)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(x):
        x = to_host(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree)


def to_host(tree):
    """tree's arrays as numpy arrays on this process, whatever their layout: an array sharded
    over other processes' devices is gathered from them (every process must call this too)."""

    def get(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return np.asarray(x)
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(get, tree)


def replicate(tree):
    """`tree` with every array on every device of the mesh (as it is without a mesh)."""
    sharding = _sharding(None)
    return tree if sharding is None else _put(tree, sharding)


def shard(x, axis: int = 0):
    """x split along `axis` over the mesh's devices (as it is without a mesh)."""
    sharding = _sharding(axis)
    return x if sharding is None else _put(x, sharding)


def constrain(x, axis: int = 0):
    """Inside jit: ask for x split along `axis` over the mesh (as it is without a mesh)."""
    sharding = _sharding(axis)
    return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)


def over_devices(fn: Callable) -> Callable:
    """fn(params, key, *chunks) -> dict, run once per device on stacked inputs: a jitted
    g(params, keys [n], *stacked [n, ...]) -> dict of numpy [n, ...] (on every process), the
    leading axis sharded over the mesh, params replicated. Each device computes exactly what fn
    computes on its slice."""
    mesh = _MESH.get()
    split, whole = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())

    def g(params, raw_keys, stacked):
        keys = None if raw_keys is None else jax.random.wrap_key_data(raw_keys)
        return jax.vmap(fn, in_axes=(None, 0) + (0,) * len(stacked))(params, keys, *stacked)

    run = jax.jit(g, in_shardings=(whole, split, split), out_shardings=split)

    def call(params, keys, *stacked):
        raw = None if keys is None else _put(jax.random.key_data(keys), split)
        return to_host(run(params, raw, _put(stacked, split)))

    return call
