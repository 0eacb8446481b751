"""Data parallelism (elbo_lab.parallel): several devices give one device's numbers.

On CPU the devices are host threads (XLA_FLAGS=--xla_force_host_platform_device_count=2), which
must be set before JAX starts, so the comparisons run in a subprocess. The tolerance: float32
sums regrouped over devices differ by ~1e-7 relative (~1e-5 nats on a log-likelihood of ~100
nats summed over 784 pixels); a few dozen Adam steps can grow that, but not to 1e-3 nats, while
a different random key moves the same estimates by Monte Carlo error, far more (checked below as
the control that the comparison can fail).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import FAST, elbo_lab, env

from elbo_lab import parallel
from elbo_lab.errors import ConfigError

TOL = 1e-3  # nats

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from elbo_lab import ais, parallel
    from elbo_lab.estimators import Ladder
    from elbo_lab.likelihoods.bernoulli import Bernoulli
    from elbo_lab.models.mlp import MLPModel
    from elbo_lab.config import OptimConfig
    from elbo_lab.objectives.iwae import IWAE
    from elbo_lab.train import TrainState, make_optimizer, make_train_steps

    assert len(jax.devices()) == 2, jax.devices()
    model = MLPModel(latent_dims=(8,), hidden_dims=((32,),)).build((28, 28, 1), Bernoulli())
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(30, 784)) < 0.3).astype(np.float32)
    params = model.init(jax.random.key(0), x.mean(0))
    key = jax.random.key(1)

    def ladder(devices, k):
        with parallel.data_parallel(devices):
            # 30 examples in chunks of 4: 8 chunks, the last one padded, 4 device groups
            _, per = Ladder(model, (1, 5, 20), rows_per_chunk=80)(parallel.replicate(params), x, k)
        return per["iwae_20"]

    def run_ais(devices):
        s = ais.AISSettings(num_temps=20, chains=4, examples_per_chunk=7)
        with parallel.data_parallel(devices):
            p = parallel.replicate(params)
            return ais.ais(p, model, x[:15], key, s, progress=False)["log_px"]

    def train(devices):
        opt = make_optimizer(OptimConfig(name="adam", epochs=1), steps_per_epoch=100)
        obj = IWAE(k=5).build(model)
        with parallel.data_parallel(devices):
            steps = make_train_steps(obj, opt, dynamic=True)
            p = model.init(jax.random.key(0), x.mean(0))
            state = parallel.replicate(
                TrainState(p, opt.init(p), obj.init(), jnp.zeros((), jnp.int32))
            )
            idx = parallel.shard(jnp.asarray(rng_idx), axis=1)
            state, _ = steps(state, parallel.replicate(jnp.asarray(x)), idx, key)
        _, per = Ladder(model, (1, 20), rows_per_chunk=80)(state.params, x, key)
        return per["iwae_20"]

    rng_idx = np.random.default_rng(1).integers(0, 30, size=(25, 6))
    out = {
        "ladder_1": ladder(1, key), "ladder_2": ladder(2, key),
        "ladder_other_key": ladder(1, jax.random.key(2)),
        "ais_1": run_ais(1), "ais_2": run_ais(2),
        "train_1": train(1), "train_2": train(2),
    }
    print(json.dumps({k: np.asarray(v, np.float64).tolist() for k, v in out.items()}))
    """
)


