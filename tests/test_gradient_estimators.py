"""Every registered objective and gradient estimator against the exact linear-Gaussian model.

Parametrised over the objective registry (a new entry inherits these tests): each entry is built
with its defaults but small sample counts, once per estimator it offers (`estimators`). Exact
answers: log p(x) and p(z | x) in closed form (models/linear_gaussian.py), and d log p(x) / d
theta by autodiff of the closed form. Tolerances are Monte Carlo errors: "4.5 SE" over R
independent keys (a false failure has probability < 1e-5 per comparison, < 1e-3 over the ~24
parameters compared at once), plus a float32 allowance where stated.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_objectives import X_DIM, data, orthogonal_model

from elbo_lab import bounds
from elbo_lab.errors import ConfigError
from elbo_lab.models.mlp import DeepLatentGaussian
from elbo_lab.objectives import REGISTRY
from elbo_lab.objectives.gradients import path_log_weights, softmax_weights

SMALL = {"k": 5, "m": 2, "num_steps": 2, "num_leapfrog": 3}  # sample counts kept small
BOUNDS = ("elbo", "iwae", "renyi", "miwae", "ciwae")  # metrics that are bounds on log p(x)


def cases():
    """(name, entry) for every registered objective and every estimator it offers."""
    out = []
    for name in REGISTRY.names():
        cls = REGISTRY.get(name)
        fields = {f.name for f in dataclasses.fields(cls)}
        small = {f: v for f, v in SMALL.items() if f in fields}
        for estimator in getattr(cls, "estimators", (None,)):
            extra = {} if estimator is None else {"estimator": estimator}
            out.append(pytest.param(name, cls(**small, **extra), id=f"{name}-{estimator}"))
    return out


CASES = cases()
# Entries whose bound is log p(x) when q = p(z | x) (all but flows such as hvae, whose leapfrog
# and tempering leave a gap there; tests/test_hvae.py checks it against its exact expectation).
EXACT_CASES = [c for c in CASES if getattr(c.values[1], "exact_at_posterior", True)]
MODEL, PARAMS = orthogonal_model()
EXACT_Q = MODEL.exact_posterior_q_params(PARAMS)
# An imperfect q: means shrunk towards 0 and scales too wide, so every bound has a clear gap.
POOR_Q = {**EXACT_Q, "A": 0.6 * EXACT_Q["A"], "log_s": EXACT_Q["log_s"] + 0.4}
X = jnp.asarray(data(MODEL, PARAMS, 4))
DECODER = ("W", "b", "log_sigma")
ENCODER = MODEL.encoder_keys


@functools.cache
def compiled(entry, model=MODEL):
    """fn(params, keys [R], x) -> (metrics, gradients) of `entry`'s loss for each key, stacked;
    compiled once per entry, model and shape (the tests share them)."""
    objective = entry.build(model)

    def once(params, key, x):
        loss = lambda p: objective.loss(p, objective.init(), key, x)  # noqa: E731
        (_, (metrics, _)), grads = jax.value_and_grad(loss, has_aux=True)(params)
        return metrics, grads

    return jax.jit(jax.vmap(once, in_axes=(None, 0, None)))


def repeated(entry, params, repeats: int, seed: int = 0, model=MODEL, x=X):
    """(metrics, gradients) of `entry`'s loss for `repeats` independent keys."""
    return compiled(entry, model)(params, jax.random.split(jax.random.key(seed), repeats), x)


def repeated_loss(loss, params, repeats: int, seed: int = 0):
    """The same for a loss function(params, key) -> (loss, (metrics, state)) of a test's own."""
    grad = jax.vmap(jax.grad(lambda p, k: loss(p, k)[0]), in_axes=(None, 0))
    return jax.jit(grad)(params, jax.random.split(jax.random.key(seed), repeats))


def flat(grads, names) -> np.ndarray:
    """[R, P]: the named leaves of stacked gradients, flattened and joined."""
    leaves = [leaf for n in names for leaf in jax.tree.leaves(grads[n])]
    return np.concatenate([np.asarray(v, np.float64).reshape(len(v), -1) for v in leaves], axis=1)


def assert_zero_mean(diff: np.ndarray, sds: float = 4.5):
    """Each column of diff [R, P] has mean 0 within `sds` standard errors (+1e-6 for float32)."""
    mean, se = diff.mean(0), diff.std(0, ddof=1) / math.sqrt(len(diff))
    worst = np.max(np.abs(mean) / (sds * se + 1e-6))
    assert worst < 1, f"a mean is {worst * sds:.1f} SE from 0: {mean} (SE {se})"


