"""The Hamiltonian VAE (objectives/hvae.py) against its exact expectation.

On the linear-Gaussian model log p(x, z) is quadratic in z, so each leapfrog step and each
tempering is an affine map of (z, rho): (z_K, rho_K) is an affine image J u + c of
u = (z0, rho0) ~ N(mu, C), hence Gaussian, and the expected bound has a closed form:

    E[log w] = E[log p(x, z_K)] + E[log N(rho_K; 0, I)] + H(q(z0 | x)) + H(N(0, I / beta0))
               + log |det J|,

with J computed here from the flow itself (jax.jacfwd), not from the (d / 2) log beta0 the
objective uses. Monte Carlo means over R keys must match it within 4.5 SE (+1e-3 for float32).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_gradient_estimators import EXACT_Q, MODEL, POOR_Q, X, flat, repeated, repeated_loss
from test_objectives import Z_DIM

from elbo_lab.errors import ConfigError
from elbo_lab.objectives import REGISTRY, hvae
from elbo_lab.objectives.hvae import HVAE, flow, tempering

ENTRY = HVAE(k=1, num_steps=3, step_size=0.2, beta0=0.5)
LOG_2PI = math.log(2 * math.pi)


def exact_bound(params, x, entry=ENTRY):
    """E[log w] of one example x [X] in closed form (see the module docstring)."""
    d = Z_DIM
    settings = dict(model=MODEL, step_size=entry.step_size, beta0=entry.beta0)

    def f(u):
        return jnp.concatenate(flow(params, x, u[:d], u[d:], **settings, num_steps=entry.num_steps))

    zero = jnp.zeros(2 * d)
    J, c = jax.jacfwd(f)(zero), f(zero)
    mu = jnp.concatenate([params["A"] @ x + params["c"], jnp.zeros(d)])
    C = jnp.diag(jnp.concatenate([jnp.exp(2 * params["log_s"]), jnp.full(d, 1 / entry.beta0)]))
    m, S = J @ mu + c, J @ C @ J.T
    mz, Sz, mr, Sr = m[:d], S[:d, :d], m[d:], S[d:, d:]
    W, b, s2 = params["W"], params["b"], jnp.exp(2 * params["log_sigma"])
    r = x - W @ mz - b
    e_lik = -0.5 / s2 * (r @ r + jnp.trace(W @ Sz @ W.T)) - 0.5 * x.shape[0] * jnp.log(
        2 * jnp.pi * s2
    )
    e_prior = -0.5 * (mz @ mz + jnp.trace(Sz)) - 0.5 * d * LOG_2PI
    e_rho = -0.5 * (mr @ mr + jnp.trace(Sr)) - 0.5 * d * LOG_2PI
    h_q = jnp.sum(params["log_s"]) + 0.5 * d * (1 + LOG_2PI)
    h_rho = 0.5 * d * (1 + LOG_2PI - math.log(entry.beta0))
    return e_lik + e_prior + e_rho + h_q + h_rho + jnp.linalg.slogdet(J)[1]


def batch_exact(params, entry=ENTRY):
    return jnp.mean(jax.vmap(lambda x: exact_bound(params, x, entry))(X))


def mc_bound(params, entry=ENTRY, repeats=2000):
    metrics, grads = repeated(entry, params, repeats)
    return np.asarray(metrics["elbo"], np.float64), grads


@pytest.mark.parametrize("q", ["poor", "exact"])
def test_the_bound_has_its_exact_expectation_and_lies_below_log_px(q):
    params = {"poor": POOR_Q, "exact": EXACT_Q}[q]
    v, _ = mc_bound(params)
    mean, se = v.mean(), v.std(ddof=1) / math.sqrt(len(v))
    want = float(batch_exact(params))
    assert abs(mean - want) < 4.5 * se + 1e-3, (mean, se, want)
    log_px = MODEL.exact_log_marginal(params, np.asarray(X)).mean()
    assert want < log_px  # a lower bound, even at q = p(z | x): the flow leaves a gap there
    # negative control: the same weights without the flow's log-determinant ((d/2) log beta0,
    # 1.04 nats here) miss the exact expectation by far more than the tolerance
    wrong = v - 0.5 * Z_DIM * math.log(ENTRY.beta0)
    assert abs(wrong.mean() - want) > 10 * (4.5 * se + 1e-3)


def test_the_gradient_of_every_parameter_is_the_gradient_of_the_exact_bound():
    """Reparameterised through the flow: the mean gradient over 2000 keys is the gradient of
    the closed form, encoder and decoder alike (4.5 SE per coordinate, +1e-3)."""
    _, grads = mc_bound(POOR_Q)
    names = sorted(POOR_Q)
    got = -flat(grads, names)  # the loss is minus the bound
    want = flat(jax.tree.map(lambda g: g[None], jax.grad(batch_exact)(POOR_Q)), names)[0]
    mean, se = got.mean(0), got.std(0, ddof=1) / math.sqrt(len(got))
    assert np.all(np.abs(mean - want) < 4.5 * se + 1e-3), (mean - want, se)


def test_negative_control_a_flow_that_hides_its_decoder_dependence_fails(monkeypatch):
    """The same test on a variant whose leapfrog steps see the parameters through a
    stop_gradient (the decoder then learns only from log p(x, z_K) at the end): its mean
    gradient misses the closed form's by more than the tolerance."""
    original = hvae.flow
    monkeypatch.setattr(
        hvae, "flow", lambda params, *a, **kw: original(jax.lax.stop_gradient(params), *a, **kw)
    )
    obj = ENTRY.build(MODEL)
    grads = repeated_loss(lambda p, k: obj.loss(p, (), k, X), POOR_Q, 2000)
    names = sorted(POOR_Q)
    got = -flat(grads, names)
    want = flat(jax.tree.map(lambda g: g[None], jax.grad(batch_exact)(POOR_Q)), names)[0]
    mean, se = got.mean(0), got.std(0, ddof=1) / math.sqrt(len(got))
    assert np.any(np.abs(mean - want) > 4.5 * se + 1e-3)


def test_without_steps_and_tempering_it_is_the_elbo():
    """K = 0 and beta0 = 1: the flow is the identity and the momentum's terms cancel, so the
    bound is the ELBO; the two Monte Carlo means (different samples) agree within 4.5 SE."""
    a, _ = mc_bound(POOR_Q, HVAE(k=1, num_steps=0, beta0=1.0))
    b, _ = mc_bound(POOR_Q, REGISTRY.get("elbo")(k=1))
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(a.mean() - b.mean()) < 4.5 * se, (a.mean(), b.mean(), se)


def test_the_tempering_runs_from_beta0_to_one():
    betas = tempering(5, 0.3)
    assert betas[0] == pytest.approx(0.3) and betas[-1] == pytest.approx(1.0)
    assert np.all(np.diff(betas) > 0)


@pytest.mark.parametrize(
    "fields,phrase",
    [({"beta0": 0.0}, "beta0"), ({"beta0": 1.5}, "must lie in"), ({"step_size": 0}, "positive")],
)
def test_bad_settings_say_what_is_valid(fields, phrase):
    with pytest.raises(ConfigError, match=phrase):
        HVAE(**fields)
