"""The HMC kernel and the HMC-refined objective (Hoffman 2017), against exact answers.

The kernel is tested on Gaussian targets, where leapfrog's behaviour is known in closed form; the
chain and the objective on the linear-Gaussian model, whose posterior p(z | x) is exact.
"""

import dataclasses
import math
from functools import cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hydra import compose, initialize_config_dir
from test_objectives import data, orthogonal_model

from elbo_lab import bounds, hmc
from elbo_lab.config import to_train_config
from elbo_lab.configs import CONFIG_DIR
from elbo_lab.errors import ConfigError
from elbo_lab.objectives.hmc import HMC, EncoderOnly, hmc_objective, hmc_refine
from elbo_lab.train import TrainState, make_train_steps

MU = jnp.array([0.5, -1.0, 0.0, 2.0])
SIGMA = jnp.array([1.0, 2.0, 1.5, 3.0])  # frequencies 1/sigma <= 1: leapfrog is stable for eps < 2
N_CHAINS = 20_000  # independent chains on the linear-Gaussian posterior (one compiled shape)
DECODER, ENCODER = ("W", "b", "log_sigma"), ("A", "c", "log_s")  # LinearGaussian's two halves


def gaussian_target():
    """value_and_grad of log N(z; MU, diag(SIGMA^2)) up to a constant."""
    return jax.value_and_grad(lambda z: -0.5 * jnp.sum(jnp.square((z - MU) / SIGMA)))


def energy(state: hmc.HMCState, r: jax.Array) -> jax.Array:
    return -state.log_density + 0.5 * jnp.sum(r * r)


def test_leapfrog_is_reversible():
    """Negating the final momentum and integrating again returns to the start. Each of the 2L
    steps rounds z (|z| <= 4) at float32's relative 1.2e-7, so 2L * 1.2e-7 * 4 bounds the error;
    a non-symmetric integrator (e.g. a full momentum step at the end) misses by O(eps)."""
    vg, num_steps = gaussian_target(), 50
    z0, r0 = jnp.array([1.5, 0.5, -1.0, 0.0]), jnp.array([0.3, -1.0, 0.8, 0.5])
    end, r = hmc.leapfrog(vg, hmc.init(z0, vg), r0, 0.1, num_steps)
    assert float(jnp.max(jnp.abs(end.z - z0))) > 1.0  # it went somewhere
    back, r_back = hmc.leapfrog(vg, end, -r, 0.1, num_steps)
    tol = 2 * num_steps * 1.2e-7 * 4.0
    np.testing.assert_allclose(back.z, z0, atol=tol)
    np.testing.assert_allclose(-r_back, r0, atol=tol)
    # the carried log density and gradient are those of the returned point
    value, grad = vg(back.z)
    np.testing.assert_allclose(back.log_density, value, atol=1e-5)
    np.testing.assert_allclose(back.grad, grad, atol=1e-5)


def test_leapfrog_energy_error_is_second_order():
    """Over a fixed trajectory length, halving the step divides the energy error by 4. For a
    Gaussian, leapfrog conserves a modified energy exactly, so the error is eps^2 c(T) up to a
    relative O((eps/sigma)^2) <= 4% here; float32 rounding of H (|H| ~ 3, error >= 3e-4) adds
    < 0.2%. We allow 5%; a first-order integrator would give a ratio of 2."""
    vg, length = gaussian_target(), 1.2
    start = hmc.init(jnp.array([1.5, 0.5, -1.0, 0.0]), vg)
    r0 = jnp.array([0.3, -1.0, 0.8, 0.5])
    errors = []
    for eps in (0.2, 0.1, 0.05):
        end, r = hmc.leapfrog(vg, start, r0, eps, round(length / eps))
        errors.append(float(energy(end, r) - energy(start, r0)))
    assert abs(errors[0]) > 1e-3
    np.testing.assert_allclose(np.array(errors[:-1]) / np.array(errors[1:]), 4.0, rtol=0.05)


MODEL, _ = orthogonal_model()


@cache
def _vmapped_refine(num_steps: int, num_leapfrog: int):
    """One compiled function per chain length: jit caches by function, so build each once."""
    refine = partial(hmc_refine, model=MODEL, num_steps=num_steps, num_leapfrog=num_leapfrog)
    return jax.jit(jax.vmap(refine, in_axes=(None, 0, None, None)))


def chains(params, x, step_size, n, *, num_steps=3, num_leapfrog=5, seed=0):
    """n independent hmc_refine chains on one example x."""
    keys = jax.random.split(jax.random.key(seed), n)
    return _vmapped_refine(num_steps, num_leapfrog)(params, keys, x, step_size)


