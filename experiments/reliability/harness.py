# ruff: noqa: E501  (the corpus is a table, one case per line)
"""Fault injection: kill runs and sweeps at random moments and feed the commands bad inputs.

    python experiments/reliability/harness.py --kills 100 --out experiments/reliability/results.json
    python experiments/reliability/harness.py --quick   # 3 kills, 12 bad inputs (the slow test)

Kills: each trial starts a short training (mnist_small, the shipped data) or a two-job sweep,
SIGKILLs it at a uniformly random moment of a never-killed run's duration (start-up, epochs,
checkpoint writes, the metrics rewrite on resume, the test evaluation, shutdown), possibly
several times, then runs the same command to the end. It counts a trial as an identical resume
when every metrics.jsonl row but the timings equals the never-killed run's, and checks that no
row is lost or duplicated (in metrics.jsonl and, with W&B offline, in the W&B record read back),
that no readable checkpoint was put aside, and that every resume restored the newest checkpoint
that had been committed when the process died.

Bad inputs: a corpus of commands with a wrong config, missing or corrupt data, damaged run
folders and file-system faults; each must exit with its expected code (2 for an error), print no
traceback, say what is wrong (an expected phrase), and leave the run folder it touched unchanged
unless the case says otherwise. Read-only and full disks need a tmpfs mount (root); without it
those cases are reported as not run.

Prints the counts and writes them as JSON.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
FAST = [
    "batch_size=100",
    "eval.val_ks=[1,5]",
    "eval.test_examples=50",
    "eval.figures=false",
    "progress=false",
    "logger=none",
]
TIMING = ("train/seconds_per_epoch", "train/examples_per_s")


def env() -> dict:
    out = {k: v for k, v in os.environ.items() if k not in ("ELBO_LAB_DATA", "WANDB_API_KEY")}
    return {**out, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}


def cli(*args: str, cwd: Path, prog: str = "elbo-lab", timeout: int = 1800):
    """Run a console script; one that outlives `timeout` seconds is killed and reported as a
    failed command (exit -9), not as a crash of the harness (a busy machine can be slow)."""
    command = [str(BIN / prog), *args]
    try:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env()
        )
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(
            command, -9, e.stdout or "", f"timed out after {timeout} s"
        )


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("**/config.json") if "eval" not in p.parts)


def rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [
        {k: v for k, v in json.loads(line).items() if k not in TIMING}
        for line in lines
        if line.strip()
    ]


def sessions(run_dir: Path) -> int:
    """How many sessions provenance.json records for a run folder (0 if none)."""
    path = run_dir / "provenance.json"
    return len(json.loads(path.read_text())["sessions"]) if path.exists() else 0


def committed_epochs(run_dir: Path) -> list[int]:
    """The checkpoints orbax finished (a folder named by its epoch, with its commit marker)."""
    found = []
    for p in (run_dir / "checkpoints").glob("*"):
        if p.name.isdigit() and (p / "commit_success.txt").exists():
            found.append(int(p.name))
    return sorted(found)


def readable(checkpoint: Path) -> bool:
    """Whether a checkpoint put aside reads (a good one put aside would be a loss)."""
    code = (
        "import sys, orbax.checkpoint as ocp\n"
        "from pathlib import Path\n"
        "p = Path(sys.argv[1])\n"
        "m = ocp.CheckpointManager(p.parent)\n"
        "a = ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore())\n"
        "m.restore(int(p.name), args=a)\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / checkpoint.name.split("-")[0]
        shutil.copytree(checkpoint, target)
        r = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True)
    return r.returncode == 0


def wandb_steps(run_dir: Path) -> list[int] | None:
    """The steps of the history rows of the run's (one) offline W&B folder, or None."""
    logs = list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    if len(logs) != 1:
        return None
    out = subprocess.run(
        [str(BIN / "wandb"), "leet", "inspect", "--json", str(logs[0])],
        capture_output=True,
        text=True,
        env=env(),
    )
    records = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return [r["history"]["item"]["_step"] for r in records if r.get("type") == "history"]


# ----------------------------------------------------------------------------- kills


@dataclass
class Scenario:
    name: str
    args: list[str]
    wandb: bool = False


SCENARIOS = [
    Scenario("run", ["optim.epochs=3", "eval.ks=[1,10]", *FAST]),
    Scenario("run, list override, W&B offline", [
        "optim.epochs=3", "eval.ks=[1,5,10]", *FAST, "logger=wandb"], wandb=True),
    Scenario("run, no list override", ["optim.epochs=3", *FAST, "eval.test_examples=20"]),
    Scenario("sweep of two", ["-m", "objective=elbo,iwae", "optim.epochs=2", "eval.ks=[1,10]", *FAST]),
]  # fmt: skip


