"""log p(x) by annealed importance sampling (Neal 2001; Wu et al. 2017) and BDMC (Grosse et al.).

AIS anneals from a normalised base density p0(z) (the prior p(z), or q(z | x)) to the unnormalised
posterior p(x, z) along the geometric path

    log f_t(z) = log p0(z) + beta_t g(z),   g(z) = log p(x, z) - log p0(z),
    0 = beta_0 < beta_1 < ... < beta_T = 1.

A chain starts at z ~ p0, and at each temperature t = 1..T first adds (beta_t - beta_{t-1}) g(z) to
its log weight, then moves z by one HMC transition (hmc.transition) that leaves f_t invariant.
E[w] = p(x) for every chain, so the log-mean-exp of C chains' weights is a stochastic lower bound
on log p(x) (Jensen) whose bias vanishes as T and C grow.

Step size, the rule: one step size per example, shared by its C chains, starting at `step_size`;
after the transition at temperature t it moves by hmc.adapt_step_size towards `target_accept`
using the chains' mean acceptance probability at t, and the new value is used at t + 1. As in Wu
et al. (2017) the adaptation runs along the annealing path (targets change slowly, so the step
size tracks them). It makes the kernels depend on the chains' past, so E[w] = p(x) holds only
approximately; the exact tests (tests/test_estimators.py) find no bias beyond their Monte Carlo
error, a few hundredths of a nat.

BDMC: for data simulated from the model, (x, z) ~ p(x, z), z is an exact posterior sample. The
same path run backwards (beta from 1 to 0) from z gives weights with E[w] = 1 / p(x): minus their
log-mean-exp is a stochastic upper bound. Forward and reverse together bracket log p(x); their gap
bounds the forward AIS error on data like the simulated data (Grosse, Ghahramani & Adams 2015).

All math is written for one example's C chains (vmapped over chains) and vmapped over a chunk of
examples inside one jit, with `lax.scan` over the temperatures; examples are processed in chunks
of one compiled shape, so memory is bounded whatever the number of examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from elbo_lab import hmc
from elbo_lab.chunking import chunked_map

SCHEDULES = ("sigmoid", "linear")
BASES = ("prior", "q")


def annealing_schedule(num_temps: int, kind: str = "sigmoid", delta: float = 4.0) -> np.ndarray:
    """Inverse temperatures beta [T + 1] from 0 to 1.

    "linear": t / T. "sigmoid" (Grosse et al. 2015): sigmoid(delta (2t/T - 1)) rescaled to [0, 1];
    it spends more temperatures near both ends, where the log weight changes fastest.
    """
    if num_temps < 1:
        raise ValueError(f"AIS needs at least one temperature, got {num_temps}")
    t = np.linspace(0.0, 1.0, num_temps + 1)
    if kind == "linear":
        return t
    if kind == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-delta * (2.0 * t - 1.0)))
        return (s - s[0]) / (s[-1] - s[0])
    raise ValueError(f"unknown AIS schedule {kind!r}; valid: {', '.join(SCHEDULES)}")


@dataclass(frozen=True)
class AISSettings:
    """Everything that defines an AIS run (BDMC runs both directions with the same settings).

    num_temps: temperatures T; schedule: "sigmoid" | "linear" (annealing_schedule); base: the
    path's start p0, "prior" | "q"; chains: C per example; num_leapfrog: leapfrog steps per HMC
    transition; step_size: the initial step size, then adapted towards target_accept by adapt_rate
    (0: fixed); examples_per_chunk: examples per jitted call (C x that many rows per matmul).
    """

    num_temps: int = 500
    schedule: str = "sigmoid"
    base: str = "prior"
    chains: int = 16
    num_leapfrog: int = 10
    step_size: float = 0.05
    target_accept: float = 0.65
    adapt_rate: float = 0.05
    examples_per_chunk: int = 25


class AISChains(NamedTuple):
    """One example's chains after the last temperature."""

    log_w: jax.Array  # [C] log importance weights
    z: jax.Array  # [C, D] final states (approximate samples of f_T)
    accept: jax.Array  # [T] mean acceptance probability over chains at each temperature
    step_size: jax.Array  # [T] step size used at each temperature


