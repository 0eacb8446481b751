"""Shared helpers of the benchmarks: the machine's float32 matmul rate and a JSON writer."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

RESULTS = Path(__file__).parent / "results"


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of fn() (which must block until its result is ready)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Median float32 GFLOP/s of one jitted n x n @ n x n matmul: the machine's roof here."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    return 2 * n**3 / median_seconds(lambda: f(a).block_until_ready(), repeats) / 1e9


def write(name: str, payload: dict) -> Path:
    """benchmarks/results/<name>.json, with what machine and versions produced it."""
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_affinity": sorted(os.sched_getaffinity(0)),  # e.g. pinned with taskset
            "load_average_1min": os.getloadavg()[0],
            "platform": platform.platform(),
            "python": platform.python_version(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def seconds_per_train_step(objective: str, hyper: dict, batch: int, steps: int, repeats: int):
    """Median seconds of one update of the trainer's own jitted scan (train.make_train_steps) for
    burda_1l with `objective` (its hyper-parameters in `hyper`) on random MNIST-shaped data (the
    cost does not depend on pixel values), `steps` updates per timed dispatch."""
    from elbo_lab import objectives
    from elbo_lab.config import OptimConfig
    from elbo_lab.likelihoods.bernoulli import Bernoulli
    from elbo_lab.models.mlp import MLPModel
    from elbo_lab.train import TrainState, make_optimizer, make_train_steps

    model = MLPModel().build((28, 28, 1), Bernoulli())  # burda_1l
    rng = np.random.default_rng(0)
    data = jnp.asarray(rng.uniform(size=(4096, 784)).astype(np.float32))
    params = model.init(jax.random.key(0), np.asarray(data).mean(0))
    optimizer = make_optimizer(OptimConfig(name="adam", epochs=1), steps_per_epoch=1000)
    obj = objectives.REGISTRY.get(objective)(**hyper).build(model)
    train_steps = make_train_steps(obj, optimizer, dynamic=True)
    state = TrainState(params, optimizer.init(params), obj.init(), jnp.zeros((), jnp.int32))
    idx = jnp.asarray(rng.integers(0, 4096, size=(steps, batch)))
    key = jax.random.key(1)
    holder = [state]

    def go():
        holder[0], m = train_steps(holder[0], data, idx, key)
        jax.block_until_ready(m)

    go()  # compile (and, for hmc, let the step size adapt away from its start)
    return median_seconds(go, repeats) / steps
