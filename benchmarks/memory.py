"""Peak memory of the test ladder and AIS against the number of test images.

    ELBO_LAB_DATA=../shared/data taskset -c 1 python benchmarks/memory.py   # -> results/memory.json

Each (evaluator, N) runs in a fresh process (so its peak resident set, ru_maxrss, is its own):
the evaluator's own function (estimators.Ladder with K = 5000; ais.ais) on the first N MNIST test
images (tiled when N > 10,000) with a random-init burda_1l. Both hold one chunk of work at a time
(chunking.chunked_map), so the peak should be a constant working set plus the per-image results
they return (the ladder: ~0.5 KB per image; AIS: chains + 2 x temperatures floats per image),
whatever N is. The JSON has each run's peak, the process's peak before the evaluator ran, and the
fitted growth in MB per 1,000 images.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from common import maxrss_mb, write

LADDER_NS = (500, 1500, 4500)
AIS_NS = (100, 300, 900)
AIS = {"num_temps": 50, "chains": 16, "num_leapfrog": 5, "examples_per_chunk": 25}


def one(evaluator: str, n: int) -> dict:
    """Run one evaluator on n images in this process; its peak memory and time."""
    import jax

    from elbo_lab import ais, data
    from elbo_lab.estimators import Ladder
    from elbo_lab.likelihoods.bernoulli import Bernoulli
    from elbo_lab.models.mlp import MLPModel

    test = data.load("mnist").test
    x = np.resize(test, (n, test.shape[1])).astype(np.float32)  # tiled past 10,000
    model = MLPModel().build((28, 28, 1), Bernoulli())
    params = model.init(jax.random.key(0), test.mean(0))
    before = maxrss_mb()
    t0 = time.perf_counter()
    key = jax.random.key(1)
    if evaluator == "ladder":
        Ladder(model, (1, 5, 50, 5000))(params, x, key)
    else:
        ais.ais(params, model, x, key, ais.AISSettings(**AIS), progress=False)
    return {
        "evaluator": evaluator,
        "images": n,
        "seconds": time.perf_counter() - t0,
        "maxrss_mb_before": before,
        "maxrss_mb": maxrss_mb(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--one", nargs=2, metavar=("EVALUATOR", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return
    rows = []
    for evaluator, ns in (("ladder", LADDER_NS), ("ais", AIS_NS)):
        for n in ns:
            cmd = [sys.executable, __file__, "--one", evaluator, str(n)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.splitlines()[-1]))
            r = rows[-1]
            print(f"{evaluator} N={n}: peak {r['maxrss_mb']:.0f} MB, {r['seconds']:.0f} s")
    growth = {}
    for evaluator in ("ladder", "ais"):
        ns = np.asarray([r["images"] for r in rows if r["evaluator"] == evaluator], float)
        peaks = np.asarray([r["maxrss_mb"] for r in rows if r["evaluator"] == evaluator])
        growth[evaluator] = float(np.polyfit(ns / 1000, peaks, 1)[0])
        print(f"{evaluator}: +{growth[evaluator]:.1f} MB per 1,000 images")
    path = write(
        "memory",
        {
            "model": "burda_1l (random init)",
            "ladder": "K = 1, 5, 50, 5000, rows_per_chunk 5000",
            "ais": AIS,
            "rows": rows,
            "peak_growth_mb_per_1000_images": growth,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
