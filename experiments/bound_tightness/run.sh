#!/usr/bin/env bash
# How tight is the bound of a trained burda_1l on MNIST: the ladder, AIS, BDMC, gaps, ELBO surgery.
#   experiments/bound_tightness/run.sh <run folder> <name>      (from the repository root)
# Budget (chosen to fit ~25 min on one shared core, see README.md): ladder on the first 1,000
# test images; AIS (16 chains, 500 sigmoid temperatures from the prior, HMC 5 leapfrog steps) on
# the first 100 of them; BDMC on 50 simulated pairs; gaps on 100; surgery over all 59,600
# training images. Writes <name>_test.{json,md,png} here; W&B/metrics in <run>/eval/test/.
set -euo pipefail
run="$1"; name="$2"
here="$(cd "$(dirname "$0")" && pwd)"
ELBO_LAB_DATA="${ELBO_LAB_DATA:-/work/shared/data}" taskset -c 1 elbo-lab-eval \
  "run_dir='$run'" split=test examples=1000 \
  ais.examples=100 ais.chains=16 ais.temperatures=500 ais.num_leapfrog=5 \
  bdmc.examples=50 gaps.examples=100 gaps.steps=1000 surgery.examples=null \
  "out='$here/${name}_test.json'" logger=wandb progress=false