@pytest.fixture(scope="module")
def exact():
    """(params with q = p(z | x) exactly, one example x, posterior mean m, covariance S)."""
    model, params = orthogonal_model()
    params = model.exact_posterior_q_params(params)
    x = jnp.asarray(data(model, params, 1)[0])
    m, S = model.exact_posterior(params, np.asarray(x))
    return params, x, m, S


def test_hmc_leaves_the_exact_posterior_invariant(exact):
    """Chains started from exact posterior draws (q = p(z | x) here) are still exact after three
    transitions. The n chains are independent, so the sample mean of z_d has standard error
    sqrt(S_dd / n), the sample variance S_dd sqrt(2 / (n - 1)) (Gaussian), a covariance
    sqrt((S_dd S_ee + S_de^2) / n); each is checked at 5 SE (false alarm < 1e-6 per check). The
    step (0.6, acceptance ~0.6) is large enough that a chain without the Metropolis correction
    would inflate the narrowest direction's variance far beyond 5 SE (its leapfrog-invariant
    variance is 1 / (1 - (eps / sd)^2 / 4) ~ 4x here)."""
    params, x, m, S = exact
    n = N_CHAINS
    out = chains(params, x, 0.6, n)
    accept = float(jnp.mean(out.accept_prob))
    assert 0.4 < accept < 0.9, accept  # the test is not vacuous: many moves, many rejections
    assert float(jnp.mean(jnp.any(out.z != out.z0, -1))) > 0.5
    z = np.asarray(out.z, np.float64)
    sd = np.sqrt(np.diag(S))
    np.testing.assert_array_less(np.abs(z.mean(0) - m), 5 * sd / math.sqrt(n))
    cov = np.cov(z, rowvar=False)
    se = np.sqrt((np.outer(sd**2, sd**2) + S**2) / n)
    se[np.diag_indices_from(se)] = sd**2 * math.sqrt(2 / (n - 1))
    np.testing.assert_array_less(np.abs(cov - S), 5 * se)


def test_acceptance_falls_as_the_step_grows(exact):
    """Mean acceptance over N_CHAINS chains (same keys for every step size, so the comparison is
    not blurred by sampling noise; its SE is < 0.5 / sqrt(n) = 0.004 anyway): near 1 for small
    steps, near 0 past leapfrog's stability limit (step > 2 sd_min = 0.69 here)."""
    params, x, _, _ = exact
    steps = (0.05, 0.2, 0.5, 0.6, 1.0)
    accept = [float(jnp.mean(chains(params, x, s, N_CHAINS).accept_prob)) for s in steps]
    assert np.all(np.diff(accept) < 0), accept
    assert accept[0] > 0.99 and accept[-1] < 0.05, accept


def test_no_gradient_flows_through_the_chain(exact):
    """z_T is a sample, not a function of the parameters: its gradient is exactly zero."""
    params, x, _, _ = exact
    grads = jax.jit(jax.grad(lambda p: jnp.sum(chains(p, x, 0.3, 4).z)))(params)
    for name, g in grads.items():
        assert not np.any(np.asarray(g)), name


def inexact_batch(n=8):
    """Params with an imperfect q (so the encoder has something to learn) and a batch [n, X]."""
    model, params = orthogonal_model()
    q = model.exact_posterior_q_params(params)
    params = {**q, "A": 0.6 * q["A"], "log_s": q["log_s"] + 0.4}
    return params, jnp.asarray(data(model, params, n))


def test_encoder_only_bound_trains_the_encoder_alone():
    """EncoderOnly gives the decoder an exactly zero gradient and the encoder exactly the plain
    bound's gradient (stop_gradient changes where gradients go, not values). The plain bound's
    decoder gradient is checked to be nonzero, so the first check can fail."""
    params, x = inexact_batch()
    key = jax.random.key(3)

    def neg_iwae(p, model):
        lw = jax.vmap(lambda kk, xx: bounds.log_weights(p, kk, xx, model=model, k=4))(
            jax.random.split(key, x.shape[0]), x
        )
        return -jnp.mean(bounds.iwae_bound(lw.log_w))

    grad = jax.jit(jax.grad(neg_iwae), static_argnums=1)
    g_enc, g_plain = grad(params, EncoderOnly(MODEL)), grad(params, MODEL)
    for name in DECODER:
        assert not np.any(np.asarray(g_enc[name])), name
        assert np.any(np.asarray(g_plain[name])), name
    for name in ENCODER:
        assert np.any(np.asarray(g_plain[name])), name
        np.testing.assert_allclose(g_enc[name], g_plain[name], rtol=1e-5, atol=1e-6)