@dataclass
class KillCounts:
    trials: int = 0
    kills: int = 0
    identical: int = 0
    lost_rows: int = 0
    duplicated_rows: int = 0
    wandb_checked: int = 0
    wandb_wrong: int = 0
    good_checkpoints_put_aside: int = 0
    unreadable_put_aside: int = 0
    resumes_checked: int = 0
    resumes_not_restoring: int = 0
    failures: list[str] = field(default_factory=list)


def reference(scenario: Scenario, work: Path) -> tuple[dict[str, list[dict]], float]:
    root = work / "reference" / "".join(c if c.isalnum() else "_" for c in scenario.name)
    start = time.time()
    r = cli(*scenario.args, f"out_root={root}", cwd=work)
    if r.returncode != 0:
        raise SystemExit(f"reference run of {scenario.name!r} failed:\n{r.stderr[-2000:]}")
    return {d.name: rows(d) for d in run_dirs(root)}, time.time() - start


def kill_trial(scenario, ref, duration, work, rng, counts: KillCounts, trial: int) -> None:
    root = work / "killed" / f"{trial}"
    args = [*scenario.args, f"out_root={root}"]
    kills = rng.choice([1, 1, 2, 3])
    for _ in range(kills):
        proc = subprocess.Popen(
            [str(BIN / "elbo-lab"), *args],
            cwd=work,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            proc.wait(timeout=rng.uniform(0.05, 1.0) * duration)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            counts.kills += 1
        committed = {d.name: committed_epochs(d) for d in run_dirs(root)}
    sessions_before = {d.name: sessions(d) for d in run_dirs(root)}
    r = cli(*args, cwd=work)
    counts.trials += 1
    if r.returncode != 0:
        tail = r.stderr.strip().splitlines()[-3:]
        counts.failures.append(
            f"trial {trial} ({scenario.name}): rerun exit {r.returncode}: {' | '.join(tail)}"
        )
        return
    got = {d.name: rows(d) for d in run_dirs(root)}
    if got == ref:
        counts.identical += 1
    else:
        counts.failures.append(f"trial {trial} ({scenario.name}): rows differ")
    for name, want in ref.items():
        have = got.get(name, [])
        counts.lost_rows += sum(1 for w in want if w not in have)
        counts.duplicated_rows += len(have) - len({json.dumps(h, sort_keys=True) for h in have})
    for d in run_dirs(root):
        for aside in (d / "checkpoints_unreadable").glob("*"):
            if readable(aside):
                counts.good_checkpoints_put_aside += 1
                counts.failures.append(f"trial {trial}: readable checkpoint put aside: {aside}")
            else:
                counts.unreadable_put_aside += 1
        after = json.loads((d / "provenance.json").read_text())["sessions"]
        # the final command's session, if it worked on this folder (a finished one is served)
        if committed.get(d.name) and len(after) > sessions_before.get(d.name, 0):
            counts.resumes_checked += 1
            readable_epochs = [
                e for e in committed[d.name] if (d / "checkpoints" / str(e)).exists()
            ]
            want_epoch = max(readable_epochs, default=None)
            if want_epoch is not None and after[-1].get("resumed_from_epoch") != want_epoch:
                last = after[-1].get("resumed_from_epoch")
                if last is None or last < want_epoch:
                    counts.resumes_not_restoring += 1
                    counts.failures.append(
                        f"trial {trial}: resumed from {last}, epoch {want_epoch} was committed"
                    )
        if scenario.wandb:
            steps = wandb_steps(d)
            counts.wandb_checked += 1
            want_steps = sorted({r["step"] for r in ref[d.name]})
            if steps != want_steps:
                counts.wandb_wrong += 1
                counts.failures.append(f"trial {trial}: W&B steps {steps} != {want_steps}")


def kill_campaign(
    n_kills: int, work: Path, seed: int, scenarios: list[Scenario], deadline: float, report
) -> KillCounts:
    """Trials until `n_kills` kills (or the `deadline`, a time.time()); `report(counts)` after
    each trial, so a stopped campaign keeps its counts."""
    rng = random.Random(seed)
    counts = KillCounts()
    refs = {s.name: reference(s, work) for s in scenarios}
    trial = 0
    while counts.kills < n_kills and time.time() < deadline:
        scenario = scenarios[trial % len(scenarios)]
        ref, duration = refs[scenario.name]
        kill_trial(scenario, ref, duration, work, rng, counts, trial)
        print(f"  trial {trial}: {counts.kills} kills so far, {len(counts.failures)} failures")
        report(counts)
        trial += 1
    return counts


# ------------------------------------------------------------------------- bad inputs


@dataclass
class Case:
    name: str
    args: list[str]
    expect: str  # a phrase the message must contain
    code: int = 2
    prog: str = "elbo-lab"
    setup: object = None  # callable(case_dir, base_run) -> dict of extra format fields
    touches: str | None = None  # a run folder (relative to the case folder) left unchanged
    needs_mount: bool = False


def folder_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        # provenance records every session; config.json is rewritten with keys that do not
        # change results (out_root), so it must only stay readable
        skip = ("cli.log", ".lock", "provenance.json", "config.json")
        if p.is_file() and ".hydra" not in p.parts and p.name not in skip:
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    if (folder / "config.json").exists():
        try:
            json.loads((folder / "config.json").read_text())
        except ValueError:
            h.update(b"config.json unreadable")
    return h.hexdigest()


def copy_run(base: Path, case_dir: Path) -> Path:
    """A copy of the finished base run under the same Hydra name, so its command finds it."""
    target = case_dir / "runs" / base.parent.name / base.name
    shutil.copytree(base, target)
    return target


def damage(how):
    """setup: copy the base run, then apply `how(run_folder)`."""

    def setup(case_dir: Path, base: Path) -> dict:
        run = copy_run(base, case_dir)
        how(run)
        return {}

    return setup


def write(relpath: str, text: str | bytes):
    def how(run: Path) -> None:
        p = run / relpath
        p.write_bytes(text if isinstance(text, bytes) else text.encode())

    return how


def remove(relpath: str):
    def how(run: Path) -> None:
        p = run / relpath
        shutil.rmtree(p) if p.is_dir() else p.unlink()

    return how


def unfinish(run: Path) -> None:
    (run / "done.json").unlink()
    (run / "results.json").unlink()


def newest_checkpoint_corrupt(run: Path) -> None:
    unfinish(run)
    newest = max(committed_epochs(run))
    for p in (run / "checkpoints" / str(newest)).rglob("*"):
        if p.is_file() and p.parent.name == "d":
            p.write_bytes(b"\0" * 16)


def narrower(case_dir: Path, base: Path) -> dict:
    """The unfinished base run (200-unit layers) where the command for 100-unit layers looks."""
    run = copy_run(base, case_dir)
    unfinish(run)
    name = run.name.replace("optim.epochs=", "model.hidden_dims=((100,100)),optim.epochs=")
    run.rename(run.with_name(name))
    return {}


def data_files(case_dir: Path, base: Path) -> dict:
    (case_dir / "empty").mkdir()
    (case_dir / "mnist_bad" / "mnist").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        for split in (name, name.replace("train", "t10k")):
            (case_dir / "mnist_bad" / "mnist" / f"{split}.gz").write_bytes(b"not gzip")
    (case_dir / "not.npz").write_text("hello")
    import numpy as np

    np.savez(case_dir / "nan.npz", train=np.full((10, 4), np.nan))
    np.savez(case_dir / "big.npz", train=np.full((10, 4), 3.0), test=np.zeros((5, 4)))
    np.savez(case_dir / "nokey.npz", images=np.zeros((10, 4)))
    (case_dir / "a_file").write_text("x")
    (case_dir / "mnist_dirs" / "mnist" / "train-images-idx3-ubyte.gz").mkdir(parents=True)
    with gzip.open(case_dir / "tiny.gz", "wb") as f:
        f.write(b"x")
    return {}


def held_lock(case_dir: Path, base: Path) -> dict:
    run = copy_run(base, case_dir)
    unfinish(run)
    f = (run / ".lock").open("w")
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return {"_keep": f}


def tmpfs(case_dir: Path, size: str, readonly: bool) -> bool:
    mount = case_dir / "mnt"
    mount.mkdir()
    opts = f"size={size}" + (",ro" if readonly else "")
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mount)]).returncode == 0


