"""`elbo-lab-eval`: a trained run folder in, JSON + table + figure + logs out; bad input stops
cleanly with exit status 2 and a one-line message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from elbo_lab import evaluate, train
from elbo_lab.chunking import chunked_map
from elbo_lab.config import to_train_config
from elbo_lab.configs import CONFIG_DIR
from elbo_lab.errors import ConfigError
from elbo_lab.evaluate import to_evaluate_config
from elbo_lab.runs import read_metrics

# Every section on, each as small as it can be and still run its code.
TINY = [
    "examples=20",
    "ladder.ks=[1,5,50]",
    "ais.examples=4",
    "ais.temperatures=10",
    "ais.chains=4",
    "ais.num_leapfrog=2",
    "ais.examples_per_chunk=4",
    "bdmc.examples=4",
    "gaps.examples=4",
    "gaps.steps=20",
    "gaps.init_samples=10",
    "gaps.eval_samples=50",
    "surgery.examples=300",
    "progress=false",
]


def eval_cli(*args, cwd, timeout=600):
    exe = Path(sys.executable).with_name("elbo-lab-eval")
    env = {**os.environ, "WANDB_MODE": "offline"}
    env.pop("WANDB_API_KEY", None)
    return subprocess.run(
        [str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder of one short epoch on the shipped mnist_small (96 updates of 100)."""
    folder = tmp_path_factory.mktemp("runs") / "tiny"
    overrides = ["optim.epochs=1", "eval.test=false", "eval.val_every=0", "logger=none"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", [*overrides, "batch_size=100", "progress=false"])
    train.run(to_train_config(cfg), folder)
    return folder


@pytest.mark.slow
def test_eval_writes_results_table_figure_and_logs(run_dir, tmp_path):
    """End to end through the console script (~1 min on 2 idle cores: a training epoch, then every
    section with tiny budgets)."""
    training_metrics = (run_dir / "metrics.jsonl").read_bytes()
    proc = eval_cli(f"run_dir='{run_dir}'", *TINY, "logger=wandb", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []  # nothing in the working folder
    eval_dir = run_dir / "eval"
    results = json.loads((eval_dir / "test.json").read_text())
    assert {"ladder", "ais", "bdmc", "gaps", "surgery", "config", "seconds"} <= set(results)
    lad = results["ladder"]
    assert lad["n_examples"] == 20 and lad["iwae_50"] == lad["log_px"]
    assert results["ais"]["n"] == 4 and results["gaps"]["log_px_from"] == "ais"
    s = results["surgery"]
    assert s["n_components"] == 300
    assert s["avg_kl"]["mean"] == pytest.approx(s["mi"]["mean"] + s["marg_kl"]["mean"], abs=1e-3)
    assert s["mi"]["mean"] <= s["log_n"] + 1e-3
    g = results["gaps"]
    assert g["inference_gap"]["mean"] == pytest.approx(
        g["approximation_gap"]["mean"] + g["amortization_gap"]["mean"], abs=1e-6
    )
    table = (eval_dir / "test.md").read_text()
    assert "log p(x), AIS" in table and "BDMC gap" in table and "surgery: mi" in table
    assert (eval_dir / "test.png").stat().st_size > 0
    assert (eval_dir / "test" / "figures" / "ladder_test.png").exists()
    [record] = read_metrics(eval_dir / "test")
    assert record["eval/test/ladder/log_px"] == lad["log_px"]
    assert list((eval_dir / "test" / "wandb").glob("offline-run-*"))
    assert (eval_dir / "hydra" / ".hydra" / "config.yaml").exists()
    assert (run_dir / "metrics.jsonl").read_bytes() == training_metrics  # training logs untouched


@pytest.mark.slow
def test_an_evaluation_from_first_extends_an_earlier_one_exactly(run_dir, tmp_path):
    """examples 2..5 evaluated with first=2 get the values of one evaluation of examples 0..5
    (the ladder and AIS draw each chunk's noise from its index in the split); negative control:
    the same rows mapped without their offset get other values."""
    small = [
        "evaluators=[ladder,ais]",
        "ladder.ks=[1,5]",
        "ladder.rows_per_chunk=10",  # 2 examples per chunk
        "ais.examples=null",
        "ais.temperatures=10",
        "ais.chains=4",
        "ais.num_leapfrog=2",
        "ais.examples_per_chunk=2",
        "logger=none",
        "progress=false",
    ]

    def per_example(name, *overrides):
        out = tmp_path / f"{name}.json"
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("evaluate", [f"run_dir={run_dir}", f"out={out}", *small, *overrides])
        evaluate.run(to_evaluate_config(cfg))
        return dict(np.load(tmp_path / f"{name}_per_example.npz"))

    whole = per_example("whole", "examples=6")
    rest = per_example("rest", "first=2", "examples=4")
    assert set(rest) == set(whole) and "ais/log_px" in rest
    for name, values in rest.items():
        np.testing.assert_array_equal(values, whole[name][2:], err_msg=name)

    def noise(p, k, x):
        return {"u": jax.random.uniform(k, x.shape)}

    rows, key = np.zeros((6, 1), np.float32), jax.random.key(0)
    at_offset = chunked_map(noise, [rows[2:]], 2, key, first_row=2)["u"]
    np.testing.assert_array_equal(at_offset, chunked_map(noise, [rows], 2, key)["u"][2:])
    assert not np.array_equal(chunked_map(noise, [rows[2:]], 2, key)["u"], at_offset)


def test_eval_without_run_dir_stops_with_a_message(tmp_path):
    proc = eval_cli("logger=none", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "elbo-lab-eval: error: run_dir is required: elbo-lab-eval run_dir=<a run folder>"
    )


def test_eval_of_a_folder_without_a_run_stops_with_a_message(tmp_path):
    proc = eval_cli(f"run_dir={tmp_path}", "logger=none", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is not an elbo-lab run folder" in proc.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("split=holdout", "valid: test, valid, train"),
        ("ais.schedule=cosine", "valid: sigmoid, linear"),
        ("ais.init=posterior", "valid: prior, q"),
        ("ladder.ks=[1,3,50]", "every K must divide the largest"),
        ("gaps.steps=0", "gaps.steps >= 1"),
        ("ais.chains=oops", "ais.chains"),
        ("first=-1", "first must be >= 0"),
    ],
)
def test_bad_values_are_config_errors(override, message, tmp_path):
    """Range errors are ConfigErrors from the entries; a wrong type already fails composition
    against the evaluator's schema (the console script reports both with exit 2)."""
    pattern = message.replace("[", r"\[")
    with pytest.raises((ConfigError, ConfigCompositionException), match=pattern):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("evaluate", overrides=[f"run_dir={tmp_path}", override])
        to_evaluate_config(cfg)
