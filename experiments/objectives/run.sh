#!/usr/bin/env bash
# The nine methods of configs/experiment/objectives.yaml, m * k = 64 each, for each seed in $SEEDS
# (default "0 1"), one after another on core $CORE (default 1); run folders in
# experiments/objectives/objectives/. A finished run is skipped and a killed one resumes, so
# re-running continues the table.
set -euo pipefail
export ELBO_LAB_DATA="${ELBO_LAB_DATA:-../shared/data}"
CORE="${CORE:-1}"
SEEDS="${SEEDS:-0 1}"
methods=(
  "objective=elbo objective.k=64"
  "objective=iwae objective.k=64"
  "objective=iwae objective.k=64 objective.estimator=stl"
  "objective=iwae objective.k=64 objective.estimator=dreg"
  "objective=rws objective.k=64"
  "objective=miwae objective.m=8 objective.k=8"
  "objective=piwae objective.m=8 objective.k=8"
  "objective=ciwae objective.k=64 objective.beta=0.05"
  "objective=renyi objective.k=64 objective.alpha=0.5"
)
for seed in $SEEDS; do
  for overrides in "${methods[@]}"; do
    # shellcheck disable=SC2086  # the overrides are separate arguments
    taskset -c "$CORE" elbo-lab experiment=objectives out_root=experiments/objectives \
      progress=false seed=$seed $overrides
  done
done
