#!/usr/bin/env bash
# Everything in experiments/gradient_snr/results/: the two checkpoints of
# configs/experiment/gradient_snr.yaml (run folders in experiments/gradient_snr/gradient_snr/),
# the SNR of IWAE-K x {reparam, stl, dreg} at each, the figure and the slope table. Run from the
# repository root with the venv on PATH, pinned to core $CORE (default 0). Re-running skips
# finished trainings.
set -euo pipefail
export ELBO_LAB_DATA="${ELBO_LAB_DATA:-../shared/data}"
CORE="${CORE:-0}"
out=experiments/gradient_snr
for epochs in 1 20; do
  taskset -c "$CORE" elbo-lab experiment=gradient_snr out_root=$out optim.epochs=$epochs \
    logger=none progress=false
done
taskset -c "$CORE" python $out/snr.py compute "$out/gradient_snr/optim.epochs=1" \
  "$out/gradient_snr/optim.epochs=20" --out $out/results/snr.json
python $out/snr.py plot $out/results/snr.json --out $out/results
