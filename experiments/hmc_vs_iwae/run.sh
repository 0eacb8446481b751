#!/usr/bin/env bash
# Everything in experiments/hmc_vs_iwae/results/: the four runs of configs/experiment/hmc_vs_iwae.yaml
# one after another on core $CORE (default 1), their folders in experiments/hmc_vs_iwae/hmc_vs_iwae/;
# AIS log p(x) on 100 test images of each; then the report. Run from the repository root with the
# venv on PATH; a finished run is skipped (its folder has done.json), a killed one resumes from its
# last epoch.
set -euo pipefail
export ELBO_LAB_DATA="${ELBO_LAB_DATA:-/work/shared/data}"
CORE="${CORE:-1}"
runs=(
  "objective=elbo objective.k=1"
  "objective=iwae objective.k=5"
  "objective=hmc objective.num_steps=1 objective.num_leapfrog=5"
  "objective=hmc objective.num_steps=5 objective.num_leapfrog=5"
)
for overrides in "${runs[@]}"; do
  # shellcheck disable=SC2086  # the overrides are separate arguments
  taskset -c "$CORE" elbo-lab experiment=hmc_vs_iwae out_root=experiments/hmc_vs_iwae progress=false \
    $overrides
done
for run in experiments/hmc_vs_iwae/hmc_vs_iwae/*/; do
  taskset -c "$CORE" elbo-lab-eval "run_dir='${run%/}'" examples=100 ais.examples=100 \
    bdmc.examples=0 gaps.examples=0 surgery.examples=0 logger=none progress=false
done
elbo-lab-report experiments/hmc_vs_iwae/hmc_vs_iwae/* --out experiments/hmc_vs_iwae/results \
  --title "HMC-refined training vs ELBO / IWAE, burda_1l on MNIST, 5 epochs, seed 0"
