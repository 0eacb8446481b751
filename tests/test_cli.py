"""The command line: every config group composes, user errors stop cleanly, sweeps, resume, W&B."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import FAST, TIMING, elbo_lab, env, wandb_history
from hydra import compose, initialize_config_dir

from elbo_lab.config import COMPONENTS, to_train_config
from elbo_lab.configs import CONFIG_DIR
from elbo_lab.errors import ConfigError
from elbo_lab.launch import sweep_jobs as launched_jobs
from elbo_lab.report import write_report
from elbo_lab.runs import PER_EXAMPLE_FILE, read_metrics, read_per_example


def compose_cfg(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides))


# Entries that need a user's file to validate, and a component they need beside them.
NEEDS = {
    ("data", "npz"): ["data.path=my.npz"],
    ("data", "image_folder"): ["data.path=my_images"],
    ("model", "linear_gaussian"): ["likelihood=gaussian"],
}


def group_options():
    """Every YAML preset under configs/ and every registered component, as (group, option)."""
    root = Path(CONFIG_DIR)
    presets = [
        (group.name, f.stem)
        for group in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "__pycache__")
        for f in sorted(group.glob("*.yaml"))
    ]
    entries = [(g, name) for g, reg in COMPONENTS.items() for name in reg.names()]
    return sorted(set(presets + entries))


@pytest.mark.parametrize("group,option", group_options())
def test_every_config_option_composes_and_validates(group, option):
    tc = to_train_config(compose_cfg(f"{group}={option}", *NEEDS.get((group, option), [])))
    if group in COMPONENTS:
        preset = (Path(CONFIG_DIR) / group / f"{option}.yaml").exists()
        assert type(getattr(tc, group)).registry_name == option or preset
    elif group == "optim":
        assert tc.optim.name == option


def sweep_jobs(experiment: str) -> list[list[str]]:
    """The override lists of the jobs an experiment's sweep launches, in launch order."""
    return launched_jobs("train", [f"experiment={experiment}"], multirun=False)


@pytest.mark.parametrize("experiment", [o for g, o in group_options() if g == "experiment"])
def test_every_job_of_every_experiment_sweep_validates(experiment):
    """A bad value in one job of a paper's sweep would otherwise surface only when that job
    starts, possibly hours into the sweep."""
    jobs = sweep_jobs(experiment)
    assert jobs, f"{experiment} launches no job"
    for job in jobs:
        to_train_config(compose_cfg(f"experiment={experiment}", *job))


def test_table1_sweep_lists_all_twelve_cells_longest_first():
    """(At launch the sweeper skips the two IWAE k=1 jobs, twins of the ELBO k=1 ones.)"""
    cells = [dict(o.split("=", 1) for o in job) for job in sweep_jobs("burda_table1_reduced")]
    assert len({tuple(sorted(c.items())) for c in cells}) == 12
    assert [c["objective.k"] for c in cells] == ["50"] * 4 + ["5"] * 4 + ["1"] * 4
    assert cells[0]["model"] == "burda_2l"


