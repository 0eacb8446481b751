"""Cost of each objective's train step beside IWAE at the same number of samples.

    taskset -c 0 python benchmarks/objectives.py   # writes benchmarks/results/objectives.json

burda_1l, batch 20, m * k = 64 samples per example for every objective (the objectives table of
experiments/objectives), the trainer's own jitted scan (common.seconds_per_train_step); each row
has ms per step and its ratio to IWAE-64 with the plain gradient, measured in the same run with
the objectives alternated (`--rounds` rounds, medians). Issue 15's target: STL and DReG at most
~10% above IWAE.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import matmul_gflops, seconds_per_train_step, write

OBJECTIVES = [
    ("iwae", {"k": 64}),
    ("iwae", {"k": 64, "estimator": "stl"}),
    ("iwae", {"k": 64, "estimator": "dreg"}),
    ("elbo", {"k": 64}),
    ("rws", {"k": 64}),
    ("rws", {"k": 64, "estimator": "dreg"}),
    ("miwae", {"m": 8, "k": 8}),
    ("miwae", {"m": 8, "k": 8, "estimator": "dreg"}),
    ("piwae", {"m": 8, "k": 8}),
    ("piwae", {"m": 8, "k": 8, "estimator": "dreg"}),
    ("ciwae", {"k": 64, "beta": 0.05}),
    ("renyi", {"k": 64, "alpha": 0.5}),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=100)
    args = p.parse_args()
    roof = matmul_gflops()
    times: dict[int, list[float]] = {i: [] for i in range(len(OBJECTIVES))}
    for _ in range(args.rounds):  # alternated, so a slow spell of the machine hits all alike
        for i, (name, hyper) in enumerate(OBJECTIVES):
            times[i].append(seconds_per_train_step(name, hyper, 20, args.steps, repeats=3))
    base = float(np.median(times[0]))
    rows = []
    for i, (name, hyper) in enumerate(OBJECTIVES):
        ms = 1e3 * float(np.median(times[i]))
        rows.append({"objective": name, **hyper, "ms_per_step": ms, "vs_iwae": ms / (1e3 * base)})
        print(f"{name:6s} {hyper!s:40s} {ms:8.2f} ms/step  x{ms / (1e3 * base):.2f} of IWAE-64")
    path = write(
        "objectives",
        {"matmul_gflops_f32_2048": roof, "model": "burda_1l", "batch": 20, "rows": rows},
    )
    print(f"matmul roof {roof:.1f} GFLOP/s; wrote {path}")


if __name__ == "__main__":
    main()