@pytest.fixture(scope="module")
def two_devices() -> dict[str, np.ndarray]:
    e = {**env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=e
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return {k: np.asarray(v) for k, v in json.loads(p.stdout.splitlines()[-1]).items()}


def test_the_ladder_over_two_devices_gives_each_image_its_one_device_value(two_devices):
    d = two_devices
    assert d["ladder_1"].shape == (30,)
    np.testing.assert_allclose(d["ladder_2"], d["ladder_1"], rtol=0, atol=TOL)
    # control: another key moves the estimates by Monte Carlo error, far beyond the tolerance
    assert np.max(np.abs(d["ladder_other_key"] - d["ladder_1"])) > 100 * TOL


def test_ais_over_two_devices_gives_each_image_its_one_device_value(two_devices):
    np.testing.assert_allclose(two_devices["ais_2"], two_devices["ais_1"], rtol=0, atol=TOL)


def test_training_with_each_minibatch_split_over_two_devices_ends_at_the_same_model(two_devices):
    """25 IWAE-5 Adam steps on batches of 6 (3 per device), then the one-device ladder."""
    np.testing.assert_allclose(two_devices["train_2"], two_devices["train_1"], rtol=0, atol=TOL)


def test_more_devices_than_jax_sees_is_a_config_error_saying_how_to_get_them():
    with pytest.raises(ConfigError, match="xla_force_host_platform_device_count=64"):
        parallel.make_mesh(64)


def test_a_batch_that_does_not_split_over_the_devices_exits_2(tmp_path):
    p = elbo_lab("devices=3", "batch_size=20", f"out_root={tmp_path}", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "batch_size=20 does not split over devices=3" in p.stderr
    assert "Traceback" not in p.stderr


def numbers(out: Path) -> tuple[dict, np.ndarray, dict]:
    """(results.json, per-image test log p(x), first metrics record) of the one run under out."""
    (run,) = Path(out).glob("default/*")
    return (
        json.loads((run / "results.json").read_text()),
        np.load(run / "test_per_example.npz")["log_px"],
        [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][0],
    )


def assert_same_numbers(a: tuple, b: tuple) -> None:
    (r1, px1, m1), (r2, px2, m2) = a, b
    np.testing.assert_allclose(px2, px1, rtol=0, atol=TOL)
    for key in ("test/log_px", "test/elbo", "test/kl"):
        assert abs(r2[key] - r1[key]) < TOL, key
    for key in ("train/loss", "val/elbo", "val/iwae_5"):
        assert abs(m2[key] - m1[key]) < TOL, key


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("d1")
    p = elbo_lab(*FAST, "optim.epochs=1", "devices=1", f"out_root={out}", cwd=out)
    assert p.returncode == 0, p.stderr[-3000:]
    return numbers(out)


@pytest.mark.slow
def test_a_two_device_run_gives_the_one_device_run_s_test_numbers(tmp_path, one_device_run):
    """The command a user runs, devices=2 (no XLA_FLAGS: elbo-lab asks JAX for two CPU
    devices) against devices=1: one epoch of 96 minibatches, validation and test ladders."""
    p = elbo_lab(*FAST, "optim.epochs=1", "devices=2", f"out_root={tmp_path}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert_same_numbers(one_device_run, numbers(tmp_path))


def slurm_step(args: list[str], cwd: Path) -> list[tuple[int, str]]:
    """`elbo-lab *args` as two tasks of one SLURM step on this host would run it, with the
    variables srun sets, which jax.distributed reads (its coordinator on the first node,
    127.0.0.1); (exit code, stderr) of each task."""
    exe = Path(sys.executable).with_name("elbo-lab")
    step = {"SLURM_JOB_ID": str(os.getpid()), "SLURM_STEP_NODELIST": "127.0.0.1"}
    step["SLURM_NTASKS"] = "2"
    procs, logs = [], [cwd / f"task{i}.log" for i in range(2)]
    for i, log in enumerate(logs):
        task = {**env(), **step, "SLURM_PROCID": str(i), "SLURM_LOCALID": str(i)}
        with log.open("w") as f:  # files, not pipes: a full pipe would stall the other task
            procs.append(subprocess.Popen([str(exe), *args], cwd=cwd, env=task, stderr=f))
    return [(p.wait(timeout=600), log.read_text()) for p, log in zip(procs, logs, strict=True)]


@pytest.mark.slow
def test_a_two_host_run_gives_the_one_device_run_s_numbers_and_resumes(tmp_path, one_device_run):
    """distributed=true: two processes (one CPU device each) under a simulated SLURM step train
    one model (and log the gradient SNR); process 0 alone writes the run folder. Then the
    finished run's results are removed and the same command run again: both processes restore
    the final checkpoint (orbax, multi-process) and redo the test evaluation, with the same
    numbers."""
    args = [*FAST, "optim.epochs=1", "distributed=true", "devices=2", "eval.snr_every=1"]
    args.append(f"out_root={tmp_path}")
    for attempt in ("fresh", "resumed"):
        for code, stderr in slurm_step(args, tmp_path):
            assert code == 0, f"{attempt}: {stderr[-3000:]}"
            # a restore, not a retraining from scratch (which would give the same numbers)
            assert ("from its epoch-1 checkpoint" in stderr) == (attempt == "resumed"), stderr
        assert_same_numbers(one_device_run, numbers(tmp_path))
        (run,) = tmp_path.glob("default/*")
        lines = (run / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == 2, lines  # epoch 1 and the test record: one writer
        for name in ("done.json", "results.json", "test_per_example.npz"):
            (run / name).unlink()
