#!/usr/bin/env bash
# Issue 17's compute-matched sweep, training: every method of plan.json at every budget in
# $BUDGETS (ELBO-epochs; default "10 40 160") for every seed in $SEEDS (default "0 1 2"), one run
# after another on core $CORE (default 1); run folders in experiments/hmc_compute/hmc_compute/.
# A finished run is skipped and a killed one resumes, so re-running continues the sweep.
set -euo pipefail
export ELBO_LAB_DATA="${ELBO_LAB_DATA:-../shared/data}"
CORE="${CORE:-1}"
SEEDS="${SEEDS:-0 1 2}"
BUDGETS="${BUDGETS:-10 40 160}"
here=experiments/hmc_compute
for budget in $BUDGETS; do
  mapfile -t methods < <(python "$here/plan.py" --overrides "$budget")
  for seed in $SEEDS; do
    for overrides in "${methods[@]}"; do
      # shellcheck disable=SC2086  # the overrides are separate arguments
      taskset -c "$CORE" elbo-lab experiment=hmc_compute out_root=$here progress=false \
        seed=$seed $overrides
    done
  done
done