def ais_chains(
    params,
    key: jax.Array,
    x: jax.Array,
    z0: jax.Array,
    *,
    model,
    betas: jax.Array,
    base: str,
    num_leapfrog: int,
    step_size: float,
    target_accept: float,
    adapt_rate: float = 0.05,
) -> AISChains:
    """AIS for one example x [X] from C starting points z0 [C, D] along the inverse temperatures
    `betas` [T + 1] (increasing for forward AIS; decreasing for the reverse half of BDMC).

    The starting points must be draws of the path's first distribution: p0 for betas from 0 to 1,
    p(z | x) for betas from 1 to 0. Costs T (num_leapfrog + 1) gradient evaluations per chain.
    """

    def log_base(z):
        return model.log_prior(params, z) if base == "prior" else model.log_q(params, x, z)

    def g(z):
        if base == "prior":  # log p(x, z) - log p(z), without the cancellation
            return model.log_lik(params, x, z)
        return model.log_joint(params, x, z) - log_base(z)

    def log_f(z, beta):
        gz = g(z)
        return log_base(z) + beta * gz, gz

    def temperature(carry, xs):
        z, log_w, eps = carry
        beta_prev, beta, key = xs
        # One evaluation at the current z gives both the weight increment and the HMC state at
        # the new temperature (the state's cached gradient belonged to the previous target).
        (val, gz), grad = jax.vmap(jax.value_and_grad(log_f, has_aux=True), (0, None))(z, beta)
        log_w = log_w + (beta - beta_prev) * gz
        value_and_grad = jax.value_and_grad(lambda zz: log_f(zz, beta)[0])
        states, info = jax.vmap(
            lambda k, s: hmc.transition(
                k, s, value_and_grad, step_size=eps, num_leapfrog=num_leapfrog
            )
        )(jax.random.split(key, z.shape[0]), hmc.HMCState(z, val, grad))
        accept = jnp.mean(info.accept_prob)
        new_eps = hmc.adapt_step_size(eps, accept, target_accept, adapt_rate)
        return (states.z, log_w, new_eps), (accept, eps)

    num_temps = betas.shape[0] - 1
    carry = (z0, jnp.zeros(z0.shape[0], z0.dtype), jnp.asarray(step_size, z0.dtype))
    xs = (betas[:-1], betas[1:], jax.random.split(key, num_temps))
    (z, log_w, _), (accept, eps) = jax.lax.scan(temperature, carry, xs)
    return AISChains(log_w, z, accept, eps)