def corpus() -> list[Case]:
    C = Case
    cases = [
        C("k zero", ["objective.k=0"], "objective.k must be a positive"),
        C("k negative", ["objective.k=-5"], "objective.k must be a positive"),
        C("k not a number", ["objective.k=abc"], "'abc'"),
        C("lr negative", ["optim.lr=-0.1"], "optim.lr must be positive"),
        C("lr zero", ["optim.lr=0"], "optim.lr must be positive"),
        C("batch_size zero", ["batch_size=0"], "batch_size"),
        C("batch_size text", ["batch_size=zero"], "batch_size"),
        C("batch_size above the training set", ["batch_size=100000"], "exceeds the"),
        C("negative seed", ["seed=-1"], "seed"),
        C("unknown model", ["model=burda_3l"], "burda_1l"),
        C("unknown objective", ["objective=vae"], "elbo"),
        C("unknown data option", ["data=cifar"], "mnist"),
        C("unknown data name", ["data.name=cifar"], "unknown data 'cifar'"),
        C("misspelt field", ["objective=iwae", "objective.kk=5"], "did you mean 'k'"),
        C("field of another objective", ["objective=iwae", "+objective.num_steps=3"], "no field"),
        C("ladder K not dividing", ["eval.ks=[1,3,50]"], "every K must divide the largest"),
        C("ladder K text", ["eval.ks=abc"], "expected a list"),
        C("ladder empty", ["eval.ks=[]"], "eval.ks"),
        C("sweep with a bad value", ["-m", "objective.k=1,abc"], "'abc'"),
        C("unknown likelihood", ["likelihood=poisson"], "bernoulli"),
        C("linear_gaussian with bernoulli", ["model=linear_gaussian"], "likelihood=gaussian"),
        C("hmc zero steps", ["objective=hmc", "objective.num_steps=0"], "num_steps"),
        C("hmc negative step size", ["objective=hmc", "objective.step_size=-1"], "step_size"),
        C("hmc zero leapfrog", ["objective=hmc", "objective.num_leapfrog=0"], "num_leapfrog"),
        C("hmc unknown encoder", ["objective=hmc", "objective.encoder=foo"], "encoder"),
        C("zero epochs", ["optim.epochs=0"], "epochs"),
        C("unknown optimizer", ["optim=foo"], "adam"),
        C("unknown binarization", ["data.binarize=maybe"], "dynamic"),
        C("negative val_every", ["eval.val_every=-1"], "val_every"),
        C("zero test examples", ["eval.test_examples=0"], "test_examples"),
        C("zero steps per dispatch", ["steps_per_dispatch=0"], "steps_per_dispatch"),
        C("zero checkpoint_every", ["checkpoint_every=0"], "checkpoint_every"),
        C("plugin that does not import", ["plugins=[no_such_module_xyz]"], "no_such_module_xyz"),
        C("unknown logger", ["logger=foo"], "wandb"),
        C("unknown W&B mode", ["logger.mode=sometimes"], "offline"),
        C("unknown experiment", ["experiment=nope"], "burda_table1"),
        C("unknown key", ["foo=1"], "foo"),
        C("zero latent units", ["model=mlp", "model.latent_dims=[0]"], "latent_dims"),
        C("layers mismatch", ["model=mlp", "model.hidden_dims=[[200],[100]]"], "hidden_dims"),
        C("gaussian std unknown", ["likelihood=gaussian", "likelihood.std=weird"], "std"),
        C("online W&B without login", ["logger=wandb", "logger.mode=online", *FAST[:-1], "optim.epochs=1"], "wandb login"),
        C("mnist offline, missing", ["data=mnist", "data.download=false", "data.root={case}/empty"], "train-images-idx3-ubyte.gz", setup=data_files),
        C("mnist corrupt files", ["data=mnist", "data.download=false", "data.root={case}/mnist_bad"], "not a valid gzip", setup=data_files),
        C("mnist unreachable mirror", ["data=mnist", "data.root={case}/empty", "data.mirror=http://127.0.0.1:9/"], "downloading http://127.0.0.1:9/", setup=data_files),
        C("binarized_mnist missing", ["data=binarized_mnist", "data.download=false", "data.root={case}/empty"], "amat", setup=data_files),
        C("omniglot missing", ["data=omniglot", "data.download=false", "data.root={case}/empty"], "chardata", setup=data_files),
        C("data root is a file", ["data=mnist", "data.download=false", "data.root={case}/a_file"], "is a file, not a folder", setup=data_files),
        C("data file is a folder", ["data=mnist", "data.download=false", "data.root={case}/mnist_dirs"], "is a folder", setup=data_files),
        C("npz missing", ["data=npz", "data.path={case}/missing.npz"], "does not exist", setup=data_files),
        C("npz not an npz", ["data=npz", "data.path={case}/not.npz"], "is not a readable .npz", setup=data_files),
        C("npz with NaN", ["data=npz", "data.path={case}/nan.npz", "likelihood=gaussian"], "non-finite", setup=data_files),
        C("npz not 0/1 for bernoulli", ["data=npz", "data.path={case}/big.npz"], "values other than 0 and 1", setup=data_files),
        C("npz without train", ["data=npz", "data.path={case}/nokey.npz"], "train", setup=data_files),
        C("image folder empty", ["data=image_folder", "data.path={case}/empty"], "holds no images", setup=data_files),
        # run folders (a copy of a finished 2-epoch run, re-run with its own command)
        C("config drift", [], "holds a run with another config", setup=damage(lambda r: write("config.json", (r / "config.json").read_text().replace('"lr": 0.001', '"lr": 0.003'))(r)), touches="RUN"),
        C("template mismatch", ["model.hidden_dims=[[100,100]]", "allow_changes=true"], "does not match", setup=narrower),
        C("newest checkpoint corrupt", [], "test ladder", code=0, setup=damage(newest_checkpoint_corrupt)),
        C("half-written last metrics line", [], "test ladder", code=0, setup=damage(lambda r: (unfinish(r), (r / "metrics.jsonl").open("a").write('{"epoch": 3, "tr')))),
        C("garbage metrics line", [], "line", setup=damage(lambda r: (unfinish(r), (r / "metrics.jsonl").write_text("garbage\n" + (r / "metrics.jsonl").read_text()))), touches="RUN"),
        C("done.json without results.json", [], "test ladder", code=0, setup=damage(remove("results.json"))),
        C("malformed config.json", [], "config.json", setup=damage(write("config.json", "{not json")), touches="RUN"),
        C("malformed provenance.json", [], "provenance.json", setup=damage(write("provenance.json", "{not")), touches="RUN"),
        C("run folder locked by another process", [], "another process", setup=held_lock, touches="RUN"),
        C("finished by other code", [], "other code", setup=damage(lambda r: write("provenance.json", (r / "provenance.json").read_text().replace('"code_hash": "', '"code_hash": "0'))(r)), touches="RUN"),
        C("eval: no such folder", ["run_dir={case}/nope"], "is not a folder", prog="elbo-lab-eval"),
        C("eval: missing epoch", ["run_dir='RUN'", "epoch=7"], "available", prog="elbo-lab-eval", setup=damage(lambda r: None), touches="RUN"),
        C("eval: malformed config.json", ["run_dir='RUN'"], "config.json", prog="elbo-lab-eval", setup=damage(write("config.json", "{not json")), touches="RUN"),
        C("eval: no checkpoints", ["run_dir='RUN'"], "checkpoint", prog="elbo-lab-eval", setup=damage(remove("checkpoints")), touches="RUN"),
        C("eval: unknown evaluator", ["run_dir='RUN'", "evaluators=[nope]"], "ladder", prog="elbo-lab-eval", setup=damage(lambda r: None), touches="RUN"),
        C("report: no finished runs", ["{case}", "--out", "{case}/rep"], "no finished runs", prog="elbo-lab-report"),
        C("report: malformed results.json", ["RUN", "--out", "{case}/rep"], "skipped", code=2, prog="elbo-lab-report", setup=damage(write("results.json", "{not"))),
        C("read-only out_root", ["out_root={case}/mnt/runs"], "read-only", setup=lambda c, b: {"_mounted": tmpfs(c, "1m", True)}, needs_mount=True),
        C("disk full during a checkpoint", ["out_root={case}/mnt/runs", "optim.epochs=1"], "no space left", setup=lambda c, b: {"_mounted": tmpfs(c, "300k", False)}, needs_mount=True),
        C("report: read-only output", ["RUN", "--out", "{case}/mnt/rep"], "cannot write the report", prog="elbo-lab-report", setup=lambda c, b: (copy_run(b, c), {"_mounted": tmpfs(c, "1m", True)})[1], needs_mount=True),
    ]  # fmt: skip
    return cases


