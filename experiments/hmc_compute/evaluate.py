"""Issue 17's evaluation: AIS settings chosen per method by BDMC, then every run evaluated.

    python experiments/hmc_compute/evaluate.py calibrate --core 1
    python experiments/hmc_compute/evaluate.py evaluate --core 1
    python experiments/hmc_compute/evaluate.py extend --core 1

`calibrate`: for each method of plan.json, on its seed-0 run at --budget (default 10, the
smallest), BDMC (forward AIS from the prior and reverse AIS from the exact z, on pairs (x, z)
simulated from the trained model) at 500, 1,000, 2,000 and 4,000 temperatures; the first whose
mean gap is under 1 nat is the method's setting (a method that never gets there keeps the largest
and is flagged). Writes calibration.json (every level tried, its gap and cost); a method already
calibrated on that run is skipped, so re-running calibrates only methods added to the plan since.

`evaluate`: every finished run of the sweep with `elbo-lab-eval`: the ladder and AIS (at its
method's temperatures) on the first --ais-examples test images, BDMC at the same setting on
--bdmc-examples simulated pairs of this run's model (the gap beside its number), the
approximation and amortization gaps on --gaps-examples images, ELBO surgery on the training set.
Each run's eval/test.json holds them; a run that has it is skipped, so re-running continues, and
a run another evaluate process is working on (it holds the run's lock) is left to it, so one
process per core can share the sweep. Cost with the defaults at T=500, one core: ~4 min per run
(each evaluator's seconds are in the run's eval/test.json; AIS is ~70% of it).

`extend`: AIS on more test images for the methods of AIS_IMAGES, whose AIS - IWAE-5000 varies
most from image to image, so that every paired difference of table.py has an image SE under 0.3
nats (issue 17). The run folders keep no checkpoints, so each run is retrained in a scratch
folder by its own command (training is deterministic: its test values must equal the run's, or
the run is refused), then `elbo-lab-eval first=<n evaluated> examples=<the rest>` with the
ladder and AIS as evaluate ran them writes eval/test_from<n>.json: the values one evaluation of
all the images would have given. Re-running continues; one process per core can share it. Cost,
one core: ~2 min of retraining per run plus ~1.7 s of AIS per image.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from elbo_lab import runs as runs_lib
from elbo_lab.errors import ConfigError

HERE = Path(__file__).resolve().parent
RUNS = HERE / "hmc_compute"
LEVELS = (500, 1000, 2000, 4000)  # AIS temperatures tried, in order
TARGET_GAP = 1.0  # nats: BDMC's upper minus lower bound, averaged over the simulated pairs
# AIS test images per run for `extend`, by budget: chosen from the image SD of AIS - IWAE-5000
# on the first 100 images (var/n terms of table.image_se), largest for the HMC runs; with them
# every paired difference of results/table.md has an image SE of 0.13-0.27 nats (under 0.3).
AIS_IMAGES = {
    10: {
        "HMC T=5 L=5": 300,
        "HMC T=5 L=5, IWAE-5 encoder": 200,
        "HMC T=1 L=5": 200,
        "HMC T=5 L=1": 200,
    },
    40: {
        "HMC T=5 L=5": 400,
        "HMC T=5 L=5, IWAE-5 encoder": 400,
        "HMC T=1 L=5": 200,
        "HMC T=5 L=1": 200,
    },
}


def method_of(run: Path, methods: list[dict]) -> dict | None:
    """The plan's method a run folder trained (the most specific whose fields all match)."""
    objective = json.loads((run / "config.json").read_text())["objective"]
    found = [
        m
        for m in methods
        if m["objective"] == objective["name"]
        and all(objective.get(k) == v for k, v in m["fields"].items())
    ]
    return max(found, key=lambda m: len(m["fields"]), default=None)


def finished_runs(methods: list[dict]) -> list[tuple[Path, dict, dict]]:
    """(run folder, its method, its config) of every finished run of the sweep."""
    out = []
    for run in sorted(RUNS.glob("*")):
        method = method_of(run, methods) if (run / "done.json").is_file() else None
        if method is not None:
            out.append((run, method, json.loads((run / "config.json").read_text())))
    return out


def elbo_lab_eval(run: Path, core: int, out: Path, overrides: list[str]) -> dict:
    """elbo-lab-eval on `run` pinned to `core`, its summary written to `out` and returned."""
    exe = Path(sys.executable).with_name("elbo-lab-eval")
    args = [f"run_dir='{run}'", f"out='{out}'", "logger=none", "progress=false", *overrides]
    subprocess.run(["taskset", "-c", str(core), str(exe), *args], check=True)
    return json.loads(out.read_text())


