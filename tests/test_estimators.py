"""log p(x) estimators (AIS, BDMC, IWAE-K), the gap decomposition and ELBO surgery against exact
answers: a linear-Gaussian model (closed forms) and a 1-D-latent Bernoulli model (quadrature).

Tolerances are Monte Carlo errors: "4 SE" is four estimated standard errors of the quantity
compared (a false failure has probability < 1e-4 per comparison), plus 2e-3 nats for float32
rounding of sums of a few dozen terms of size ~10 where stated.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import logsumexp
from scipy.stats import norm
from test_objectives import X_DIM, Z_DIM, orthogonal_model

from elbo_lab import ais, estimators, gaps, surgery
from elbo_lab.distributions import bernoulli_log_pmf, gaussian_log_pdf
from elbo_lab.models.linear_gaussian import LinearGaussian

F32 = 2e-3  # float32 rounding allowance (nats)


# One model object for every linear-Gaussian test: the estimators compile once per model object,
# settings and shapes, so tests that share them share one compilation (XLA takes seconds here).
MODEL = LinearGaussian(X_DIM, Z_DIM)
# Settings shared by the AIS and BDMC tests (same compiled function): 16 examples per call.
AIS = dict(num_temps=200, chains=16, num_leapfrog=5, step_size=0.2, examples_per_chunk=16)


def correlated_model(seed=0):
    """A linear-Gaussian model with a correlated posterior and an imperfect encoder."""
    params = MODEL.init(jax.random.key(seed))
    return MODEL, {**params, "log_sigma": jnp.asarray(-0.3), "A": 0.3 * params["W"].T}


def simulate(params, n, seed=1):
    """n pairs (x [n, X], z [n, D]) ~ p(z) p(x | z) of a linear-Gaussian model."""
    kz, kx = jax.random.split(jax.random.key(seed))
    z = jax.random.normal(kz, (n, Z_DIM))
    noise = jnp.exp(params["log_sigma"]) * jax.random.normal(kx, (n, X_DIM))
    return np.asarray(z @ params["W"].T + params["b"] + noise), np.asarray(z)


def assert_mean_close(estimate, exact, extra=F32):
    """Mean over examples of estimate - exact is 0 within 4 SE (over examples) + extra."""
    err = np.asarray(estimate, np.float64) - exact
    mean, se = estimators.mean_se(err)
    assert abs(mean) < 4 * se + extra, (mean, se, err)


# ---------------------------------------------------------------------------------------------
# AIS and BDMC


def test_annealing_schedules_run_from_0_to_1():
    for kind in ais.SCHEDULES:
        b = ais.annealing_schedule(50, kind)
        assert b.shape == (51,) and b[0] == 0.0 and b[-1] == pytest.approx(1.0)
        assert np.all(np.diff(b) > 0)
    with pytest.raises(ValueError, match="valid: sigmoid"):
        ais.annealing_schedule(10, "cosine")


@pytest.mark.parametrize("base", ais.BASES)
def test_ais_converges_to_exact_log_px(base):
    """16 examples, 16 chains, 200 temperatures: per-example errors average to 0 within 4 SE over
    examples (+ float32); each per-example error lies within 6 of its own MC SEs (delta method,
    which is rough for 16 chains, hence 6) + float32. The step size adapts to ~0.65 acceptance."""
    model, params = correlated_model()
    x, _ = simulate(params, 16)
    exact = model.exact_log_marginal(params, x)
    out = ais.ais(
        params, model, x, jax.random.key(2), ais.AISSettings(base=base, **AIS), progress=False
    )
    assert_mean_close(out["log_px"], exact)
    assert np.all(np.abs(out["log_px"] - exact) < 6 * out["mc_se"] + F32)
    assert abs(np.mean(out["accept"][:, 100:]) - 0.65) < 0.1  # adaptation reached its target


def test_bdmc_brackets_log_px():
    """BDMC on simulated pairs: forward AIS lies below log p(x) and reverse AIS above it, both in
    expectation. With chains that cannot move (step size 1e-6, no adaptation) forward AIS is
    importance sampling from the prior and reverse AIS the harmonic-mean estimator: both bounds
    are loose, so each lies strictly on its own side (by more than 4 SE over 256 examples). With
    HMC moves they close in on log p(x) (each within 4 SE + float32) and the gap shrinks."""
    model, params = correlated_model()
    x, z = simulate(params, 256, seed=3)
    exact = model.exact_log_marginal(params, x)
    frozen = ais.AISSettings(**{**AIS, "step_size": 1e-6, "adapt_rate": 0.0})
    loose = ais.bdmc(params, model, x, z, jax.random.key(4), frozen, progress=False)
    lo_mean, lo_se = estimators.mean_se(loose["lower"] - exact)
    up_mean, up_se = estimators.mean_se(loose["upper"] - exact)
    assert lo_mean + 4 * lo_se < 0 < up_mean - 4 * up_se, (lo_mean, lo_se, up_mean, up_se)
    tight = ais.bdmc(params, model, x, z, jax.random.key(5), ais.AISSettings(**AIS), progress=False)
    assert_mean_close(tight["lower"], exact)
    assert_mean_close(tight["upper"], exact)
    assert np.mean(tight["gap"]) < 0.1 * np.mean(loose["gap"])


class Logistic1D:
    """A non-Gaussian model with a 1-D latent: z ~ N(0, 1), x_p | z ~ Bernoulli(sigmoid(a_p z +
    b_p)) for P pixels; q(z | x) = N(c . x + d, exp(log_s)^2), a deliberately crude encoder."""

    latent_dim = 1
    latent_dims = (1,)  # one stochastic layer (the Model contract)

    def __init__(self, pixels=8):
        rng = np.random.default_rng(0)
        self.params = {
            "a": jnp.asarray(rng.normal(0, 2.5, pixels), jnp.float32),
            "b": jnp.asarray(rng.normal(0, 1, pixels), jnp.float32),
            "c": jnp.full(pixels, 0.2, jnp.float32),
            "d": jnp.asarray(-0.5, jnp.float32),
            "log_s": jnp.asarray(0.0, jnp.float32),
        }

    def sample_q(self, params, key, x):
        mean = (params["c"] @ x + params["d"])[None]
        z = mean + jnp.exp(params["log_s"]) * jax.random.normal(key, (1,))
        return z, gaussian_log_pdf(z, mean, params["log_s"][None]), mean

    def log_q(self, params, x, z):
        return gaussian_log_pdf(z, (params["c"] @ x + params["d"])[None], params["log_s"][None])

    def log_prior(self, params, z):
        return gaussian_log_pdf(z, 0.0, jnp.zeros_like(z))

    def log_lik(self, params, x, z):
        return bernoulli_log_pmf(x, params["a"] * z[0] + params["b"])

    def log_joint(self, params, x, z):
        return self.log_prior(params, z) + self.log_lik(params, x, z)

    def sample_prior(self, params, key):
        return jax.random.normal(key, (1,))

    def exact_log_marginal(self, x, nodes=200):
        """log p(x) [N] by Gauss-Hermite quadrature, float64: sum_i w_i p(x | z_i) / sqrt(2 pi)."""
        z, w = hermegauss(nodes)
        a, b = (np.asarray(self.params[k], np.float64) for k in ("a", "b"))
        logits = z[:, None] * a + b  # [nodes, P]
        ll = np.asarray(x, np.float64) @ logits.T - np.sum(np.logaddexp(0, logits), 1)  # [N, nodes]
        return logsumexp(ll + np.log(w), 1) - 0.5 * math.log(2 * math.pi)

    def simulate(self, n, seed=0):
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(n, 1))
        p = 1 / (1 + np.exp(-(z * np.asarray(self.params["a"]) + np.asarray(self.params["b"]))))
        return (rng.uniform(size=p.shape) < p).astype(np.float32)


def test_ais_and_iwae_match_quadrature_on_a_non_gaussian_model():
    """The posterior of z is skewed and narrow (|a| up to ~5); the encoder is crude, so the ELBO
    is far below log p(x). The quadrature is exact to ~1e-10 (100 vs 200 nodes agree). IWAE-5000
    and AIS (100 temperatures, 16 chains) both match it within 4 SE over 16 examples + float32,
    while the ELBO is below it by many SE (so the comparison has power)."""
    model = Logistic1D()
    x = model.simulate(16)
    exact = model.exact_log_marginal(x)
    np.testing.assert_allclose(exact, model.exact_log_marginal(x, nodes=100), atol=1e-8)
    p = model.params
    ladder = estimators.Ladder(model, ks=(1, 5000))
    summary, per = ladder(p, x, jax.random.key(0), progress=False)
    assert_mean_close(per["iwae_5000"], exact)
    elbo_gap, elbo_gap_se = estimators.mean_se(exact - per["elbo"])
    assert elbo_gap > 10 * elbo_gap_se
    settings = ais.AISSettings(num_temps=100, chains=16, num_leapfrog=5, step_size=0.1)
    out = ais.ais(p, model, x, jax.random.key(1), settings, progress=False)
    assert_mean_close(out["log_px"], exact)


# ---------------------------------------------------------------------------------------------
# Approximation and amortization gaps


def kl_diag_to_full(m1, log_s1, m2, cov2):
    """KL(N(m1, diag(exp(2 log_s1))) || N(m2, cov2)) in float64; m1, log_s1 [N, D], m2 [N, D]."""
    prec = np.linalg.inv(cov2)
    d = m2 - m1
    s2 = np.exp(2 * log_s1)
    return 0.5 * (
        s2 @ np.diag(prec)
        + np.einsum("nd,de,ne->n", d, prec, d)
        - m1.shape[1]
        + np.linalg.slogdet(cov2)[1]
        - np.sum(2 * log_s1, 1)
    )


@pytest.mark.parametrize("orthogonal", [True, False])
def test_gap_decomposition_matches_closed_forms(orthogonal):
    """ELBO[q] = log p(x) - KL(q || p(z|x)) for the encoder's q and for the fitted q*, with both
    KLs in closed form. Checked: (1) both ELBO estimates match those within 4 SE (their own MC SE
    over eval_samples, combined over 6 examples) + float32; (2) q* reached the family's optimum:
    KL(q* || p(z|x)) exceeds the best mean-field KL (0 when W is orthogonal, so the posterior is in
    the family; else KL at mean = posterior mean, precisions = diag of the posterior precision) by
    less than 0.01 nats, a stated optimisation tolerance; (3) the amortization gap equals
    KL(q || p(z|x)) - KL(q* || p(z|x)) within 4 SE + float32."""
    if orthogonal:
        _, params = orthogonal_model()
        model = MODEL
        q = model.exact_posterior_q_params(params)
        params = {**q, "A": 0.6 * q["A"], "log_s": q["log_s"] + 0.4}  # a worse encoder
    else:
        model, params = correlated_model()
    x, _ = simulate(params, 6, seed=7)
    exact = model.exact_log_marginal(params, x)
    per = gaps.inference_gaps(
        params,
        model,
        x,
        exact,
        jax.random.key(8),
        steps=1000,
        lr=0.02,
        train_samples=10,
        init_samples=1000,
        eval_samples=5000,
    )
    m, cov = model.exact_posterior(params, x)
    enc_mean = x @ np.asarray(params["A"], np.float64).T + np.asarray(params["c"], np.float64)
    enc_log_s = np.broadcast_to(np.asarray(params["log_s"], np.float64), enc_mean.shape)
    kl_q = kl_diag_to_full(enc_mean, enc_log_s, m, cov)
    kl_star = kl_diag_to_full(per["mean"], per["log_std"], m, cov)
    best_log_s = np.broadcast_to(-0.5 * np.log(np.diag(np.linalg.inv(cov))), m.shape)
    kl_best = kl_diag_to_full(m, best_log_s, m, cov)
    assert orthogonal == bool(np.all(kl_best < 1e-6))

    def close(estimate, want, se):
        se = math.sqrt(np.sum(se**2)) / len(se)
        assert abs(np.mean(estimate - want)) < 4 * se + F32, (estimate, want, se)

    close(per["elbo_q"], exact - kl_q, per["elbo_q_mc_se"])
    close(per["elbo_qstar"], exact - kl_star, per["elbo_qstar_mc_se"])
    assert np.all(kl_star - kl_best < 0.01), (kl_star, kl_best)
    both = np.sqrt(per["elbo_q_mc_se"] ** 2 + per["elbo_qstar_mc_se"] ** 2)
    close(per["amortization_gap"], kl_q - kl_star, both)
    np.testing.assert_allclose(
        per["approximation_gap"] + per["amortization_gap"], per["inference_gap"], atol=1e-9
    )


# ---------------------------------------------------------------------------------------------
# ELBO surgery


def encoder_model(means, log_s):
    """A LinearGaussian whose encoder maps one-hot x_n to mean_n: q(z | x_n) = N(mean_n, s^2)."""
    n, d = means.shape
    model = LinearGaussian(n, d)
    params = model.init(jax.random.key(0))
    params = {
        **params,
        "A": jnp.asarray(means.T, jnp.float32),
        "c": jnp.zeros(d),
        "log_s": jnp.asarray(log_s, jnp.float32),
    }
    return model, params, np.eye(n, dtype=np.float32)


def closed_avg_kl(means, log_s):
    """(1/N) sum_n KL(N(mean_n, diag s^2) || N(0, I))."""
    s2 = np.exp(2 * np.asarray(log_s, np.float64))
    return np.mean(0.5 * np.sum(means**2 + s2 - 1 - np.log(s2), 1))


def test_mixture_log_density_matches_direct_sum():
    """The matmul expansion, chunking and padding against a float64 sum of Gaussian densities;
    1e-4 is the float32 error of the expanded quadratic form at these scales."""
    rng = np.random.default_rng(0)
    n, d = 300, 4
    mean, log_std = rng.normal(size=(n, d)), rng.normal(-0.5, 0.3, size=(n, d))
    z = rng.normal(size=(17, d))
    direct = logsumexp(norm.logpdf(z[:, None], mean, np.exp(log_std)).sum(-1), 1) - math.log(n)
    fn = surgery.make_mixture_log_density(n, components_per_chunk=128)
    pad = [surgery.pad_components(a.astype(np.float32), 128) for a in (mean, log_std)]
    got = fn(jnp.asarray(z, jnp.float32), *map(jnp.asarray, pad))
    np.testing.assert_allclose(np.asarray(got), direct, atol=1e-4)


def test_surgery_one_example_has_no_information():
    """N = 1: q(z) = q(z | x_1), so every sample's mi is 0 (up to float32) and the marginal KL is
    the one closed-form KL, within 4 SE over 4000 samples."""
    means, log_s = np.array([[0.7, -1.2]]), np.array([-0.4, 0.2])
    model, params, x = encoder_model(means, log_s)
    per = surgery.elbo_surgery(params, model, x, jax.random.key(0), samples_per_example=4000)
    np.testing.assert_allclose(per["mi"], 0.0, atol=1e-4)
    mean, se = estimators.mean_se(per["marg_kl"])
    assert abs(mean - closed_avg_kl(means, log_s)) < 4 * se + F32


def test_surgery_well_separated_examples_carry_log_n_nats():
    """Components 20 standard deviations apart: each z identifies its example, so I = log N up to
    the mixture's overlap (< e^-50 here); the average KL matches its closed form within 4 SE, and
    avg_kl = mi + marg_kl holds sample by sample."""
    n = 8
    means = np.stack([np.arange(n) * 2.0, np.zeros(n)], 1) - n
    log_s = np.log([0.1, 0.5])
    model, params, x = encoder_model(means, log_s)
    per = surgery.elbo_surgery(
        params, model, x, jax.random.key(1), samples_per_example=500, components_per_chunk=4
    )
    np.testing.assert_allclose(per["mi"], math.log(n), atol=1e-3)
    mean, se = estimators.mean_se(per["avg_kl"])
    assert abs(mean - closed_avg_kl(means, log_s)) < 4 * se + F32
    np.testing.assert_allclose(per["avg_kl"], per["mi"] + per["marg_kl"], atol=1e-4)


def test_surgery_matches_quadrature_in_one_dimension():
    """Three overlapping 1-D components: I and KL(q(z) || p(z)) by quadrature on a fine grid
    (float64, error < 1e-8), against the Monte Carlo estimates within 4 SE (20,000 samples)."""
    means, log_s = np.array([[-1.0], [0.3], [1.5]]), np.array([np.log(0.6)])
    model, params, x = encoder_model(means, log_s)
    grid = np.linspace(-12, 12, 200_001)
    dz = grid[1] - grid[0]
    comp = norm.pdf(grid[None], means, np.exp(log_s))  # [N, G]
    agg = comp.mean(0)
    marg_kl = np.sum(agg * (np.log(agg) - norm.logpdf(grid))) * dz
    mi = np.mean(np.sum(comp * (np.log(comp) - np.log(agg)), 1) * dz)
    per = surgery.elbo_surgery(params, model, x, jax.random.key(2), samples_per_example=20_000)
    for name, want in (("mi", mi), ("marg_kl", marg_kl)):
        mean, se = estimators.mean_se(per[name])
        assert abs(mean - want) < 4 * se + F32, (name, mean, se, want)
