"""The run folder's promises: provenance, safe resume, nothing deleted or truncated, one process
per folder. Each test trains a tiny run on the shipped mnist_small through train.run."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from elbo_lab import provenance, runs, train
from elbo_lab.config import to_train_config
from elbo_lab.configs import CONFIG_DIR
from elbo_lab.errors import ConfigError

TINY = ["batch_size=400", "eval.ks=[1,10]", "eval.val_ks=[1,5]", "eval.test_examples=20"]
TINY += ["eval.figures=false", "progress=false", "logger=none", "eval.val_every=1"]
TIMING = ("train/seconds_per_epoch", "train/examples_per_s")


def config(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return to_train_config(compose("train", [*TINY, *overrides]))


def numbers(run_dir):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in runs.read_metrics(run_dir)]


def test_provenance_is_recorded_for_every_session(tmp_path):
    train.run(config("optim.epochs=1"), tmp_path)
    prov = json.loads((tmp_path / runs.PROVENANCE_FILE).read_text())
    [session] = prov["sessions"]
    assert session["code_hash"] == provenance.code_hash() and len(session["code_hash"]) == 64
    assert session["outcome"] == "finished" and session["ended"] >= session["started"]
    assert session["packages"]["jax"] and session["command"] and session["host"]
    if "git_commit" in session:  # in a checkout
        assert len(session["git_commit"]) == 40 and isinstance(session["git_dirty"], bool)


def test_a_changed_config_stops_with_the_difference_unless_allowed(tmp_path):
    train.run(config("optim.epochs=1"), tmp_path)
    before = (tmp_path / runs.METRICS_FILE).read_text()
    with pytest.raises(ConfigError, match=r"(?s)optim\.eps: 1e-08 -> 0\.0001.*allow_changes=true"):
        train.run(config("optim.epochs=1", "optim.eps=1e-4"), tmp_path)
    with pytest.raises(ConfigError, match=r"eval\.test: True -> False"):  # not in the folder name
        train.run(config("optim.epochs=1", "eval.test=false"), tmp_path)
    # keys that do not change what is computed may differ
    train.run(config("optim.epochs=1", "progress=true", "checkpoint_every=2"), tmp_path)
    assert (tmp_path / runs.METRICS_FILE).read_text() == before
    train.run(config("optim.epochs=1", "optim.eps=1e-4", "allow_changes=true"), tmp_path)
    prov = json.loads((tmp_path / runs.PROVENANCE_FILE).read_text())
    assert prov["changes"][-1]["differences"] == ["optim.eps: 1e-08 -> 0.0001"]


def test_a_finished_run_is_not_re_served_after_a_code_change(tmp_path, monkeypatch):
    train.run(config("optim.epochs=1"), tmp_path)
    other = {**provenance.code_version(), "code_hash": "0" * 64}
    monkeypatch.setattr(provenance, "code_version", lambda: other)
    with pytest.raises(ConfigError, match="(?s)finished by other code.*allow_changes=true"):
        train.run(config("optim.epochs=1"), tmp_path)
    results = train.run(config("optim.epochs=1", "allow_changes=true"), tmp_path)
    assert results == runs.read_results(tmp_path)


def unfinish(run_dir: Path) -> None:
    (run_dir / runs.DONE_FILE).unlink()
    (run_dir / runs.RESULTS_FILE).unlink()


@pytest.mark.slow
def test_an_unreadable_checkpoint_is_kept_aside_and_the_older_one_restored(tmp_path):
    straight = tmp_path / "straight"
    train.run(config("optim.epochs=2"), straight)
    run = tmp_path / "run"
    train.run(config("optim.epochs=2"), run)
    unfinish(run)
    for f in (run / "checkpoints" / "2").rglob("*"):  # what a kill mid-write can leave
        if f.is_file() and f.stat().st_size > 0 and "manifest" in f.name:
            f.write_bytes(b"")
    with pytest.warns(UserWarning, match="checkpoint 2 is unreadable.*kept as"):
        train.run(config("optim.epochs=2"), run)
    aside = list((run / runs.UNREADABLE_DIR).iterdir())
    assert len(aside) == 1 and aside[0].name.startswith("2-")
    assert numbers(run) == numbers(straight)  # epoch 2 retrained from epoch 1, exactly


def test_a_changed_model_is_a_clear_error_and_deletes_nothing(tmp_path):
    train.run(config("optim.epochs=2"), tmp_path)
    unfinish(tmp_path)
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    metrics = (tmp_path / runs.METRICS_FILE).read_text()
    wider = config("optim.epochs=2", "model.latent_dims=[20]", "allow_changes=true")
    with pytest.raises(ConfigError, match=r"(?s)does not match.*enc0"):
        train.run(wider, tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ckpts
    assert (tmp_path / runs.METRICS_FILE).read_text() == metrics


@pytest.mark.slow
def test_a_half_written_metrics_line_does_not_block_resume(tmp_path):
    train.run(config("optim.epochs=2"), tmp_path)
    good = numbers(tmp_path)
    unfinish(tmp_path)
    path = tmp_path / runs.METRICS_FILE
    path.write_text(path.read_text() + '{"epoch": 3, "trai')  # a kill mid-line
    with pytest.warns(UserWarning, match="half-written last line"):
        train.run(config("optim.epochs=2"), tmp_path)
    assert numbers(tmp_path) == good


def test_one_process_per_run_folder_and_a_killed_holder_leaves_no_lock(tmp_path):
    cfg = config("optim.epochs=1")
    with runs.RunLock(tmp_path):
        with pytest.raises(ConfigError, match="another process is running in"):
            train.run(cfg, tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom elbo_lab import runs\n"
            f"lock = runs.RunLock({str(tmp_path)!r})\nlock.__enter__()\n"
            "print('held', flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ConfigError, match="another process"), runs.RunLock(tmp_path):
        pass
    holder.kill()
    holder.wait()
    time.sleep(0.1)
    train.run(cfg, tmp_path)  # the kernel dropped the dead process's lock
    assert runs.is_finished(tmp_path)


def test_json_files_never_hold_bare_nan(tmp_path):
    runs.write_json(tmp_path / "x.json", {"a": float("nan"), "b": [1.0, float("inf")]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": [1.0, None]}


def test_train_config_round_trips_through_config_json(tmp_path):
    cfg = config("optim.epochs=1", "objective=hmc", "objective.num_steps=2")
    runs.save_config(tmp_path, cfg)
    assert runs.load_config(tmp_path) == dataclasses.replace(cfg)


def test_non_finite_training_stops_keeps_the_last_checkpoint_and_never_finishes(tmp_path):
    with pytest.raises(train.Diverged, match="(?s)diverged in epoch 1: .*optim.lr=1000000.0"):
        train.run(config("optim.epochs=2", "optim.lr=1e6"), tmp_path)
    assert not (tmp_path / runs.DONE_FILE).exists() and not runs.is_finished(tmp_path)
    assert (
        json.loads((tmp_path / runs.PROVENANCE_FILE).read_text())["sessions"][-1]["outcome"]
        == "stopped"
    )


def test_an_hmc_acceptance_out_of_range_is_a_warning_in_the_console_and_the_metrics():
    assert train.health({"epoch": 1, "train/accept": 0.5}) == {}
    with pytest.warns(UserWarning, match="acceptance 0.000 is below 0.05: the step size is too"):
        assert train.health({"epoch": 3, "train/accept": 0.0}) == {"health/accept_out_of_range": 1}
    with pytest.warns(UserWarning, match="above 0.99"):
        train.health({"epoch": 3, "train/accept": 1.0})


@pytest.mark.slow
def test_evaluation_falls_back_to_the_older_checkpoint_when_the_newest_is_unreadable(tmp_path):
    cfg = config("optim.epochs=2")
    train.run(cfg, tmp_path)
    for f in (tmp_path / "checkpoints" / "2").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "manifest" in f.name:
            f.write_bytes(b"")
    splits = cfg.data.build()
    model = runs.build_model(cfg, splits.event_shape)
    with pytest.warns(UserWarning, match="checkpoint 2 .* is unreadable.*the one before it"):
        restored = runs.restore_params(tmp_path, model, splits.train.mean(0), cfg.seed)
    assert restored.epoch == 1
    with pytest.raises(ConfigError, match="no checkpoint of epoch 7; available: 1, 2"):
        runs.restore_params(tmp_path, model, splits.train.mean(0), cfg.seed, epoch=7)


def test_an_empty_wandb_id_left_by_a_kill_does_not_block_the_offline_logger(tmp_path):
    """A kill while wandb_id.txt was being written used to leave it empty, and W&B refuses an
    empty run id (the rerun exited 2). The id is now written atomically, and an empty one is
    replaced."""
    from elbo_lab.logging import RunLogger

    (tmp_path / "wandb_id.txt").write_text("")
    logger = RunLogger(tmp_path, {}, logger="wandb", mode="offline")
    logger.log({"step": 1, "epoch": 1, "train/loss": 1.0})
    logger.close()
    run_id = (tmp_path / "wandb_id.txt").read_text()
    assert len(run_id) == 8 and list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))


@pytest.mark.parametrize(
    "a,b",
    [
        (["objective=iwae", "objective.k=1"], ["objective=elbo", "objective.k=1"]),
        (["objective=iwae", "objective.k=1", "objective.estimator=dreg"],
         ["objective=elbo", "objective.k=1", "objective.estimator=stl"]),
        (["objective=renyi", "objective.alpha=0", "objective.k=7"],
         ["objective=iwae", "objective.k=7"]),
        (["objective=miwae", "objective.m=1", "objective.k=4"],
         ["objective=iwae", "objective.k=4"]),
        (["objective=miwae", "objective.m=6", "objective.k=1"],
         ["objective=elbo", "objective.k=6"]),
        (["objective=ciwae", "objective.beta=1", "objective.k=3"],
         ["objective=elbo", "objective.k=3"]),
    ],
)  # fmt: skip
def test_an_objective_that_is_another_under_a_second_name_shares_its_cell(a, b):
    """The sweeper trains such a pair once and the report shows it once (cell_key)."""
    from elbo_lab.config import to_dict

    assert runs.cell_key(to_dict(config(*a))) == runs.cell_key(to_dict(config(*b)))
    other = ["objective=iwae", "objective.k=7", "objective.estimator=dreg"]
    assert runs.cell_key(to_dict(config(*a))) != runs.cell_key(to_dict(config(*other)))


def test_gradient_snr_is_logged_during_training_and_evaluated_on_a_saved_run(tmp_path):
    """eval.snr_every=1: every epoch's record holds the encoder's and decoder's SNR; the
    gradient_snr evaluator computes the same statistics at the saved checkpoint."""
    from elbo_lab import evaluate

    cfg = config("optim.epochs=1", "objective=iwae", "objective.k=3",
                 "objective.estimator=dreg", "eval.snr_every=1", "eval.snr_repeats=8")  # fmt: skip
    train.run(cfg, tmp_path)
    [row] = [r for r in runs.read_metrics(tmp_path) if r.get("epoch") == 1]
    for half in ("encoder", "decoder"):
        assert row[f"snr/{half}/snr_median"] > 0 and row[f"snr/{half}/variance"] > 0
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        overrides = ["evaluators=[gradient_snr]", "gradient_snr.repeats=8", "logger=none"]
        raw = compose("evaluate", [f"run_dir={tmp_path}", *overrides, "progress=false"])
    results = evaluate.run(evaluate.to_evaluate_config(raw))
    snr = results["gradient_snr"]
    assert snr["repeats"] == 8 and snr["encoder"]["parameters"] > snr["decoder"]["parameters"] > 0