def calibrate(core: int, examples: int, budget: int) -> None:
    methods = json.loads((HERE / "plan.json").read_text())["methods"]
    runs = [(r, m, c) for r, m, c in finished_runs(methods) if c["seed"] == 0]
    path = HERE / "calibration.json"
    found = json.loads(path.read_text()) if path.is_file() else {}
    for method in methods:
        epochs = method["epochs"][str(budget)]
        mine = [r for r, m, c in runs if m is method and c["optim"]["epochs"] == epochs]
        if not mine:
            continue
        run = mine[0]
        if found.get(method["label"], {}).get("run") == str(run.relative_to(HERE.parents[1])):
            continue  # calibrated on this run already
        levels = []
        for temps in LEVELS:
            out = HERE / "calibration" / f"{run.name}-T{temps}.json"
            out.parent.mkdir(exist_ok=True)
            summary = elbo_lab_eval(
                run,
                core,
                out,
                [
                    "evaluators=[bdmc]",
                    f"bdmc.examples={examples}",
                    f"bdmc.temperatures={temps}",
                ],
            )
            gap = summary["bdmc"]["gap"]
            levels.append(
                {
                    "temperatures": temps,
                    "gap": gap["mean"],
                    "gap_se": gap["se"],
                    "seconds": summary["seconds"]["bdmc"],
                }
            )
            print(f"{method['label']}: T={temps} BDMC gap {gap['mean']:.2f} ± {gap['se']:.2f}")
            if gap["mean"] < TARGET_GAP:
                break
        found[method["label"]] = {
            "run": str(run.relative_to(HERE.parents[1])),
            "epochs": epochs,
            "examples": examples,
            "levels": levels,
            "temperatures": levels[-1]["temperatures"],
            "closed": levels[-1]["gap"] < TARGET_GAP,
        }
        path.write_text(json.dumps(found, indent=2) + "\n")


def evaluate(core: int, ais_examples: int, bdmc_examples: int, gaps_examples: int) -> None:
    methods = json.loads((HERE / "plan.json").read_text())["methods"]
    settings = json.loads((HERE / "calibration.json").read_text())
    for run, method, _ in finished_runs(methods):
        out = run / "eval" / "test.json"
        if out.is_file() or method["label"] not in settings:
            continue
        temps = settings[method["label"]]["temperatures"]
        try:
            with runs_lib.RunLock(run):  # ConfigError: another evaluate process holds it
                if not out.is_file():  # that process may have finished it meanwhile
                    elbo_lab_eval(
                        run,
                        core,
                        out,
                        [
                            f"examples={ais_examples}",
                            f"ais.examples={ais_examples}",
                            f"ais.temperatures={temps}",
                            f"bdmc.examples={bdmc_examples}",
                            f"bdmc.temperatures={temps}",
                            f"gaps.examples={gaps_examples}",
                        ],
                    )
        except ConfigError:
            continue


def retrain(run: Path, core: int, scratch: Path) -> Path:
    """Train `run` again by its own overrides under `scratch`; refuse unless its test values
    equal the run's (the evaluation must be of the committed model)."""
    exe = Path(sys.executable).with_name("elbo-lab")
    args = ["experiment=hmc_compute", f"out_root={scratch}", "progress=false", "logger=none"]
    subprocess.run(["taskset", "-c", str(core), str(exe), *args, *run.name.split(",")], check=True)
    again = scratch / "hmc_compute" / run.name
    mine, theirs = (np.load(r / "test_per_example.npz") for r in (run, again))
    if set(mine) != set(theirs) or any(not np.array_equal(mine[k], theirs[k]) for k in mine):
        raise SystemExit(f"{run.name}: retrained, its test values differ from the run's; not used")
    return again


def extend(core: int) -> None:
    methods = json.loads((HERE / "plan.json").read_text())["methods"]
    settings = json.loads((HERE / "calibration.json").read_text())
    todo = [
        (int(b), r, m)
        for r, m, c in finished_runs(methods)
        for b, epochs in m["epochs"].items()
        if epochs == c["optim"]["epochs"]
    ]
    for budget, run, method in sorted(todo, key=lambda t: -t[0]):  # the largest budget first
        first_eval = run / "eval" / "test.json"
        want = AIS_IMAGES.get(budget, {}).get(method["label"])
        if want is None or not first_eval.is_file():
            continue
        have = json.loads(first_eval.read_text())["ais"]["n"]
        out = run / "eval" / f"test_from{have}.json"
        if out.is_file() or want <= have:
            continue
        try:
            with runs_lib.RunLock(run), tempfile.TemporaryDirectory() as scratch:
                if out.is_file():  # another process finished it meanwhile
                    continue
                again = retrain(run, core, Path(scratch))
                temps = settings[method["label"]]["temperatures"]
                elbo_lab_eval(
                    again,
                    core,
                    out,
                    [
                        "evaluators=[ladder,ais]",  # their keys as in evaluate: fold_in(seed, 0/1)
                        f"first={have}",
                        f"examples={want - have}",
                        "ais.examples=null",
                        f"ais.temperatures={temps}",
                    ],
                )
        except ConfigError:
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["calibrate", "evaluate", "extend"])
    parser.add_argument("--core", type=int, default=1)
    parser.add_argument("--calibration-examples", type=int, default=20)
    parser.add_argument("--budget", type=int, default=10, help="calibrate on this budget's runs")
    parser.add_argument("--ais-examples", type=int, default=100)
    parser.add_argument("--bdmc-examples", type=int, default=10)
    parser.add_argument("--gaps-examples", type=int, default=20)
    args = parser.parse_args()
    planned = json.loads((HERE / "plan.json").read_text())["budgets_elbo_epochs"]
    if args.budget not in planned:
        parser.error(f"--budget {args.budget} is not a budget of plan.json: {planned}")
    if args.step == "calibrate":
        calibrate(args.core, args.calibration_examples, args.budget)
    elif args.step == "extend":
        extend(args.core)
    else:
        evaluate(args.core, args.ais_examples, args.bdmc_examples, args.gaps_examples)


if __name__ == "__main__":
    main()