def run_case(case: Case, base: Path, work: Path, index: int) -> tuple[str, str]:
    """(verdict, detail): verdict is "handled", "FAILED" or "not run"."""
    case_dir = work / "cases" / f"{index:02d}"
    case_dir.mkdir(parents=True)
    extra = case.setup(case_dir, base) if case.setup else {}
    if case.needs_mount and not extra.get("_mounted"):
        return "not run", "needs a tmpfs mount (root)"
    run = case_dir / "runs" / base.parent.name / base.name
    args = [a.replace("{case}", str(case_dir)).replace("RUN", str(run)) for a in case.args]
    if case.prog == "elbo-lab" and not any(a.startswith("out_root=") for a in args):
        args = [*BASE_ARGS, *args, f"out_root={case_dir / 'runs'}"]
    before = folder_hash(run) if case.touches and run.exists() else None
    try:
        r = cli(*args, cwd=case_dir, prog=case.prog, timeout=900)
    finally:
        if extra.get("_mounted"):
            subprocess.run(["umount", str(case_dir / "mnt")])
    out = r.stderr + r.stdout
    problems = []
    if r.returncode != case.code:
        problems.append(f"exit {r.returncode}, expected {case.code}")
    if "Traceback" in out:
        problems.append("traceback")
    if case.expect.lower() not in out.lower():
        problems.append(f"no {case.expect!r} in the message")
    if before is not None and folder_hash(run) != before:
        problems.append("the run folder changed")
    message = next((line for line in r.stderr.splitlines() if "error" in line.lower()), "")
    return ("FAILED" if problems else "handled"), "; ".join(problems) or message[:200]


