"""A user's own data: `data=npz` and `data=image_folder`, their rules, and a clear DataError
(naming the file and the problem) for every bad input; then training on an .npz end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import elbo_lab
from PIL import Image

from elbo_lab import data
from elbo_lab.errors import ConfigError, DataError
from elbo_lab.likelihoods.bernoulli import BernoulliLikelihood


def npz(tmp_path, **arrays):
    path = tmp_path / "my.npz"
    np.savez(path, **arrays)
    return str(path)


def test_npz_keys_shapes_and_split_rule(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (100, 6, 5), dtype=np.uint8)
    s = data.load("npz", path=npz(tmp_path, train=x), valid_fraction=0.1, test_fraction=0.2)
    assert s.event_shape == (6, 5, 1) and not s.dynamic
    assert (len(s.train), len(s.valid), len(s.test)) == (72, 8, 20)  # test: last 20, valid: 8
    np.testing.assert_array_equal(s.test, x[80:].reshape(20, -1) / np.float32(255))
    np.testing.assert_array_equal(s.valid, x[72:80].reshape(8, -1) / np.float32(255))
    given = data.load("npz", path=npz(tmp_path, train=x, test=x[:7].astype(np.float32) / 255))
    assert len(given.test) == 7 and len(given.train) + len(given.valid) == 100
    vec = data.load("npz", path=npz(tmp_path, train=np.zeros((50, 3)), valid=np.ones((4, 3))))
    assert vec.event_shape == (3,) and len(vec.valid) == 4


def test_npz_binarize_options(tmp_path):
    x = np.full((40, 4), 0.5, np.float32)
    dyn = data.load("npz", path=npz(tmp_path, train=x), binarize="dynamic")
    assert dyn.dynamic and (dyn.train == 0.5).all() and set(np.unique(dyn.test)) <= {0.0, 1.0}
    once = data.load("npz", path=npz(tmp_path, train=x), binarize="once")
    assert not once.dynamic and set(np.unique(once.train)) <= {0.0, 1.0}


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((5, 3))}, "has no array 'train' (it holds x)"),
        ({"train": np.zeros((5,))}, "has shape (5,) (rank 1)"),
        ({"train": np.zeros((0, 3))}, "is empty"),
        ({"train": np.array([[1, 2]], np.int64)}, "has dtype int64"),
        ({"train": np.array([[np.nan, 1.0]] * 20)}, "non-finite values"),
        ({"train": np.zeros((20, 3)), "test": np.zeros((4, 2))}, "differ in shape"),
        ({"train": np.zeros((2, 3))}, "cannot give the missing splits"),
    ],
)
def test_bad_npz_files_are_data_errors_naming_the_problem(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.load("npz", path=npz(tmp_path, **arrays))


def test_npz_path_problems(tmp_path):
    with pytest.raises(ConfigError, match="data=npz needs data.path"):
        data.load("npz")
    with pytest.raises(DataError, match="does not exist"):
        data.load("npz", path=str(tmp_path / "none.npz"))
    with pytest.raises(DataError, match="is a folder"):
        data.load("npz", path=str(tmp_path))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz is not a readable .npz file"):
        data.load("npz", path=str(tmp_path / "junk.npz"))
    x = np.full((40, 4), 2.0, np.float32)
    with pytest.raises(DataError, match=r"values in \[2, 2\]; binarize=dynamic needs"):
        data.load("npz", path=npz(tmp_path, train=x), binarize="dynamic")


def test_bernoulli_likelihood_refuses_data_that_is_not_binary():
    BernoulliLikelihood().check_data(np.array([[0.0, 1.0]]), "ok")
    with pytest.raises(DataError, match="values other than 0 and 1.*data.binarize=dynamic"):
        BernoulliLikelihood().check_data(np.array([[0.0, 0.5]]), "my.npz: train")


def save_images(folder, n, size=(8, 6), mode="L", seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + (() if mode == "L" else (3,))
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")


def test_image_folder_layouts_channels_and_resize(tmp_path):
    save_images(tmp_path / "a" / "train" / "cats", 12)
    save_images(tmp_path / "a" / "test", 3, seed=1)
    s = data.load("image_folder", path=str(tmp_path / "a"), valid_fraction=0.25)
    assert s.event_shape == (6, 8, 1) and (len(s.train), len(s.valid), len(s.test)) == (9, 3, 3)
    save_images(tmp_path / "b", 10, mode="RGB")
    rgb = data.load("image_folder", path=str(tmp_path / "b"), channels=3, size=[4, 4])
    assert rgb.event_shape == (4, 4, 3)
    grey = data.load("image_folder", path=str(tmp_path / "b"), channels=1)
    assert grey.event_shape == (6, 8, 1) and 0 <= grey.train.min() <= grey.train.max() <= 1


def test_bad_image_folders_are_data_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        data.load("image_folder", path=str(tmp_path / "empty"))
    save_images(tmp_path / "mixed", 3)
    save_images(tmp_path / "mixed" / "big", 1, size=(10, 10))
    with pytest.raises(DataError, match=r"give data.size=\[height,width\]"):
        data.load("image_folder", path=str(tmp_path / "mixed"))
    save_images(tmp_path / "broken", 3)
    (tmp_path / "broken" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png is not a readable image"):
        data.load("image_folder", path=str(tmp_path / "broken"))
    with pytest.raises(DataError, match="does not exist"):
        data.load("image_folder", path=str(tmp_path / "nowhere"))


@pytest.mark.slow
def test_cli_trains_and_evaluates_on_a_users_npz_with_a_gaussian_likelihood(tmp_path):
    """As the README tells a new user: `elbo-lab data=npz data.path=my.npz likelihood=gaussian`."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2)) @ rng.normal(size=(2, 10)) + 0.2 * rng.normal(size=(400, 10))
    path = npz(tmp_path, train=x.astype(np.float32))
    args = ["data=npz", f"data.path={path}", "likelihood=gaussian", "model=mlp"]
    args += ["model.latent_dims=[2]", "model.hidden_dims=[[32]]", "optim.epochs=3"]
    args += ["eval.ks=[1,10]", "eval.val_ks=[1,5]", "progress=false", "logger=none"]
    r = elbo_lab(*args, f"out_root={tmp_path}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    [folder] = (tmp_path / "default").iterdir()
    results = json.loads((folder / "results.json").read_text())
    assert results["test/n_examples"] == 40 and np.isfinite(results["test/nll"])
    assert results["test/elbo"] <= results["test/iwae_10"] + 0.5
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["likelihood"] == {"name": "gaussian", "std": "shared", "init_std": 1.0}
    # the default Bernoulli likelihood refuses continuous data at start-up, with the fix
    bad = elbo_lab("data=npz", f"data.path={path}", f"out_root={tmp_path}/b", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "likelihood=gaussian" in bad.stderr and not (tmp_path / "b").exists()