def test_every_objective_and_estimator_is_covered():
    """The registry offers at least the issue's zoo; each bound entry offers all three."""
    names = {p.values[0] for p in CASES}
    assert {"elbo", "iwae", "renyi", "miwae", "ciwae", "piwae", "rws", "hmc", "hvae"} <= names
    for name in ("elbo", "iwae", "renyi", "miwae", "ciwae", "piwae"):
        assert REGISTRY.get(name).estimators == ("reparam", "stl", "dreg")
    assert REGISTRY.get("rws").estimators == ("wake", "dreg")


@pytest.mark.parametrize("name,entry", EXACT_CASES)
def test_every_bound_is_log_px_at_the_exact_posterior(name, entry):
    """q = p(z | x) makes every log weight log p(x), so every bound logged equals log p(x)
    (float32 sums of ~10 terms of size ~10: 2e-3 nats)."""
    metrics, _ = repeated(entry, EXACT_Q, 8)
    exact = MODEL.exact_log_marginal(EXACT_Q, np.asarray(X)).mean()
    logged = [b for b in BOUNDS if b in metrics]
    assert logged
    for b in logged:
        np.testing.assert_allclose(np.asarray(metrics[b]), exact, atol=2e-3, err_msg=b)


@pytest.mark.parametrize("name,entry", CASES)
def test_every_bound_lies_below_log_px(name, entry):
    """With a poor q each logged bound's mean over 400 keys lies below the exact log p(x) by
    more than 4.5 SE: a bound at or above log p(x) fails (a gap that 400 keys cannot resolve
    would fail too, so the poor q's gaps must be large; they are, for every entry)."""
    metrics, _ = repeated(entry, POOR_Q, 400)
    exact = MODEL.exact_log_marginal(POOR_Q, np.asarray(X)).mean()
    for b in (b for b in BOUNDS if b in metrics):
        v = np.asarray(metrics[b], np.float64)
        assert v.mean() + 4.5 * v.std(ddof=1) / math.sqrt(len(v)) < exact, (b, v.mean(), exact)


@functools.cache
def poor_q_log_weights(s: int, repeats: int = 4000) -> jax.Array:
    """[4, repeats, len(X), s]: four independent draws of `repeats` sets of s log weights per
    example of X under the poor q (one set of draws per setting a test compares)."""
    keys = jax.random.split(jax.random.key(3), 4 * repeats * len(X)).reshape(4, repeats, len(X))

    def one(key, x):
        return bounds.log_weights(POOR_Q, key, x, model=MODEL, k=s).log_w

    per_set = jax.vmap(one)  # over the examples
    draw = jax.vmap(jax.vmap(per_set, in_axes=(0, None)), in_axes=(0, None))
    return jax.jit(draw)(keys, X)


def expected_bound(bound, log_w: jax.Array) -> tuple[float, float]:
    """(mean, SE) over the repeats of bound(log w) averaged over the examples; log_w [R, N, s]."""
    v = np.asarray(jax.vmap(jax.vmap(bound))(log_w), np.float64).mean(1)
    return v.mean(), v.std(ddof=1) / math.sqrt(len(v))


@pytest.mark.parametrize(
    "family,settings",
    [
        ("renyi: falls as alpha rises (IWAE at 0, ELBO at 1)", [
            lambda lw, a=a: bounds.renyi_bound(lw, a) for a in (0.0, 0.5, 1.0, 2.0)]),
        ("miwae: m * k = 24, falls as m takes more of the samples", [
            lambda lw, m=m: bounds.miwae_bound(lw, m) for m in (1, 2, 6, 24)]),
        ("ciwae: falls as beta rises", [
            lambda lw, b=b: bounds.ciwae_bound(lw, b) for b in (0.0, 0.3, 0.7, 1.0)]),
    ],
)  # fmt: skip
def test_each_bound_is_ordered_in_its_parameter(family, settings):
    """Independent samples for each setting; consecutive expectations differ by > 4.5 SE in the
    order the theory gives (the first setting is the tightest) and none is above log p(x)."""
    s = 24 if family.startswith("miwae") else 8
    exact = MODEL.exact_log_marginal(POOR_Q, np.asarray(X)).mean()
    draws = poor_q_log_weights(s)
    estimates = [expected_bound(b, draws[i]) for i, b in enumerate(settings)]
    for (m1, se1), (m2, se2) in zip(estimates, estimates[1:], strict=False):
        assert m1 - m2 > 4.5 * math.hypot(se1, se2), (family, estimates)
    assert estimates[0][0] - 4.5 * estimates[0][1] < exact