BASE_ARGS = ["optim.epochs=2", "eval.ks=[1,10]", *FAST]


def bad_input_campaign(work: Path, only: int | None, names: list[str] | None = None) -> dict:
    base_root = work / "base"
    r = cli(*BASE_ARGS, f"out_root={base_root}", cwd=work)
    if r.returncode != 0:
        raise SystemExit(f"the base run failed:\n{r.stderr[-2000:]}")
    (base,) = run_dirs(base_root)
    cases = corpus()[:only] if only else corpus()
    cases = [c for c in cases if not names or c.name in names]
    verdicts = []
    for i, case in enumerate(cases):
        verdict, detail = run_case(case, base, work, i)
        verdicts.append({"case": case.name, "verdict": verdict, "detail": detail})
        print(f"  {verdict:8} {case.name}: {detail}")
    return {
        "cases": len(verdicts),
        "handled": sum(v["verdict"] == "handled" for v in verdicts),
        "failed": sum(v["verdict"] == "FAILED" for v in verdicts),
        "not_run": sum(v["verdict"] == "not run" for v in verdicts),
        "verdicts": verdicts,
    }


def code_version() -> str:
    """The git commit the harness runs (with "+dirty" for uncommitted changes), or "unknown"."""
    repo = Path(__file__).resolve().parents[2]
    git = ["git", "-C", str(repo)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run([*git, "status", "--porcelain", "src", "configs"], capture_output=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=100, help="SIGKILLs to deliver in all")
    p.add_argument(
        "--quick", action="store_true", help="3 kills (W&B run, sweep) and 12 bad inputs"
    )
    p.add_argument("--skip-kills", action="store_true")
    p.add_argument("--skip-inputs", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    p.add_argument("--out", type=Path, help="write the counts here as JSON")
    p.add_argument("--minutes", type=float, help="stop starting kill trials after this long")
    p.add_argument("--case", action="append", help="only the bad input of this name (repeatable)")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="elbo_lab_faults_"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "quick": args.quick}
    result["command"] = " ".join(
        ["python", "experiments/reliability/harness.py", *(argv or sys.argv[1:])]
    )
    result["code"] = code_version()

    def save(counts: KillCounts | None = None) -> None:
        if counts is not None:
            result["kills"] = counts.__dict__
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1) + "\n")

    if not args.skip_kills:
        print("kills:")
        scenarios = [SCENARIOS[1], SCENARIOS[3]] if args.quick else SCENARIOS
        deadline = time.time() + 60 * args.minutes if args.minutes else float("inf")
        n_kills = 3 if args.quick else args.kills
        kill_campaign(n_kills, work, args.seed, scenarios, deadline, save)
    if not args.skip_inputs:
        print("bad inputs:")
        result["bad_inputs"] = bad_input_campaign(work, 12 if args.quick else None, args.case)
    result["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    summary = {k: v for k, v in result.get("kills", {}).items() if k != "failures"}
    print("kills:", json.dumps(summary))
    if "bad_inputs" in result:
        b = result["bad_inputs"]
        print(f"bad inputs: {b['handled']} of {b['cases']} handled, {b['failed']} failed, "
              f"{b['not_run']} not run")  # fmt: skip
    save()
    return result


if __name__ == "__main__":
    main()
