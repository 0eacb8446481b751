"""Extension from outside the package, as a user would: a module of their own (tests/plugins/
mylab/, one file per component) registers an objective, a model, a dataset and an evaluator, and
the console scripts train and evaluate with them; no file of src/ knows them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import env

PLUGINS = Path(__file__).parent / "plugins"
QUICK = ["optim.epochs=2", "batch_size=40", "eval.ks=[1,10]", "eval.val_ks=[1,5]"]
QUICK += ["eval.figures=false", "progress=false", "logger=none"]


def run(script, *args, cwd):
    e = {**env(), "PYTHONPATH": os.pathsep.join([str(PLUGINS), env().get("PYTHONPATH", "")])}
    exe = Path(sys.executable).with_name(script)
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, env=e)


@pytest.mark.slow
def test_components_registered_from_a_users_module_train_and_evaluate(tmp_path):
    plugins = "plugins=[mylab.objective,mylab.model,mylab.dataset,mylab.evaluator]"
    args = [plugins, "objective=beta_vae", "objective.beta=0.5", "model=linear_vae"]
    args += ["model.latent_dim=3", "data=plane", "likelihood=gaussian", *QUICK]
    r = run("elbo-lab", *args, f"out_root={tmp_path}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    [folder] = (tmp_path / "default").iterdir()
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["objective"] == {"name": "beta_vae", "beta": 0.5, "k": 1}
    assert cfg["model"] == {"name": "linear_vae", "latent_dim": 3}
    results = json.loads((folder / "results.json").read_text())
    assert np.isfinite(results["test/nll"]) and results["test/n_examples"] == 60
    # the evaluator of the same module, run after the built-in ladder on the trained run
    r = run(
        "elbo-lab-eval",
        f"run_dir='{folder}'",
        "plugins=[mylab.evaluator]",
        "+evaluator@recon=recon",
        "recon.k=4",
        "evaluators=[ladder,recon]",
        "ladder.ks=[1,10]",
        "logger=none",
        "progress=false",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads((folder / "eval" / "test.json").read_text())
    assert out["recon"]["n"] == 60 and np.isfinite(out["recon"]["recon"]["mean"])
    with np.load(folder / "eval" / "test_per_example.npz") as f:
        assert f["recon/recon"].shape == (60,) and f["ladder/iwae_10"].shape == (60,)
    assert "E_q log p(x|z)" in (folder / "eval" / "test.md").read_text()


def test_an_unknown_plugin_module_is_a_clear_error(tmp_path):
    r = run("elbo-lab", "plugins=[mylab.nothing]", f"out_root={tmp_path}", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "plugin module 'mylab.nothing' could not be imported" in r.stderr