def decoder_reference(name, entry):
    """The objective whose decoder gradient is the true gradient of `entry`'s decoder bound at
    the same samples: the same bound with the plain gradient (rws: IWAE-k; piwae: IWAE-mk)."""
    iwae = REGISTRY.get("iwae")
    if name == "rws":
        return iwae(k=entry.k)
    if name == "piwae":
        return iwae(k=entry.m * entry.k)
    return dataclasses.replace(entry, estimator="reparam")


ESTIMATED = [p for p in CASES if hasattr(p.values[1], "estimators")]  # not hmc, hvae


@pytest.mark.parametrize("name,entry", ESTIMATED)
def test_the_decoder_gradient_is_the_true_gradient_of_its_bound_sample_by_sample(name, entry):
    """Same keys, same samples: the decoder's gradient under every estimator equals the plain
    gradient of the bound it trains the decoder with, key by key (float32 rounding: 1e-4
    relative). The negative control below shows the test sees a contaminated decoder."""
    _, grads = repeated(entry, POOR_Q, 8)
    _, want = repeated(decoder_reference(name, entry), POOR_Q, 8)
    got, ref = flat(grads, DECODER), flat(want, DECODER)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def naive_dreg_loss(params, key):
    """Negative control: DReG written as one surrogate sum_k stop(w~_k^2) log w_k with the
    decoder live, which gives the decoder w~^2 instead of w~ (the wrong gradient)."""

    def one(key, x):
        lw = path_log_weights(params, key, x, model=MODEL, k=5)
        w = softmax_weights(lw.log_w)
        return jnp.sum(w * w * lw.log_w), bounds.bound_terms(lw)

    value, terms = jax.vmap(one)(jax.random.split(key, len(X)), X)
    return -jnp.mean(value), (terms, ())


def test_negative_control_a_surrogate_that_reweights_the_decoder_fails():
    grads = repeated_loss(naive_dreg_loss, POOR_Q, 8)
    _, want = repeated(REGISTRY.get("iwae")(k=5), POOR_Q, 8)
    got, ref = flat(grads, DECODER), flat(want, DECODER)
    assert not np.allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def exact_log_px_gradient() -> np.ndarray:
    """d log p(x) / d(W, b, log sigma), averaged over the examples of X, from the closed form."""

    def log_px(dec):
        p = {**EXACT_Q, **dec}
        cov = p["W"] @ p["W"].T + jnp.exp(2 * p["log_sigma"]) * jnp.eye(X_DIM)
        return jnp.mean(jax.scipy.stats.multivariate_normal.logpdf(X, p["b"], cov))

    g = jax.grad(log_px)({n: EXACT_Q[n] for n in DECODER})
    return np.concatenate([np.asarray(g[n], np.float64).reshape(-1) for n in DECODER])


@pytest.mark.parametrize("name,entry", EXACT_CASES)
def test_at_the_exact_posterior_the_decoder_gradient_is_unbiased_for_grad_log_px(name, entry):
    """With q = p(z | x) every sample is a posterior draw (HMC keeps it one), so the decoder's
    gradient estimates d log p(x) / d theta without bias (Fisher's identity), for every
    objective and estimator: mean over 400 keys within 4.5 SE (+1e-3 for float32)."""
    _, grads = repeated(entry, EXACT_Q, 400)
    # hmc's loss adds the encoder's bound, which reaches the encoder only
    diff = flat(jax.tree.map(lambda g: -g, grads), DECODER) - exact_log_px_gradient()
    mean, se = diff.mean(0), diff.std(0, ddof=1) / math.sqrt(len(diff))
    assert np.all(np.abs(mean) < 4.5 * se + 1e-3), (mean, se)


def encoder_gradients(entry, params=POOR_Q, repeats=4000, model=MODEL, x=X):
    _, grads = repeated(entry, params, repeats, 11, model, x)
    return flat(grads, model.encoder_keys)


UNBIASED_DREG = [p for p in ESTIMATED if p.values[1].estimator == "dreg" and p.values[0] != "rws"]


@pytest.mark.slow
@pytest.mark.parametrize("name,entry", UNBIASED_DREG)
def test_dreg_is_unbiased_its_mean_is_the_plain_gradients(name, entry):
    """Paired over 4,000 keys (same samples for both): the mean of DReG's encoder gradient minus
    the reparameterised one is 0 within 4.5 SE, for every bound (piwae: its MIWAE encoder)."""
    plain = dataclasses.replace(entry, estimator="reparam")
    assert_zero_mean(encoder_gradients(entry) - encoder_gradients(plain))