def test_hmc_loss_gradients_go_where_they_should():
    """The objective's gradient is, for the decoder, exactly that of -mean log p(x, z_T) at fixed
    z_T (no path through the chain, none from the encoder's bound) and, for the encoder, exactly
    that of minus its bound with the same samples (none from the decoder loss). The loss splits
    its key as (chain, encoder), which lets us rebuild both terms here. The encoder trains with
    IWAE-k (k = 3); the ELBO (k = 1) path runs in the trainer-update test."""
    encoder = "iwae"
    params, x = inexact_batch()
    key, k, step = jax.random.key(4), 3, 0.3
    objective = HMC(k=k, num_steps=2, num_leapfrog=3, step_size=step, encoder=encoder).build(MODEL)
    grads = jax.jit(jax.grad(lambda p: objective.loss(p, objective.init(), key, x)[0]))(params)

    k_chain, k_enc = jax.random.split(key)
    refine = partial(hmc_refine, model=MODEL, num_steps=2, num_leapfrog=3)
    z_t = jax.vmap(refine, in_axes=(None, 0, 0, None))(
        params, jax.random.split(k_chain, x.shape[0]), x, step
    ).z

    def decoder_loss(p):
        return -jnp.mean(jax.vmap(MODEL.log_joint, in_axes=(None, 0, 0))(p, x, z_t))

    def encoder_loss(p):
        terms = jax.vmap(
            lambda kk, xx: bounds.bound_terms(bounds.log_weights(p, kk, xx, model=MODEL, k=k))
        )(jax.random.split(k_enc, x.shape[0]), x)
        return -jnp.mean(terms[encoder])

    want_dec = jax.jit(jax.grad(decoder_loss))(params)
    want_enc = jax.jit(jax.grad(encoder_loss))(params)
    for name in DECODER:
        np.testing.assert_allclose(grads[name], want_dec[name], rtol=1e-5, atol=1e-5)
    for name in ENCODER:
        np.testing.assert_allclose(grads[name], want_enc[name], rtol=1e-5, atol=1e-5)


@cache
def _hmc_train_steps():
    """The trainer's update with the hmc objective, compiled once for both step-size cases."""
    objective = HMC(num_steps=2, num_leapfrog=3).build(MODEL)
    return make_train_steps(objective, optax.adam(1e-3), dynamic=False)


@pytest.mark.parametrize("step_size, shrinks", [(3.0, True), (1e-3, False)])
def test_one_jitted_update_adapts_the_step_size(step_size, shrinks):
    """One trainer update (make_train_steps: jit, scan, donation) with the hmc objective: the
    metrics are finite and the step size moves by exactly the adaptation rule, towards the
    target: a step past leapfrog's stability limit shrinks, a tiny one grows."""
    params, x = inexact_batch(20)
    step = jnp.asarray(step_size, jnp.float32)  # the objective state, as init() would make it
    state = TrainState(params, optax.adam(1e-3).init(params), step, jnp.zeros((), jnp.int32))
    train_steps = _hmc_train_steps()
    state, metrics = train_steps(state, x, jnp.arange(20)[None], jax.random.key(0))
    metrics = {name: float(v) for name, v in metrics.items()}
    want = {"accept", "step_size", "log_joint_gain", "log_joint", "encoder_bound", "loss"}
    assert want | {"elbo", "iwae", "recon", "kl"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert metrics["step_size"] == pytest.approx(step_size)  # the step the chains used
    new = float(state.obj_state)
    assert new == pytest.approx(step_size * math.exp(0.05 * (metrics["accept"] - 0.8)), rel=1e-5)
    assert (new < step_size) if shrinks else (new > step_size)


def compose_train(*overrides):
    """The CLI's train config composed from configs/ with the given overrides."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_steps", 0),
        ("num_leapfrog", 0),
        ("step_size", 0.0),
        ("target_accept", 1.0),
        ("target_accept", 0.0),
        ("encoder", "hmc"),
    ],
)
def test_config_rejects_bad_hmc_fields(field, value):
    with pytest.raises(ConfigError, match=f"objective.{field}"):
        HMC(**{field: value})
    with pytest.raises(ConfigError, match=f"objective.{field}"):
        to_train_config(compose_train("objective=hmc", f"objective.{field}={value}"))


def test_hmc_yaml_is_a_valid_config():
    tc = to_train_config(compose_train("objective=hmc"))
    assert type(tc.objective).registry_name == "hmc"
    assert tc.objective == HMC()


def test_config_passes_the_hmc_builder_exactly_its_fields():
    tc = to_train_config(
        compose_train(
            "objective=hmc", "objective.num_steps=2", "objective.encoder=iwae", "objective.k=5"
        )
    )
    hyper = dataclasses.asdict(tc.objective)
    assert hyper == {
        "k": 5,
        "num_steps": 2,
        "num_leapfrog": HMC.num_leapfrog,
        "step_size": HMC.step_size,
        "target_accept": HMC.target_accept,
        "encoder": "iwae",
    }
    hmc_objective(model=MODEL, **hyper)