def log_mean_exp_and_se(log_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of log weights [N, C]: (log-mean-exp [N], its Monte Carlo standard error [N]).

    The SE is the delta method's: sd(w) / (sqrt(C) mean(w)), computed on weights scaled by their
    maximum (so it never overflows); it understates the error when one chain dominates.
    """
    log_w = np.asarray(log_w, np.float64)
    c = log_w.shape[1]
    top = log_w.max(1, keepdims=True)
    w = np.exp(log_w - top)
    est = np.log(w.mean(1)) + top[:, 0]
    se = w.std(1, ddof=1) / (math.sqrt(c) * w.mean(1)) if c > 1 else np.full(len(w), np.nan)
    return est, se


def _sample_base(model, params, key, x, base: str, chains: int) -> jax.Array:
    """C draws [C, D] of the path's starting distribution p0 for one example."""
    keys = jax.random.split(key, chains)
    if base == "prior":
        return jax.vmap(lambda k: model.sample_prior(params, k))(keys)
    return jax.vmap(lambda k: model.sample_q(params, k, x)[0])(keys)


@partial(jax.jit, static_argnames=("model", "base", "chains", "num_leapfrog"))
def _ais_batch(
    params,
    key,
    x,
    z,
    betas,
    step_size,
    target_accept,
    adapt_rate,
    from_posterior,
    *,
    model,
    base,
    chains,
    num_leapfrog,
):
    """AISChains [B, ...] for a batch; compiled once per (model, base, chains, num_leapfrog) and
    shapes, so forward and reverse runs (and runs with other step sizes) share one compilation."""

    def one(key, x, z):
        k_init, k_run = jax.random.split(key)
        z0 = jnp.where(
            from_posterior,
            jnp.broadcast_to(z, (chains, z.shape[0])),
            _sample_base(model, params, k_init, x, base, chains),
        )
        return ais_chains(
            params,
            k_run,
            x,
            z0,
            model=model,
            betas=betas,
            base=base,
            num_leapfrog=num_leapfrog,
            step_size=step_size,
            target_accept=target_accept,
            adapt_rate=adapt_rate,
        )

    return jax.vmap(one)(jax.random.split(key, x.shape[0]), x, z)


def make_ais_fn(model, settings: AISSettings, reverse: bool = False):
    """A jitted fn(params, key, x [B, X], z [B, D]) -> AISChains with a leading [B] axis.

    Forward (reverse=False): chains start at p0 and `z` is ignored. Reverse (the upper half of
    BDMC): the path runs from beta = 1 to 0 and every chain starts at its example's z.
    """
    if settings.base not in BASES:
        raise ValueError(f"unknown AIS base {settings.base!r}; valid: {', '.join(BASES)}")
    betas = annealing_schedule(settings.num_temps, settings.schedule)
    if reverse:
        betas = betas[::-1].copy()
    traced = (
        jnp.asarray(betas, jnp.float32),
        settings.step_size,
        settings.target_accept,
        settings.adapt_rate,
        reverse,
    )
    static = dict(
        model=model,
        base=settings.base,
        chains=settings.chains,
        num_leapfrog=settings.num_leapfrog,
    )
    return lambda params, key, x, z: _ais_batch(params, key, x, z, *traced, **static)


def _run_chunks(fn, params, key, x, z, batch: int, desc: str, progress: bool, first_row: int = 0):
    """fn over x [N, X] (and z [N, D]) with chunked_map: log_w, accept, step_size per example."""
    names = ("log_w", "accept", "step_size")
    return chunked_map(
        lambda p, k, xb, zb: {n: getattr(fn(p, k, xb, zb), n) for n in names},
        [x, z],
        min(batch, x.shape[0]),
        key,
        params=params,
        desc=desc,
        progress=progress,
        first_row=first_row,
    )


def ais(
    params,
    model,
    x: np.ndarray,
    key: jax.Array,
    settings: AISSettings,
    *,
    progress: bool = True,
    first_row: int = 0,
) -> dict[str, np.ndarray]:
    """Forward AIS estimates of log p(x) for each row of x [N, X] (rows first_row.. of a larger
    set: their estimates are that set's, see chunked_map).

    Returns per-example arrays: "log_px" [N] (log-mean-exp of the chains' weights), "mc_se" [N]
    (its Monte Carlo standard error, see log_mean_exp_and_se), "log_w" [N, C], "accept" [N, T]
    and "step_size" [N, T] (mean acceptance and step size at each temperature).
    """
    x = np.asarray(x, np.float32)
    fn = make_ais_fn(model, settings)
    dummy_z = np.zeros((x.shape[0], model.latent_dim), np.float32)
    chunk = settings.examples_per_chunk
    out = _run_chunks(fn, params, key, x, dummy_z, chunk, "ais", progress, first_row)
    out["log_px"], out["mc_se"] = log_mean_exp_and_se(out["log_w"])
    return out


def bdmc(
    params,
    model,
    x: np.ndarray,
    z: np.ndarray,
    key: jax.Array,
    settings: AISSettings,
    *,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Bidirectional Monte Carlo on simulated pairs (x [N, X], z [N, D]) ~ p(x, z).

    Returns per-example arrays "lower" [N] (forward AIS), "upper" [N] (minus the log-mean-exp of
    the reverse chains' weights), "gap" = upper - lower [N], and "lower_mc_se", "upper_mc_se" [N].
    Both halves use the same settings.
    """
    x, z = np.asarray(x, np.float32), np.asarray(z, np.float32)
    k_fwd, k_rev = jax.random.split(key)
    fwd = ais(params, model, x, k_fwd, settings, progress=progress)
    rev_fn = make_ais_fn(model, settings, reverse=True)
    chunk = settings.examples_per_chunk
    rev = _run_chunks(rev_fn, params, k_rev, x, z, chunk, "bdmc-reverse", progress)
    log_inv_px, upper_se = log_mean_exp_and_se(rev["log_w"])
    upper = -log_inv_px
    return {
        "lower": fwd["log_px"],
        "upper": upper,
        "gap": upper - fwd["log_px"],
        "lower_mc_se": fwd["mc_se"],
        "upper_mc_se": upper_se,
        "forward_accept": fwd["accept"],
        "reverse_accept": rev["accept"],
    }