@pytest.mark.parametrize(
    "override,message",
    [
        ("objective.k=0", "objective.k must be a positive number of samples"),
        ("optim.lr=-0.1", "optim.lr must be positive"),
        ("data.name=cifar", "unknown data 'cifar'; registered: binarized_mnist, image_folder"),
        ("eval.ks=[1,3,50]", "every K must divide the largest"),
        ("batch_size=zero", "batch_size"),
        ("optim=burda optim.epochs=3", "optim.epochs=3 has no effect under optim=burda"),
    ],
)
def test_bad_values_stop_with_a_message_naming_what_is_valid(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        to_train_config(compose_cfg(*override.split(" ")))


def test_cli_user_errors_exit_2_without_traceback(tmp_path):
    r = elbo_lab("objective.k=-5", f"out_root={tmp_path}", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "objective.k must be a positive number" in r.stderr
    assert "Traceback" not in r.stderr
    r = elbo_lab("model=burda_3l", f"out_root={tmp_path}", cwd=tmp_path)
    assert r.returncode == 2
    assert "burda_1l" in r.stderr and "burda_2l" in r.stderr  # Hydra lists the valid options
    assert "Traceback" not in r.stderr
    # a field the chosen component lacks: its fields are listed, with the closest
    r = elbo_lab("objective=iwae", "objective.kk=5", f"out_root={tmp_path}", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "objective 'iwae' has no field 'kk' (did you mean 'k'?); its fields: k" in r.stderr
    r = elbo_lab("objective=iwae", "+objective.num_steps=3", f"out_root={tmp_path}", cwd=tmp_path)
    assert r.returncode == 2 and "has no field 'num_steps'" in r.stderr
    # a bad value in the last job of a sweep stops the sweep before its first job trains
    r = elbo_lab("-m", "objective.k=1,abc", f"out_root={tmp_path}", cwd=tmp_path)
    assert r.returncode == 2 and "'abc'" in r.stderr and "Traceback" not in r.stderr
    r = elbo_lab("data=mnist", "data.download=false", f"data.root={tmp_path}/none", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "train-images-idx3-ubyte.gz" in r.stderr  # says which files to put where
    assert not list(tmp_path.glob("**/.hydra")), "a stopped run left a run folder behind"


@pytest.mark.slow
def test_train_run_every_model_and_objective(tmp_path):
    """One short epoch of each architecture with each objective, through the real trainer."""
    from elbo_lab import train

    for model in ("burda_1l", "burda_2l"):
        for objective in ("elbo", "iwae"):
            overrides = [f"model={model}", f"objective={objective}", "optim.epochs=1", *FAST]
            tc = to_train_config(compose_cfg(*overrides, "batch_size=400"))
            results = train.run(tc, tmp_path / f"{model}-{objective}")
            assert results["test/elbo"] <= results["test/iwae_10"] + 0.5  # IWAE-10 >= ELBO (MC)
            assert results["test/nll"] > 0 and results["epochs"] == 1
            # each test image's log p(x) is kept for paired comparisons; its mean is the NLL's
            # (stored as float32: rounding moves a value by at most 2^-24 of it, < 6e-5 for any
            # NLL below 1,000 nats, and the mean by no more; float64 summation adds ~1e-12)
            log_px = read_per_example(tmp_path / f"{model}-{objective}")["log_px"]
            assert log_px.shape == (results["test/n_examples"],)
            assert -log_px.mean(dtype=np.float64) == pytest.approx(results["test/nll"], abs=1e-4)
            if model == "burda_2l":  # the paper counts active units per layer, e.g. "16+5"
                by_layer = [results[f"test/active_units_layer{i}"] for i in (1, 2)]
                assert sum(by_layer) == results["test/active_units"]


@pytest.mark.slow
def test_sweep_runs_each_job_in_its_own_folder_trains_a_cell_once_and_reruns_skip(tmp_path):
    """objective=elbo,iwae x k=1,5 is three runs, not four: IWAE k=1 is the ELBO k=1 (the same
    bound, the same model), so its job is skipped, with a line naming the job it duplicates."""
    args = ["-m", "objective=elbo,iwae", "objective.k=1,5", "optim.epochs=1"]
    args += [f"out_root={tmp_path}", *FAST]
    r = elbo_lab(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "skipped objective=iwae objective.k=1" in r.stderr + r.stdout
    assert "the same run as objective=elbo objective.k=1" in r.stderr + r.stdout
    folders = sorted((tmp_path / "default").glob("*objective=*"))
    assert [[p for p in f.name.split(",") if p.startswith("objective")] for f in folders] == [
        ["objective.k=1", "objective=elbo"],
        ["objective.k=5", "objective=elbo"],
        ["objective.k=5", "objective=iwae"],
    ]
    for f in folders:
        assert (f / "done.json").exists() and json.loads((f / "results.json").read_text())[
            "test/nll"
        ] > 0
    table = write_report(folders, tmp_path / "report")  # the table is rebuilt from the folders
    assert [row["run"] for row in table] == [
        "burda_1l elbo k=1",
        "burda_1l elbo k=5",
        "burda_1l iwae k=5",
    ]
    for row, f in zip(table, folders, strict=True):
        assert row["nll"] == json.loads((f / "results.json").read_text())["test/nll"]
    assert (tmp_path / "report" / "ladder.png").stat().st_size > 0
    before = {f: (f / "metrics.jsonl").read_text() for f in folders}
    r = elbo_lab(*args, cwd=tmp_path)  # a finished sweep: nothing is trained again
    assert r.returncode == 0
    assert before == {f: (f / "metrics.jsonl").read_text() for f in folders}


@pytest.mark.slow
def test_cli_trains_the_hmc_objective_on_the_two_layer_model(tmp_path):
    """objective=hmc and model=burda_2l as a user runs them: one epoch through the console
    script, with the HMC statistics in metrics.jsonl and a finite test ladder."""
    args = ["model=burda_2l", "objective=hmc", "objective.num_steps=1", "objective.num_leapfrog=2"]
    r = elbo_lab(*args, "optim.epochs=1", f"out_root={tmp_path}", *FAST, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (tmp_path / "default").iterdir()
    results = json.loads((run / "results.json").read_text())
    assert np.isfinite(results["test/nll"]) and results["test/active_units_layer2"] >= 0
    (epoch,) = [r for r in read_metrics(run) if r.get("epoch") == 1]
    assert 0 < epoch["train/accept"] <= 1 and epoch["train/step_size"] > 0
    assert "test ladder over 50 examples" in r.stdout


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_metrics(tmp_path):
    """Kill a 3-epoch run after its epoch-2 checkpoint, run the same command again, and compare
    every logged number with a run that was never killed: they must be identical (CPU XLA is
    deterministic and every key derives from the seed and the step). The resume must have
    restored a checkpoint (not retrained from scratch), and the killed run's offline W&B record
    must hold every epoch exactly once."""
    args = ["optim.epochs=3", "eval.val_every=1", *FAST]
    r = elbo_lab(*args, "out_root=straight", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]

    exe = Path(sys.executable).with_name("elbo-lab")
    wandb_args = [*args, "logger=wandb", "out_root=killed"]  # the last logger= wins
    proc = subprocess.Popen(
        [str(exe), *wandb_args],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt2 = None
    deadline = time.time() + 240
    while time.time() < deadline:
        runs = list((tmp_path / "killed" / "default").glob("*/checkpoints/2"))
        if runs:
            ckpt2 = runs[0]
            break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt2 is not None, "no epoch-2 checkpoint within the time limit"
    run_dir = ckpt2.parent.parent
    assert not (run_dir / "done.json").exists()
    r = elbo_lab(*wandb_args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    session = json.loads((run_dir / "provenance.json").read_text())["sessions"][-1]
    assert session["resumed_from_epoch"] >= 1, "the resume retrained instead of restoring"
    assert f"from its epoch-{session['resumed_from_epoch']} checkpoint" in r.stderr

    def numbers(root):
        recs = read_metrics(next((tmp_path / root / "default").glob("*")))
        return [{k: v for k, v in rec.items() if k not in TIMING} for rec in recs]

    straight, resumed = numbers("straight"), numbers("killed")
    assert [r.get("epoch") for r in resumed] == [1, 2, 3, None]
    assert resumed == straight
    # W&B: one row per step (the test record shares the last epoch's step), every epoch once,
    # with metrics.jsonl's numbers; the killed session's folder is kept aside, not synced again
    history = wandb_history(run_dir)
    assert [h["_step"] for h in history] == sorted({r["step"] for r in resumed})
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for h, rec in zip(history, [r for r in resumed if r.get("epoch")], strict=True):
        assert all(h[k] == pytest.approx(v, rel=1e-6) for k, v in rec.items() if k != "step")
    assert len(list(run_dir.glob("wandb_superseded/offline-run-*"))) == 1


@pytest.mark.slow
def test_wandb_offline_run_holds_the_logged_metrics(tmp_path):
    """Read the offline W&B run back with `wandb leet inspect` and find metrics.jsonl's numbers."""
    args = ["optim.epochs=1", *[a for a in FAST if a != "logger=none"], "logger=wandb"]
    r = elbo_lab(*args, f"out_root={tmp_path}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = next((tmp_path / "default").glob("*"))
    wandb_files = list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(wandb_files) == 1
    exe = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(exe), "leet", "inspect", "--summary", "--json", str(wandb_files[0])],
        capture_output=True,
        text=True,
        timeout=120,
        env=env(),
    )
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)
    records = read_metrics(run_dir)
    epoch, final = records[0], records[-1]
    # The summary holds the last value of every key: the epoch record's, then the test record's.
    for key in ("train/elbo", "train/kl", "val/iwae_5", "val/log_px"):
        assert run["summary"][key] == pytest.approx(epoch[key], rel=1e-6)
    assert run["summary"]["test/nll"] == pytest.approx(final["test/nll"], rel=1e-6)
    assert run["config"]["objective"] == {"name": "elbo", "k": 1, "estimator": "reparam"}
    assert run["exit_code"] == 0
    # The per-image test values are a file of the W&B run (`wandb sync` uploads files/).
    saved = list(run_dir.glob(f"wandb/offline-run-*/files/{PER_EXAMPLE_FILE}"))
    assert len(saved) == 1
    assert saved[0].read_bytes() == (run_dir / PER_EXAMPLE_FILE).read_bytes()
