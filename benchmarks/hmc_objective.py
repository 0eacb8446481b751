"""Cost of the HMC-refined objective against IWAE: burda_1l, batch 20, ms per step and per epoch.

    taskset -c 1 python benchmarks/hmc_objective.py   # -> benchmarks/results/hmc_objective.json

Runs the trainer's own make_train_steps (as benchmarks/train_step.py does) on random Bernoulli data
of MNIST's shape. For each setting it reports ms/step, an epoch estimate (2,980 steps: MNIST's
59,600 training images at batch 20) and the decoder passes per example per step, counted from
objectives.py:
  iwae k:           k forward + backward (weight and input gradients)
  hmc T, L, enc k:  1 + T L gradient evaluations of log p(x, z) in z (hmc_refine: one at the start,
                    then L per transition, the end gradient being carried over), + k forward +
                    backward for the encoder's bound (input gradients only: decoder stopped), + 1
                    forward + backward for the decoder loss at z_T; plus one extra encoder forward
                    for z0.
FLOPs per example (multiply-adds x 2; decoder 206,800 and encoder 216,800 multiply-adds per pass):
  iwae: 6 (216,800 + 206,800 k) (forward + backward of both networks)
  hmc:  4 x 206,800 (1 + T L + k) + 6 x 206,800 + 8 x 216,800 (input-gradient-only passes cost
        2 matmuls, weight-gradient passes 3; the encoder runs twice forward, once backward).
"""

from __future__ import annotations

import argparse

from common import matmul_gflops, seconds_per_train_step, write

BATCH = 20
STEPS_PER_EPOCH = 59_600 // BATCH
DEC, ENC = 206_800, 216_800  # multiply-adds of one decoder / encoder pass of burda_1l
SETTINGS = [
    {"objective": "iwae", "k": 5},
    {"objective": "iwae", "k": 50},
    {"objective": "hmc", "k": 1, "num_steps": 1, "num_leapfrog": 5},
    {"objective": "hmc", "k": 1, "num_steps": 5, "num_leapfrog": 5},
    {"objective": "hmc", "k": 1, "num_steps": 5, "num_leapfrog": 10},
]


def decoder_passes(s: dict) -> int:
    """Decoder forward(+backward) passes per example per step (see the module docstring)."""
    if s["objective"] == "iwae":
        return s["k"]
    return 1 + s["num_steps"] * s["num_leapfrog"] + s["k"] + 1


def flops_per_step(s: dict) -> float:
    if s["objective"] == "iwae":
        return BATCH * 6.0 * (ENC + DEC * s["k"])
    chain_and_encoder = 4.0 * DEC * (1 + s["num_steps"] * s["num_leapfrog"] + s["k"])
    return BATCH * (chain_and_encoder + 6.0 * DEC + 8.0 * ENC)


def bench(s: dict, repeats: int) -> dict:
    hyper = {name: v for name, v in s.items() if name != "objective"}
    steps = max(10, int(1e9 / flops_per_step(s)))  # ~1 GFLOP per timed dispatch
    per_step = seconds_per_train_step(s["objective"], hyper, BATCH, steps, repeats)
    return {
        **s,
        "batch": BATCH,
        "ms_per_step": 1e3 * per_step,
        "epoch_seconds": per_step * STEPS_PER_EPOCH,
        "decoder_passes_per_example": decoder_passes(s),
        "gflops": flops_per_step(s) / per_step / 1e9,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    roof = matmul_gflops()
    rows = []
    for s in SETTINGS:
        row = bench(s, args.repeats)
        row["fraction_of_matmul"] = row["gflops"] / roof
        rows.append(row)
        name = " ".join(f"{k}={v}" for k, v in s.items())
        print(
            f"{name:45s} {row['ms_per_step']:7.2f} ms/step  {row['epoch_seconds']:6.1f} s/epoch  "
            f"{row['decoder_passes_per_example']:3d} decoder passes  {row['gflops']:5.1f} GFLOP/s"
        )
    payload = {
        "matmul_gflops_f32_2048": roof,
        "model": "burda_1l",
        "steps_per_epoch": STEPS_PER_EPOCH,
        "rows": rows,
    }
    path = write("hmc_objective", payload)
    print(f"matmul roof {roof:.1f} GFLOP/s; wrote {path}")


if __name__ == "__main__":
    main()
