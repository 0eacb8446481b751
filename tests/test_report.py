"""elbo-lab-report against a paper: every cell gets the paper's NLL, ours, the difference and the
budget, read from run folders (written here by hand, so the expected numbers are known exactly)."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elbo_lab.report import (
    PAPERS,
    load_run,
    main,
    orderings,
    pooled_seed_sd,
    rows,
    runs_table,
    wandb_runs,
    write_report,
)
from elbo_lab.runs import PER_EXAMPLE_FILE


def fake_run(folder, model, objective, k, nll, epochs=3, data="mnist", log_px=None, seed=0):
    """A finished run folder as the trainer writes it, with only the fields the report reads
    (and, given `log_px`, the per-image test log p(x))."""
    folder.mkdir(parents=True)
    widths = {"burda_1l": ([50], [[200, 200]]), "burda_2l": ([100, 50], [[200, 200], [100, 100]])}
    config = {
        "model": {"name": "mlp", "latent_dims": widths[model][0], "hidden_dims": widths[model][1]},
        "objective": {"name": objective, "k": k},
        "data": {"name": data},
        "likelihood": {"name": "bernoulli"},
        "seed": seed,
    }
    (folder / "config.json").write_text(json.dumps(config))
    ladder = {"test/iwae_1": -nll - 9.0, "test/iwae_5": -nll - 3.0, "test/iwae_5000": -nll}
    results = {
        **ladder,
        **{f"{key}_se": 0.25 for key in ladder},
        "test/n_examples": 10000,
        "test/nll": nll,
        "test/nll_se": 0.25,
        "test/elbo": -nll - 9.0,
        "test/gap_elbo": 9.0,
        "test/gap_elbo_se": 0.03,
        "test/kl": 24.0,
        "test/active_units": 20 + k,
    }
    (folder / "results.json").write_text(json.dumps(results))
    records = [
        {"epoch": e, "train/seconds_per_epoch": 10.0 + (e == 1), "train/examples_per_s": 6000.0}
        for e in range(1, epochs + 1)
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if log_px is not None:
        np.savez_compressed(folder / PER_EXAMPLE_FILE, log_px=log_px.astype(np.float32))
    (folder / "done.json").write_text(json.dumps({"epochs": epochs}))


def test_paper_report_puts_every_cell_beside_the_paper(tmp_path, capsys):
    ours = {("burda_1l", "elbo", 1): 95.0, ("burda_1l", "iwae", 5): 93.5}
    folders = []
    for (model, objective, k), nll in ours.items():
        folders.append(tmp_path / "runs" / f"{model}-{objective}-{k}")
        fake_run(folders[-1], model, objective, k, nll)
    folders.append(tmp_path / "runs" / "omniglot")  # a data set the paper table here lacks
    fake_run(folders[-1], "burda_1l", "iwae", 5, 104.0, data="omniglot")
    unfinished = tmp_path / "runs" / "unfinished"
    unfinished.mkdir()
    out = tmp_path / "report"
    main([*map(str, folders), str(unfinished), "--paper", "burda_table1", "--out", str(out)])
    assert "burda_1l elbo k=1" in capsys.readouterr().out

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["run"] for r in rows] == [
        "burda_1l elbo k=1",
        "burda_1l iwae k=5",
        "burda_1l iwae k=5",
    ]
    assert rows[-1]["data"] == "omniglot" and rows[-1]["paper_nll"] == ""
    for row, ((model, objective, k), nll) in zip(rows, ours.items(), strict=False):
        paper = PAPERS["burda_table1"][("mnist", model, objective, k)]
        assert float(row["paper_nll"]) == paper and float(row["nll"]) == nll
        assert float(row["nll_minus_paper"]) == pytest.approx(nll - paper)
        assert row["epochs"] == "3" and row["paper_epochs"] == "3280"
        assert float(row["s_per_epoch"]) == 10.0  # the first epoch (compilation) is left out

    md = (out / "results.md").read_text()
    # The paper-layout table: one row per (data, model, k), VAE and IWAE side by side.
    # IWAE k=1 is the ELBO k=1 model: one training, shown in both columns (as in the paper)
    assert (
        "| mnist | burda_1l | 1 | 86.76 | 95.00 ± 0.25 | +8.24 | 86.76 | 95.00 ± 0.25 | +8.24 |"
        in md
    )
    assert "| mnist | burda_1l | 5 | 86.47 | not run |  | 85.54 | 93.50 ± 0.25 | +7.96 |" in md
    assert "| omniglot | burda_1l | 5 |  | not run |  |  | 104.00 ± 0.25 |  |" in md
    assert md.count("not run") == 12 - (len(ours) + 1) + 1  # + IWAE k=1; + omniglot's VAE
    assert "ours 3 epochs per cell, seed 0; the paper 3,280 epochs" in md
    for figure in ("ladder", "nll_vs_k", "active_units_vs_k"):
        assert (out / f"{figure}.png").stat().st_size > 0


def test_orderings_use_paired_errors_when_every_cell_kept_its_images(tmp_path):
    """Four cells on the same 1,000 test images: image difficulty (SD 30 nats) is shared, the
    cells differ by a constant plus small per-image noise (SD 0.5), so the paired SE of a
    difference is ~0.5 * sqrt(2) / sqrt(1000) = 0.022, while combining the cells' own SEs
    (~30 / sqrt(1000) = 0.95 each) gives ~1.3. Cells without per-image values fall back to that."""
    rng = np.random.default_rng(0)
    difficulty = rng.normal(95.0, 30.0, 1000)
    shift = {
        ("burda_1l", "elbo", 1): 0.0,
        ("burda_1l", "elbo", 5): -1.0,
        ("burda_1l", "iwae", 5): -1.5,
        ("burda_2l", "elbo", 1): -1.2,
    }
    runs = {}
    for (model, objective, k), d in shift.items():
        folder = tmp_path / f"{model}-{objective}-{k}"
        log_px = -(difficulty + d + rng.normal(0.0, 0.5, 1000))
        fake_run(folder, model, objective, k, 0.0, log_px=log_px)
        results = json.loads((folder / "results.json").read_text())  # the NLL and SE it implies
        results["test/nll"] = float(-log_px.astype(np.float32).mean(dtype=np.float64))
        results["test/nll_se"] = float(log_px.std(ddof=1) / np.sqrt(1000))
        (folder / "results.json").write_text(json.dumps(results))
        runs[(model, objective, k)] = load_run(folder)

    def per_image(cell):
        return -runs[cell]["per_example"]["log_px"].astype(np.float64)

    def table():
        return runs_table(list(runs.values()))

    order = {row["comparison"]: row for row in orderings(table(), "burda_table1")}
    assert list(order) == [
        "burda_1l k=5: IWAE − VAE",
        "burda_1l VAE: k=5 − k=1",
        "burda_1l IWAE: k=5 − k=1",  # IWAE k=1 is the ELBO k=1 model
        "VAE k=1: burda_2l − burda_1l",  # the IWAE k=1 twin of this one is not repeated
    ]  # the only ones whose cells all ran
    row = order["burda_1l k=5: IWAE − VAE"]
    diff = per_image(("burda_1l", "iwae", 5)) - per_image(("burda_1l", "elbo", 5))
    assert row["ours"] == pytest.approx(diff.mean(), abs=1e-9)
    assert row["se_images"] == pytest.approx(diff.std(ddof=1) / np.sqrt(1000), rel=1e-9)
    assert row["images"] == "paired" and row["se_images"] < 0.05
    assert row["paper"] == pytest.approx(85.54 - 86.47)
    assert row["agrees"].startswith("yes")  # -0.5 nats at ~0.03 SE: ~ -20 SE, the paper's sign
    assert order["VAE k=1: burda_2l − burda_1l"]["paper"] == pytest.approx(85.33 - 86.76)

    # Without one cell's per-image values, its comparisons combine the two SEs as independent
    # and a true 0.5-nat difference is within that noise.
    runs[("burda_1l", "iwae", 5)]["per_example"] = {}
    order = {row["comparison"]: row for row in orderings(table(), "burda_table1")}
    row = order["burda_1l k=5: IWAE − VAE"]
    se_iwae, se_vae = (runs[("burda_1l", o, 5)]["test/nll_se"] for o in ("iwae", "elbo"))
    assert row["images"] == "unpaired"
    assert row["se_images"] == pytest.approx(np.hypot(se_iwae, se_vae))
    assert row["agrees"].startswith("not settled")
    assert order["burda_1l VAE: k=5 − k=1"]["images"] == "paired"  # both of its cells have them

    # The report shows them under the paper table and writes them as CSV.
    out = tmp_path / "report"
    main(
        [str(tmp_path / f"{m}-{o}-{k}") for m, o, k in shift]
        + ["--paper", "burda_table1"]
        + ["--out", str(out)]
    )
    table = list(csv.DictReader((out / "orderings.csv").open()))
    assert [r["comparison"] for r in table] == list(order)
    assert "| burda_1l k=5: IWAE − VAE | -0.93 |" in (out / "results.md").read_text()


def test_report_without_finished_runs_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path), "--out", str(tmp_path / "report")])
    assert stopped.value.code == 2 and "no finished runs" in capsys.readouterr().err


class FakeWandbFile:
    """wandb.apis.public.File: `size` 0 for a name the run lacks (W&B's placeholder)."""

    def __init__(self, path):
        self.name, self._path = path.name, path
        self.size = path.stat().st_size if path.exists() else 0

    def download(self, root, replace=False):
        shutil.copy(self._path, Path(root) / self.name)


class FakeWandbRun:
    """The fields of wandb.apis.public.Run that the report reads, filled as the trainer fills a
    real run: config.json as the config, results.json as the summary, metrics records as history,
    the run folder's files as the run's files."""

    def __init__(self, folder, state="finished"):
        self.url = f"https://wandb.ai/me/elbo_lab/runs/{folder.name}"
        self.state = state
        self.config = json.loads((folder / "config.json").read_text())
        self.summary = json.loads((folder / "results.json").read_text())
        self._history = [json.loads(line) for line in (folder / "metrics.jsonl").open()]
        self._folder = folder

    def scan_history(self, keys):
        return [{k: r[k] for k in keys} for r in self._history if all(k in r for k in keys)]

    def files(self, names):
        return [FakeWandbFile(self._folder / name) for name in names]


class FakeWandbApi:
    def __init__(self, runs):
        self._runs = runs
        self.queries = []

    def runs(self, path, filters=None):
        self.queries.append((path, filters))
        return self._runs


def test_wandb_project_gives_the_same_table_as_the_folders(tmp_path):
    folder = tmp_path / "runs" / "iwae5"
    fake_run(folder, "burda_2l", "iwae", 5, 90.0, epochs=4)
    crashed = tmp_path / "runs" / "crashed"
    fake_run(crashed, "burda_2l", "iwae", 50, 89.0)
    api = FakeWandbApi([FakeWandbRun(folder), FakeWandbRun(crashed, state="crashed")])
    online = wandb_runs("me/elbo_lab", group="table1", api=api)
    assert api.queries == [("me/elbo_lab", {"group": "table1"})]
    assert [r["run_dir"] for r in online] == ["https://wandb.ai/me/elbo_lab/runs/iwae5"]
    from_wandb = rows(runs_table(online), "burda_table1")
    from_folder = rows(runs_table([load_run(folder)]), "burda_table1")
    assert from_wandb == from_folder and from_wandb[0]["epochs"] == 4
    assert online[0]["per_example"] == {}  # this run saved no per-image values


def test_wandb_runs_bring_their_per_image_values_for_paired_errors(tmp_path):
    rng = np.random.default_rng(1)
    difficulty = rng.normal(95.0, 30.0, 200)
    runs = []
    for objective, shift in (("elbo", 0.0), ("iwae", -0.5)):
        folder = tmp_path / objective
        fake_run(folder, "burda_1l", objective, 5, 95.0 + shift, log_px=-(difficulty + shift))
        runs.append(FakeWandbRun(folder))
    online = wandb_runs("me/elbo_lab", api=FakeWandbApi(runs))
    for run, objective in zip(online, ("elbo", "iwae"), strict=True):
        from_folder = load_run(tmp_path / objective)["per_example"]["log_px"]
        np.testing.assert_array_equal(run["per_example"]["log_px"], from_folder)
    (row,) = orderings(runs_table(online), "burda_table1")
    assert row["comparison"] == "burda_1l k=5: IWAE − VAE" and row["images"] == "paired"
    # The two cells differ by a constant on every image, up to float32 rounding of the stored
    # values (< 4e-6 nats each near 95), so the paired SE is ~1e-6 (unpaired it would be 0.35).
    assert row["se_images"] < 1e-4


def test_seeds_of_a_cell_are_grouped_with_both_standard_errors(tmp_path):
    """Three seeds per cell on the same 500 test images: training noise moves a seed's NLL by
    SD 0.3 nats on every image alike (which image-level SEs cannot see); the cell mean gets the
    SE across seeds, and the orderings are judged by it. IWAE k=1 is the ELBO k=1 model: shown
    once, its comparisons not repeated."""
    rng = np.random.default_rng(1)
    difficulty = rng.normal(95.0, 30.0, 500)
    truth = {("elbo", 1): 0.0, ("elbo", 5): -1.0, ("iwae", 5): -1.1}
    folders, means = [], {}
    for (objective, k), d in truth.items():
        offsets = rng.normal(0.0, 0.3, 3)
        for seed, o in enumerate(offsets):
            log_px = -(difficulty + d + o + rng.normal(0.0, 0.5, 500))
            nll = float(-log_px.astype(np.float32).mean(dtype=np.float64))
            folders.append(tmp_path / f"{objective}-{k}-{seed}")
            fake_run(folders[-1], "burda_1l", objective, k, nll, log_px=log_px, seed=seed)
            means.setdefault((objective, k), []).append(nll)
    fake_run(tmp_path / "iwae-1", "burda_1l", "iwae", 1, 95.0)  # a duplicate of the ELBO k=1
    runs = [load_run(f) for f in [*folders, tmp_path / "iwae-1"]]
    order = {row["comparison"]: row for row in orderings(runs_table(runs), "burda_table1")}
    row = order["burda_1l k=5: IWAE − VAE"]
    a, b = np.array(means[("iwae", 5)]), np.array(means[("elbo", 5)])
    assert row["ours"] == pytest.approx(a.mean() - b.mean(), abs=1e-9)
    se = np.hypot(a.std(ddof=1) / np.sqrt(3), b.std(ddof=1) / np.sqrt(3))
    assert row["se_seeds"] == pytest.approx(se) and row["judged_by"] == "seeds"
    assert row["seeds"] == 3 and row["se_images"] < row["se_seeds"]  # image SE misses seeds
    # k=5 − k=1 exists for VAE and (the same model at k=1) for IWAE; nothing else repeats
    assert "burda_1l IWAE: k=5 − k=1" in order and "burda_1l VAE: k=5 − k=1" in order
    assert len(order) == len({tuple(sorted(r.items())) for r in order.values()})
    out = tmp_path / "report"
    main(
        [*map(str, folders), str(tmp_path / "iwae-1"), "--paper", "burda_table1", "--out", str(out)]
    )
    md = (out / "results.md").read_text()
    m = np.mean(means[("elbo", 1)])
    assert f"| mnist | burda_1l | 1 | 86.76 | {m:.2f} ± " in md and "(3 seeds)" in md


def test_one_unreadable_run_is_skipped_with_a_warning_naming_it(tmp_path):
    good, bad, garbage = tmp_path / "good", tmp_path / "bad", tmp_path / "garbage"
    for folder in (good, bad, garbage):
        fake_run(folder, "burda_1l", "elbo", 1, 95.0)
    (bad / "results.json").write_text("{not json")
    with (garbage / "metrics.jsonl").open("a") as f:
        f.write("garbage\n{}\n")  # a bad line before the last one
    with pytest.warns(UserWarning, match="skipped") as caught:
        table = write_report([good, bad, garbage], tmp_path / "out")
    assert [row["run"] for row in table] == ["burda_1l elbo k=1"]
    messages = [str(w.message) for w in caught]
    assert any(
        f"skipped {bad}: " in m and "results.json is not readable JSON" in m for m in messages
    )
    assert any(f"skipped {garbage}: " in m and "line 4 is not JSON" in m for m in messages)


def test_cells_are_configs_but_for_the_seed_and_the_paper_refuses_two_at_one_place(tmp_path):
    """Two burda_1l IWAE k=5 runs with different learning rates are two cells, not two seeds of
    one: the seed-level table keeps them apart and the paper's layout, which has one place for
    them, says how they differ instead of averaging them."""
    for lr, seed, nll in ((1e-3, 0, 93.0), (1e-3, 1, 93.4), (3e-4, 0, 95.0)):
        folder = tmp_path / f"lr{lr}-seed{seed}"
        fake_run(folder, "burda_1l", "iwae", 5, nll, seed=seed)
        config = json.loads((folder / "config.json").read_text())
        config["optim"] = {"lr": lr}
        (folder / "config.json").write_text(json.dumps(config))
    folders = sorted(tmp_path.iterdir())
    out = tmp_path / "report"
    main([*map(str, folders), "--out", str(out)])
    cells = list(csv.DictReader((out / "cells.csv").open()))
    assert sorted((c["seeds"], float(c["nll"])) for c in cells) == [("0", 95.0), ("0,1", 93.2)]
    with pytest.raises(SystemExit) as exit_info:
        main([*map(str, folders), "--paper", "burda_table1", "--out", str(out)])
    assert exit_info.value.code == 2


def test_the_runs_table_holds_config_provenance_and_evaluator_summaries(tmp_path):
    """One tidy table: a run's flattened config, its objective's own training means (HMC's
    acceptance rate) and elbo-lab-eval's AIS numbers sit in the runs' rows; a run that was not
    evaluated has them empty."""
    hmc, plain = tmp_path / "hmc", tmp_path / "elbo"
    fake_run(hmc, "burda_1l", "hmc", 1, 94.0)
    fake_run(plain, "burda_1l", "elbo", 1, 95.0)
    config = json.loads((hmc / "config.json").read_text())
    config["objective"] = {"name": "hmc", "k": 1, "num_steps": 5, "num_leapfrog": 3}
    (hmc / "config.json").write_text(json.dumps(config))
    records = [json.loads(line) for line in (hmc / "metrics.jsonl").open()]
    records[-1]["train/accept"] = 0.8
    (hmc / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (hmc / "eval").mkdir()
    summary = {"config": {}, "ais": {"n": 100, "log_px": {"mean": -92.5, "se": 2.0}}}
    (hmc / "eval" / "test.json").write_text(json.dumps(summary))
    np.savez_compressed(hmc / "eval" / "test_per_example.npz", **{"ais/log_px": np.zeros(100)})
    run = load_run(hmc)
    assert run["config.objective.num_steps"] == 5 and run["eval/test/ais/n"] == 100
    assert run["per_example"]["eval/test/ais/log_px"].shape == (100,)
    out = tmp_path / "report"
    write_report([hmc, plain], out)
    table = {r["run"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert set(table) == {
        "burda_1l elbo k=1",
        next(t for t in table if t.startswith("burda_1l hmc")),
    }
    row = table[next(t for t in table if "hmc" in t)]
    # a run is named by the fields that differ from its objective's defaults (num_steps=5 is one)
    assert "num_leapfrog=3" in row["run"] and "num_steps" not in row["run"]
    assert float(row["train_accept"]) == 0.8 and float(row["ais_nll"]) == 92.5
    assert table["burda_1l elbo k=1"]["ais_nll"] == ""
    full = list(csv.DictReader((out / "runs.csv").open()))
    assert {"config.optim.lr", "eval/test/ais/log_px/mean", "code", "cell"} <= set(full[0])
    assert (out / "validation.png").stat().st_size > 0


def test_pooled_seed_sd_sums_squares_over_cells_and_skips_single_seeds():
    table = pd.DataFrame(
        {
            "cell": ["a", "a", "b", "b", "b", "c"],
            "v": [1.0, 3.0, 2.0, 4.0, 6.0, 100.0],  # "c" has one seed: no spread to pool
        }
    )
    sd, df = pooled_seed_sd(table, "v")
    assert df == 3  # (2 - 1) + (3 - 1)
    assert sd == pytest.approx(np.sqrt((2.0 + 8.0) / 3))  # squared deviations: 1+1, 4+0+4
    sd, df = pooled_seed_sd(table[table["cell"] == "c"], "v")
    assert np.isnan(sd) and df == 0
