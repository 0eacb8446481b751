"""Data-parallel scaling on this machine: the train step and the test ladder on 1 and 2 devices.

    python benchmarks/devices.py      # -> benchmarks/results/devices.json (not pinned: all cores)

On a CPU the devices are host threads (XLA_FLAGS=--xla_force_host_platform_device_count=2, set
here before JAX starts). The train step (the trainer's scanned update, common.TrainStep) splits
each minibatch over the devices; the ladder (IWAE-5000) gives each device its own
chunk of test images (chunking.chunked_map). Run with nothing else on the machine: the two
devices need both cores. Medians over --rounds, the 1- and 2-device runs alternated.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import argparse  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from common import MODELS, TrainStep, median_seconds, steps_per_call, write  # noqa: E402

from elbo_lab import parallel  # noqa: E402
from elbo_lab.estimators import Ladder  # noqa: E402
from elbo_lab.likelihoods.bernoulli import Bernoulli  # noqa: E402


def ladder_seconds_per_image(devices: int, images: int) -> float:
    model = MODELS["burda_1l"].build((28, 28, 1), Bernoulli())
    params = model.init(jax.random.key(0))
    x = (np.random.default_rng(0).uniform(size=(images, 784)) < 0.3).astype(np.float32)
    with parallel.data_parallel(devices):
        ladder = Ladder(model, (1, 5, 50, 5000))
        p = parallel.replicate(params)
        ladder(p, x[: 2 * devices], jax.random.key(1))  # compile
        return median_seconds(lambda: ladder(p, x, jax.random.key(1)), 1) / images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--images", type=int, default=40)
    args = p.parse_args()
    assert len(jax.devices()) >= 2, jax.devices()
    rows = []
    for batch, k in ((20, 1), (20, 5), (100, 5), (100, 50)):
        steps = steps_per_call(batch, k)
        runs = {d: TrainStep("iwae", {"k": k}, batch, steps, devices=d) for d in (1, 2)}
        times = {d: [] for d in runs}
        for _ in range(args.rounds):
            for d, step in runs.items():
                times[d].append(median_seconds(step.go, 1) / steps)
        one, two = (1e3 * float(np.median(times[d])) for d in (1, 2))
        rows.append(
            {
                "what": "train_step burda_1l iwae",
                "batch": batch,
                "k": k,
                "ms_1_device": one,
                "ms_2_devices": two,
                "speedup": one / two,
            }
        )
        print(rows[-1])
    lad = {d: ladder_seconds_per_image(d, args.images) for d in (1, 2)}
    rows.append(
        {
            "what": "ladder K=5000 burda_1l",
            "images": args.images,
            "ms_per_image_1_device": 1e3 * lad[1],
            "ms_per_image_2_devices": 1e3 * lad[2],
            "speedup": lad[1] / lad[2],
        }
    )
    print(rows[-1])
    print(f"wrote {write('devices', {'devices': [str(d) for d in jax.devices()], 'rows': rows})}")


if __name__ == "__main__":
    main()
