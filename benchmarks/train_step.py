"""Throughput of the jitted train step: burda_1l, batch 20 and 100, k = 1, 5, 50.

    python benchmarks/train_step.py            # writes benchmarks/results/train_step.json

Runs the trainer's own make_train_steps (lax.scan over many minibatches per dispatch) on random
Bernoulli data of MNIST's shape (the step's cost does not depend on pixel values), and reports
examples/s and GFLOP/s next to the float32 matmul rate measured in the same run.
FLOPs per step = 6 B (216,800 + 206,800 K): forward + backward (x3) of the encoder's
784*200 + 200*200 + 200*100 multiply-adds once per example and of the decoder's
50*200 + 200*200 + 200*784 once per sample (x2 FLOPs each); see ../shared/PLATFORM.md.
"""

from __future__ import annotations

import argparse

from common import matmul_gflops, seconds_per_train_step, write


def flops_per_step(batch: int, k: int) -> float:
    return 6.0 * batch * (216_800 + 206_800 * k)


def bench(batch: int, k: int, steps: int, repeats: int) -> dict:
    per_step = seconds_per_train_step("iwae", {"k": k}, batch, steps, repeats)
    return {
        "batch": batch,
        "k": k,
        "ms_per_step": 1e3 * per_step,
        "examples_per_s": batch / per_step,
        "gflops": flops_per_step(batch, k) / per_step / 1e9,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    roof = matmul_gflops()
    rows = []
    for batch in (20, 100):
        for k in (1, 5, 50):
            steps = max(20, int(2e9 / flops_per_step(batch, k)))  # ~2 GFLOP per timed dispatch
            row = bench(batch, k, steps, args.repeats)
            row["fraction_of_matmul"] = row["gflops"] / roof
            rows.append(row)
            print(
                f"B={batch:4d} k={k:3d}  {row['ms_per_step']:8.2f} ms/step  "
                f"{row['examples_per_s']:9.0f} ex/s  {row['gflops']:6.1f} GFLOP/s  "
                f"{100 * row['fraction_of_matmul']:5.1f}% of matmul"
            )
    path = write("train_step", {"matmul_gflops_f32_2048": roof, "model": "burda_1l", "rows": rows})
    print(f"matmul roof {roof:.1f} GFLOP/s; wrote {path}")


if __name__ == "__main__":
    main()
