"""Shared helpers of the benchmarks: the machine's float32 matmul rate and a JSON writer."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np

from elbo_lab import objectives, parallel, provenance
from elbo_lab.config import OptimConfig
from elbo_lab.likelihoods.bernoulli import Bernoulli
from elbo_lab.models.mlp import MLPModel
from elbo_lab.train import TrainState, make_optimizer, make_train_steps

RESULTS = Path(__file__).parent / "results"


def maxrss_mb() -> float:
    """The process's peak resident set so far (ru_maxrss; Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def steps_per_call(batch: int, k: int) -> int:
    """Minibatches per timed dispatch: ~2 GFLOP of burda_1l IWAE-k work, at least 20."""
    return max(20, int(2e9 / (6 * batch * (216_800 + 206_800 * k))))


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


def xla_flops(fn, *args) -> float:
    """FLOPs of fn(*args) as XLA counts them (compiled cost analysis), loops included.

    XLA's cost analysis counts a loop's body once, whatever its trip count; so each lax.scan
    (lax.map, and fori_loop with static bounds, lower to it) is counted again on its own body
    and multiplied by its length: F(j) = C(j) + sum over the outermost scans s in j of
    (length_s * F(body_s) - C(body_s)), where C is the cost analysis of one compiled jaxpr.
    """
    return _flops(jax.make_jaxpr(fn)(*args))


def _cost(closed) -> float:
    specs = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in closed.jaxpr.invars]
    compiled = jax.jit(jex.core.jaxpr_as_fun(closed)).lower(*specs).compile()
    return float(compiled.cost_analysis().get("flops", 0.0))


def _flops(closed) -> float:
    return _cost(closed) + sum(
        length * _flops(body) - _cost(body) for length, body in _outer_scans(closed.jaxpr)
    )


def _outer_scans(jaxpr):
    """(length, body) of the scans in jaxpr not inside another scan (through jit and the like)."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            yield eqn.params["length"], eqn.params["jaxpr"]
            continue
        for sub in jex.core.jaxprs_in_params(eqn.params):
            yield from _outer_scans(sub)


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
        "code": provenance.code_version(),  # git commit, dirty flag, hash of the diff
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


MODELS = {
    "burda_1l": MLPModel(),
    "burda_2l": MLPModel(latent_dims=(100, 50), hidden_dims=((200, 200), (100, 100))),
}
N_DATA = 4096


class TrainStep:
    """The trainer's own scanned update (train.make_train_steps) of `objective` (its
    hyper-parameters in `hyper`) on `steps` minibatches of `batch` per go() (which blocks), on
    random MNIST-shaped data (the cost does not depend on pixel values): binarized afresh each
    step when `dynamic`, else already 0/1. With devices > 1, compiled for that many devices
    (elbo_lab.parallel), each minibatch split over them."""

    def __init__(
        self, objective, hyper, batch, steps, *, model="burda_1l", dynamic=True, devices=1
    ):
        with parallel.data_parallel(devices):
            self.model = MODELS[model].build((28, 28, 1), Bernoulli())
            rng = np.random.default_rng(0)
            probs = rng.uniform(size=(N_DATA, 784)).astype(np.float32)
            data = jnp.asarray(probs if dynamic else (probs > 0.5).astype(np.float32))
            self.data = parallel.replicate(data)
            self.params = self.model.init(jax.random.key(0), probs.mean(0))
            self.optimizer = make_optimizer(OptimConfig(name="adam", epochs=1), 1000)
            obj = objectives.REGISTRY.get(objective)(**hyper).build(self.model)
            self.train_steps = make_train_steps(obj, self.optimizer, dynamic=dynamic)
            p = jax.tree.map(jnp.array, self.params)  # a copy: the step donates its state
            state = TrainState(p, self.optimizer.init(p), obj.init(), jnp.zeros((), jnp.int32))
            self.state = parallel.replicate(state)
            idx = jnp.asarray(rng.integers(0, N_DATA, size=(steps, batch)))
            self.idx = parallel.shard(idx, axis=1)
            self.key = jax.random.key(1)
            self.go()  # compile (and, for hmc, let the step size adapt away from its start)

    def go(self) -> None:
        self.state, m = self.train_steps(self.state, self.data, self.idx, self.key)
        jax.block_until_ready(m)

    def flops_per_step(self) -> float:
        """XLA's count for one update, the objective's own loops (HMC, a flow) included."""
        return xla_flops(self.train_steps, self.state, self.data, self.idx[:1], self.key)


def seconds_per_train_step(objective: str, hyper: dict, batch: int, steps: int, repeats: int):
    """Median seconds of one update of TrainStep(objective, hyper, batch, steps) (burda_1l)."""
    return median_seconds(TrainStep(objective, hyper, batch, steps).go, repeats) / steps
