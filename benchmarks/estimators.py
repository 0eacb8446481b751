"""Speed and memory of the log p(x) estimators: IWAE-5000 and AIS on MNIST test images, burda_1l.

    ELBO_LAB_DATA=/work/shared/data python benchmarks/estimators.py   # -> results/estimators.json

Times the evaluators' own jitted functions (estimators.make_ladder_fn, ais.make_ais_fn) on the
first --images (IWAE) and --ais-images (AIS) test images with a random-init burda_1l (the cost
does not depend on the weights), after one call that compiles, and extrapolates linearly to the
10,000 test images (every image costs the same: fixed K, chains and temperatures).
FLOPs are XLA's count of the compiled function, loops included (common.xla_flops), not a hand
model; `fraction_of_matmul` = (FLOPs / the float32 matmul rate) / time, i.e. the FLOP floor over
the time taken. Peak memory is the process's maximum resident set
(getrusage): the evaluators hold one chunk at a time, so it does not grow with the image count.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
from common import matmul_gflops, maxrss_mb, write, xla_flops

from elbo_lab import ais, data, estimators
from elbo_lab.likelihoods.bernoulli import Bernoulli
from elbo_lab.models.mlp import MLPModel

TEST_IMAGES = 10_000


def seconds_per_example(fn, x, per_call: int) -> tuple[float, float, int]:
    """Time fn over x in calls of `per_call` examples, blocking on each result. Returns (seconds
    of the first call, which compiles; seconds per example over the whole calls that follow;
    examples timed)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(x[:per_call]))
    compile_s = time.perf_counter() - t0
    n = (x.shape[0] // per_call) * per_call
    t0 = time.perf_counter()
    for i in range(0, n, per_call):
        jax.block_until_ready(fn(x[i : i + per_call]))
    return compile_s, (time.perf_counter() - t0) / n, n


def bench_iwae(model, params, x, k, rows_per_chunk) -> dict:
    k_max, chunk, batch = estimators.ladder_plan([k], rows_per_chunk)
    ladder = estimators.make_ladder_fn(model, k_max=k_max, chunk=chunk)
    key = jax.random.key(0)
    run = lambda xb: ladder(params, key, jnp.asarray(xb))  # noqa: E731
    compile_s, per, n = seconds_per_example(run, x, batch)
    flops = xla_flops(run, jnp.asarray(x[:batch])) / batch
    return {
        "k": k,
        "images": n,
        "examples_per_call": batch,
        "samples_per_chunk": chunk,
        "first_call_seconds_with_compile": compile_s,
        "seconds_per_image": per,
        "seconds_for_10000_extrapolated": per * TEST_IMAGES,
        "xla_flops_per_image": flops,
        "gflops": flops / per / 1e9,
    }


def bench_ais(model, params, x, *, temps, chains, leapfrog, per_call) -> dict:
    settings = ais.AISSettings(num_temps=temps, chains=chains, num_leapfrog=leapfrog)
    fn = ais.make_ais_fn(model, settings)
    z = jnp.zeros((per_call, model.latent_dim))
    key = jax.random.key(1)
    run = lambda xb: fn(params, key, jnp.asarray(xb), z).log_w  # noqa: E731
    compile_s, per, n = seconds_per_example(run, x, per_call)
    flops = xla_flops(run, jnp.asarray(x[:per_call])) / per_call
    return {
        "temperatures": temps,
        "chains": chains,
        "num_leapfrog": leapfrog,
        "images": n,
        "examples_per_call": per_call,
        "first_call_seconds_with_compile": compile_s,
        "seconds_per_image": per,
        "seconds_per_image_per_1000_temperatures": per * 1000 / temps,
        "seconds_for_10000_extrapolated": per * TEST_IMAGES,
        "xla_flops_per_image": flops,
        "gflops": flops / per / 1e9,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--ais-images", type=int, default=50)
    p.add_argument("--rows-per-chunk", type=int, nargs="+", default=[5000, 20000])
    args = p.parse_args()
    x = data.load("mnist").test
    model = MLPModel().build((28, 28, 1), Bernoulli())  # burda_1l
    params = model.init(jax.random.key(0), x.mean(0))
    roof = matmul_gflops()
    rss_start = maxrss_mb()

    iwae_rows = []
    for rows_per_chunk in args.rows_per_chunk:
        iwae = bench_iwae(model, params, x[: args.images], 5000, rows_per_chunk)
        iwae["rows_per_chunk"] = rows_per_chunk
        iwae["fraction_of_matmul"] = iwae["gflops"] / roof
        iwae["maxrss_mb_after"] = maxrss_mb()
        iwae_rows.append(iwae)
        print(
            f"IWAE-5000 rows_per_chunk={rows_per_chunk}: "
            f"{1e3 * iwae['seconds_per_image']:.1f} ms/image, {iwae['gflops']:.1f} GFLOP/s, "
            f"maxrss {iwae['maxrss_mb_after']:.0f} MB"
        )
    rows = []
    for temps, chains, leapfrog, per_call in ((500, 16, 5, 25),):  # the eval settings
        row = bench_ais(
            model,
            params,
            x[: args.ais_images],
            temps=temps,
            chains=chains,
            leapfrog=leapfrog,
            per_call=per_call,
        )
        row["fraction_of_matmul"] = row["gflops"] / roof
        row["maxrss_mb_after"] = maxrss_mb()
        rows.append(row)
        print(
            f"AIS T={temps} C={chains} L={leapfrog}: {row['seconds_per_image']:.2f} s/image, "
            f"{row['gflops']:.1f} GFLOP/s"
        )
    path = write(
        "estimators",
        {
            "matmul_gflops_f32_2048": roof,
            "model": "burda_1l (random init)",
            "data": "MNIST test images (binarized once), the first --images / --ais-images",
            "note": "measured on a subset; seconds_for_10000 are linear extrapolations",
            "load_average_1_5_15_min": list(os.getloadavg()),  # other jobs on the machine
            "maxrss_mb_at_start": rss_start,
            "iwae": iwae_rows,
            "ais": rows,
            "maxrss_mb_at_end": maxrss_mb(),
            "targets_met": {  # issue 16: IWAE-5000 at 80% of its FLOP floor, AIS within 1.5x
                "iwae_5000 fraction_of_matmul >= 0.8": max(
                    r["fraction_of_matmul"] for r in iwae_rows
                )
                >= 0.8,
                "ais fraction_of_matmul >= 1/1.5": all(
                    r["fraction_of_matmul"] >= 1 / 1.5 for r in rows
                ),
            },
        },
    )
    print(f"matmul roof {roof:.1f} GFLOP/s; wrote {path}")


if __name__ == "__main__":
    main()
