"""Bounds and estimators against a linear-Gaussian model, where log p(x) and p(z | x) are exact."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from elbo_lab import bounds, estimators
from elbo_lab.models.linear_gaussian import LinearGaussian
from elbo_lab.objectives import REGISTRY

X_DIM, Z_DIM = 6, 3


def orthogonal_model(seed=0, log_sigma=-0.3):
    """A linear-Gaussian model whose W has orthogonal columns, so p(z | x) is diagonal and a
    mean-field q can equal it exactly."""
    model = LinearGaussian(X_DIM, Z_DIM)
    params = model.init(jax.random.key(seed))
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(X_DIM, Z_DIM)))
    W = q * np.array([2.0, 1.2, 0.7])  # orthogonal columns of different lengths
    params = {**params, "W": jnp.asarray(W, jnp.float32), "log_sigma": jnp.asarray(log_sigma)}
    params["b"] = jnp.asarray(np.linspace(-0.5, 0.5, X_DIM), jnp.float32)
    return model, params


def data(model, params, n, seed=1):
    """n exact draws x ~ p(x) [n, X]."""
    kz, kx = jax.random.split(jax.random.key(seed))
    z = jax.random.normal(kz, (n, Z_DIM))
    noise = jnp.exp(params["log_sigma"]) * jax.random.normal(kx, (n, X_DIM))
    return np.asarray(z @ params["W"].T + params["b"] + noise)


def test_iwae_1_is_the_elbo():
    model, params = orthogonal_model()
    x = jnp.asarray(data(model, params, 1)[0])
    lw = bounds.log_weights(params, jax.random.key(3), x, model=model, k=1)
    terms = bounds.bound_terms(lw)
    assert float(terms["iwae"]) == pytest.approx(float(terms["elbo"]), abs=1e-6)
    # elbo = recon - kl holds term by term, since kl is the same samples' log q - log p(z)
    assert float(terms["recon"] - terms["kl"]) == pytest.approx(float(terms["elbo"]), abs=1e-4)


def test_exact_posterior_makes_every_bound_exact():
    """With q = p(z | x), every log weight equals log p(x), so ELBO = IWAE-k = log p(x) for all k.
    The only error is float32 rounding of sums of ~10 terms of size ~10: 1e-3 nats is ample."""
    model, params = orthogonal_model()
    params = model.exact_posterior_q_params(params)
    x = data(model, params, 8)
    exact = model.exact_log_marginal(params, x)
    ladder = estimators.Ladder(model, ks=(1, 5, 50, 500))
    summary, per = ladder(params, x, jax.random.key(0), progress=False)
    for k in (1, 5, 50, 500):
        np.testing.assert_allclose(per[f"iwae_{k}"], exact, atol=1e-3)
    np.testing.assert_allclose(per["elbo"], exact, atol=1e-3)


def test_bounds_lie_below_log_px_and_rise_with_k():
    """With an imperfect q the expected bounds are ordered ELBO < IWAE-5 < IWAE-50 <= log p(x).
    Each rung is estimated from 20,000 samples per example, so its Monte Carlo standard error
    (over disjoint groups, per example) is known and every comparison is made at 4 standard
    errors: a false failure has probability < 1e-4 per comparison. IWAE-50 is within a few
    thousandths of a nat of log p(x) here, so for it we only require it not to lie above."""
    model, params = orthogonal_model()
    q = model.exact_posterior_q_params(params)
    # A worse q: means shrunk towards 0 and scales too wide, so the gaps are clearly positive.
    params = {**q, "A": 0.6 * q["A"], "log_s": q["log_s"] + 0.4}
    x = data(model, params, 4)
    exact = model.exact_log_marginal(params, x)
    k_max = 20_000
    lw = jax.vmap(lambda kk, xx: bounds.log_weights(params, kk, xx, model=model, k=k_max).log_w)(
        jax.random.split(jax.random.key(5), len(x)), jnp.asarray(x)
    )
    lw = np.asarray(lw, np.float64)
    prev_mean = None
    for k in (1, 5, 50):
        groups = lw.reshape(len(x), k_max // k, k)
        est = np.log(np.mean(np.exp(groups - groups.max(-1, keepdims=True)), -1)) + groups.max(-1)
        mean = est.mean(1)
        se = est.std(1, ddof=1) / math.sqrt(est.shape[1])
        assert np.all(mean - 4 * se < exact), (k, mean, exact)  # never above log p(x)
        if k < 50:
            assert np.all(mean + 4 * se < exact), (k, mean, exact)  # clearly below it
        if prev_mean is not None:
            assert np.all(mean - 4 * se > prev_mean), (k, mean, prev_mean)
        prev_mean = mean
    # IWAE-20000 converges to log p(x): its bias ~ Var(w)/(2 K E[w]^2) is below 1e-3 nats here,
    # and its spread across examples' samples is checked against the exact value at 0.02 nats.
    np.testing.assert_allclose(estimators.iwae_ladder(lw, [k_max])[k_max], exact, atol=0.02)


def test_iwae_gradient_is_the_gradient_of_log_px():
    """With q = p(z | x), the IWAE-K gradient for the decoder is an unbiased estimate of
    d log p(x) / d(W, b, log sigma) (Fisher's identity). We average 16 independent K=500
    estimates and require agreement within 5 standard errors of that average (+1e-3 for float32)."""
    model, params = orthogonal_model()
    params = model.exact_posterior_q_params(params)
    x = jnp.asarray(data(model, params, 1)[0])
    decoder = ("W", "b", "log_sigma")

    def exact_log_px(dec):
        p = {**params, **dec}
        cov = p["W"] @ p["W"].T + jnp.exp(2 * p["log_sigma"]) * jnp.eye(X_DIM)
        return jax.scipy.stats.multivariate_normal.logpdf(x, p["b"], cov)

    dec0 = {k: params[k] for k in decoder}
    want = jax.grad(exact_log_px)(dec0)
    objective = REGISTRY.get("iwae")(k=500).build(model)

    def grad_once(key):
        loss = lambda dec: objective.loss({**params, **dec}, (), key, x[None])[0]  # noqa: E731
        return jax.tree.map(lambda g: -g, jax.grad(loss)(dec0))

    grads = jax.vmap(grad_once)(jax.random.split(jax.random.key(7), 16))
    for name in decoder:
        g = np.asarray(grads[name], np.float64)
        mean, se = g.mean(0), g.std(0, ddof=1) / 4.0
        np.testing.assert_array_less(np.abs(mean - np.asarray(want[name])), 5 * se + 1e-3)


def test_iwae_is_stable_in_float32_for_large_k_and_large_weights():
    """logsumexp, not log(mean(exp)): log weights around -1e4 would underflow exp() to 0."""
    log_w = jnp.asarray(-1.0e4 + np.random.default_rng(0).normal(size=5000), jnp.float32)
    value = float(bounds.iwae_bound(log_w))
    want = -1.0e4 + math.log(np.mean(np.exp(np.asarray(log_w, np.float64) + 1.0e4)))
    assert math.isfinite(value) and value == pytest.approx(want, abs=0.01)