def test_negative_control_unsquared_weights_make_iwae_dreg_biased():
    """The same test fails for w~ in place of DReG's w~^2 (that is STL for IWAE-5): > 6 SE."""
    iwae = REGISTRY.get("iwae")
    diff = encoder_gradients(iwae(k=5, estimator="stl")) - encoder_gradients(iwae(k=5))
    with pytest.raises(AssertionError):
        assert_zero_mean(diff, sds=6.0)


def rws_dreg_with_unsquared_weights(params, key):
    """Negative control: RWS's DReG form with w~_k in place of w~_k - w~_k^2."""

    def one(key, x):
        lw = path_log_weights(params, key, x, model=MODEL, k=5, scale=jnp.ones_like)
        return bounds.iwae_bound(lw.log_w), bounds.bound_terms(lw)

    value, terms = jax.vmap(one)(jax.random.split(key, len(X)), X)
    return -jnp.mean(value), (terms, ())


@pytest.mark.slow
def test_rws_dreg_has_the_mean_of_the_wake_phi_update_and_its_negative_control_fails():
    """Tucker et al. (2019): DReG's wake-phi estimate has the same mean as the wake-phi update
    (paired over 4,000 keys, 4.5 SE); with unsquared weights it does not (> 6 SE)."""
    rws = REGISTRY.get("rws")
    wake = encoder_gradients(rws(k=5, estimator="wake"))
    assert_zero_mean(encoder_gradients(rws(k=5, estimator="dreg")) - wake)
    grads = repeated_loss(rws_dreg_with_unsquared_weights, POOR_Q, 4000, seed=11)
    with pytest.raises(AssertionError):
        assert_zero_mean(flat(grads, ENCODER) - wake, sds=6.0)


PATH_ONLY = [p for p in ESTIMATED if p.values[1].estimator in ("stl", "dreg")]


@pytest.mark.parametrize("name,entry", PATH_ONLY)
def test_stl_and_dreg_stick_the_landing(name, entry):
    """With q = p(z | x) every log weight is log p(x) whatever z is, so the path gradient is 0:
    STL's and DReG's encoder gradients are 0 to float precision for every key (their variance
    vanishes), while the reparameterised gradient's (the negative control) does not."""
    g = encoder_gradients(entry, EXACT_Q, repeats=8)
    assert np.abs(g).max() < 1e-4
    plain = REGISTRY.get("iwae")(k=5) if name == "rws" else (
        dataclasses.replace(entry, estimator="reparam"))  # fmt: skip
    # the score term's spread is O(1) per parameter here; 0.05 is far above float32 noise (1e-6)
    assert encoder_gradients(plain, EXACT_Q, repeats=8).std(0).max() > 0.05


@pytest.mark.slow
def test_dreg_is_unbiased_for_two_stochastic_layers():
    """The joint reparameterisation of z = [z1, z2] (gradients.py): on a small two-layer model
    with Bernoulli x, DReG's mean encoder gradient is the plain IWAE-5 one within 4.5 SE over
    4,000 paired keys; STL's (the negative control) is not (> 6 SE)."""
    from elbo_lab.likelihoods.bernoulli import Bernoulli

    model = DeepLatentGaussian(6, (2, 2), ((8,), (8,)), Bernoulli().build())
    params = model.init(jax.random.key(2))
    x = jnp.asarray(np.random.default_rng(0).integers(0, 2, size=(4, 6)), jnp.float32)
    iwae = REGISTRY.get("iwae")

    def enc(estimator):
        return encoder_gradients(iwae(k=5, estimator=estimator), params, 4000, model, x)

    plain = enc("reparam")
    assert_zero_mean(enc("dreg") - plain)
    with pytest.raises(AssertionError):
        assert_zero_mean(enc("stl") - plain, sds=6.0)


@pytest.mark.parametrize(
    "name,fields,phrase",
    [
        ("iwae", {"estimator": "dregs"}, "valid: reparam, stl, dreg"),
        ("rws", {"estimator": "stl"}, "valid: wake, dreg"),
        ("renyi", {"alpha": -1.0}, "objective.alpha must be >= 0"),
        ("ciwae", {"beta": 1.5}, "objective.beta must lie in [0, 1]"),
        ("miwae", {"m": 0}, "objective.m must be a positive number of groups"),
        ("piwae", {"k": 0}, "objective.k must be a positive number of samples"),
    ],
)
def test_bad_settings_say_what_is_valid(name, fields, phrase):
    with pytest.raises(ConfigError, match=phrase.replace("[", r"\[").replace("]", r"\]")):
        REGISTRY.from_config({"name": name, **fields})
