"""Compute-matched training budgets for issue 17 (when does HMC beat the ELBO?).

    python experiments/hmc_compute/plan.py     # -> experiments/hmc_compute/plan.json
    python experiments/hmc_compute/plan.py --overrides 40   # one line of overrides per method

Each method's train step (burda_1l, batch 20, the trainer's own jitted update) is counted in
FLOPs by XLA, loops included (benchmarks/common.xla_flops: the HMC chain's transitions and
leapfrog steps, the HVAE's flow). A budget of B "ELBO-epochs" is B times the FLOPs of one epoch
of ELBO k=1 training; a method gets round(B * flops(ELBO k=1) / flops(method)) epochs (at least
1). plan.json holds each method's FLOPs per step, its ratio to the ELBO's and its epochs at every
budget: the sweep's input (run.sh reads the override lines of `--overrides BUDGET`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "benchmarks"))

import jax  # noqa: E402
from common import TrainStep  # noqa: E402

# (label, objective, fields): the methods compared
METHODS = [
    ("ELBO k=1", "elbo", {"k": 1}),
    ("IWAE k=5", "iwae", {"k": 5}),
    ("IWAE k=50", "iwae", {"k": 50}),
    ("HMC T=1 L=5", "hmc", {"num_steps": 1, "num_leapfrog": 5}),
    ("HMC T=5 L=5", "hmc", {"num_steps": 5, "num_leapfrog": 5}),
    ("HMC T=5 L=1", "hmc", {"num_steps": 5, "num_leapfrog": 1}),
    (
        "HMC T=5 L=5, IWAE-5 encoder",
        "hmc",
        {"num_steps": 5, "num_leapfrog": 5, "k": 5, "encoder": "iwae"},
    ),
    ("HVAE K=5", "hvae", {"num_steps": 5}),
]
BUDGETS = (10, 40, 160)  # ELBO-epochs
BATCH, STEPS_PER_EPOCH = 20, 2980  # MNIST: 59,600 training images


def flops_per_step(objective: str, fields: dict) -> float:
    return TrainStep(objective, fields, BATCH, 1).flops_per_step()


def overrides(budget: int) -> list[str]:
    """The elbo-lab overrides of every method at `budget` ELBO-epochs, from plan.json."""
    plan = json.loads((HERE / "plan.json").read_text())
    if budget not in plan["budgets_elbo_epochs"]:
        raise SystemExit(f"budget {budget} is not planned: {plan['budgets_elbo_epochs']}")
    return [
        " ".join(
            [f"objective={m['objective']}"]
            + [f"objective.{k}={v}" for k, v in m["fields"].items()]
            + [f"optim.epochs={m['epochs'][str(budget)]}"]
        )
        for m in plan["methods"]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overrides", type=int, metavar="BUDGET")
    args = parser.parse_args()
    if args.overrides is not None:
        print("\n".join(overrides(args.overrides)))
        return
    rows = []
    for label, objective, fields in METHODS:
        rows.append(
            {
                "label": label,
                "objective": objective,
                "fields": fields,
                "flops_per_step": flops_per_step(objective, fields),
            }
        )
        print(f"{label}: {rows[-1]['flops_per_step'] / 1e6:.0f} MFLOP per step", flush=True)
    base = rows[0]["flops_per_step"]
    for row in rows:
        row["relative_cost"] = row["flops_per_step"] / base
        row["epochs"] = {str(b): max(1, round(b / row["relative_cost"])) for b in BUDGETS}
    plan = {
        "budgets_elbo_epochs": list(BUDGETS),
        "elbo_epoch_flops": base * STEPS_PER_EPOCH,
        "jax": jax.__version__,
        "methods": rows,
    }
    (HERE / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    for row in rows:
        print(f"{row['label']:32s} x{row['relative_cost']:6.2f}  epochs {row['epochs']}")


if __name__ == "__main__":
    main()
