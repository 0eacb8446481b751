"""ELBO surgery (Hoffman & Johnson 2016): the average KL term split through the aggregate posterior.

    (1/N) sum_n KL(q(z | x_n) || p(z))  =  I_q(n; z)  +  KL(q(z) || p(z)),
    q(z) = (1/N) sum_n q(z | x_n)  over the N training examples,

I_q is the mutual information between the example index and z under q(n, z) = q(z | x_n) / N, at
most log N. All three terms are expectations under q(n, z); we draw `samples_per_example` z's from
every q(z | x_n) (stratified over n) and average, per sample s (from example n):

    avg_kl_s  = log q(z_s | x_n) - log p(z_s)
    mi_s      = log q(z_s | x_n) - log q(z_s)
    marg_kl_s = log q(z_s)       - log p(z_s)          so avg_kl_s = mi_s + marg_kl_s exactly.

log q(z) is not estimated: it is the exact log density of the N-component mixture, which needs all
N encoder outputs for every z (the cost: S x N Gaussian densities, done as matmuls). The standard
errors are those of iid samples from q(n, z) (stratification over n only makes them smaller).

Several stochastic layers: with z = [z1, z2, ...] (flat, bottom-up), q(z | x) = q(z1 | x) q(z_rest |
z1) and only the bottom factor depends on x, so q(z) = q1(z1) q(z_rest | z1) with q1 the mixture of
the bottom layer's Gaussians. The decomposition is of the KL over the whole flat z (the term of
the ELBO), and mi_s = log q(z1 | x_n) - log q1(z1) involves the bottom layer only.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from elbo_lab.chunking import chunked_map
from elbo_lab.distributions import LOG_2PI, gaussian_log_pdf


def make_mixture_log_density(num_components: int, *, components_per_chunk: int = 8192):
    """A jitted fn(z [S, d], mean [M, d], log_std [M, d]) -> [S]:
    log (1/N) sum_n N(z; mean_n, diag(exp(log_std_n))^2) over the first N = num_components rows.

    Rows beyond N are padding (any values). Each density's quadratic form is expanded,
    sum_d a (z - m)^2 = z^2 . a - 2 z . (a m) + m^2 . a with a = exp(-2 log_std), so S x M of them
    are two [S, 2d] x [2d, chunk] matmuls; the mixture's logsumexp runs over chunks of components
    (lax.map) so memory is S x components_per_chunk whatever N is. The expansion costs float32
    precision ~1e-7 (|z|^2 + |m|^2) a per coordinate, far below the Monte Carlo error it feeds.
    M must be a multiple of components_per_chunk (pad with pad_components).
    """

    @jax.jit
    def fn(z, mean, log_std):
        d = z.shape[1]
        a = jnp.exp(-2.0 * log_std)
        coef = jnp.concatenate([-0.5 * a, a * mean], 1)  # [M, 2d]
        const = -0.5 * jnp.sum(a * mean**2, 1) - jnp.sum(log_std, 1) - 0.5 * d * LOG_2PI
        const = jnp.where(jnp.arange(mean.shape[0]) < num_components, const, -jnp.inf)
        feats = jnp.concatenate([z**2, z], 1)  # [S, 2d]
        chunks = mean.shape[0] // components_per_chunk

        def part(i):
            c = jax.lax.dynamic_slice_in_dim(coef, i * components_per_chunk, components_per_chunk)
            k = jax.lax.dynamic_slice_in_dim(const, i * components_per_chunk, components_per_chunk)
            return logsumexp(feats @ c.T + k, axis=1)  # [S]

        return logsumexp(jax.lax.map(part, jnp.arange(chunks)), axis=0) - math.log(num_components)

    return fn


def pad_components(a: np.ndarray, multiple: int) -> np.ndarray:
    """Rows of a [N, ...] padded with zeros up to a multiple of `multiple`."""
    pad = -a.shape[0] % multiple
    return np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a


def elbo_surgery(
    params,
    model,
    x: np.ndarray,
    key: jax.Array,
    *,
    samples_per_example: int = 1,
    examples_per_chunk: int = 1000,
    components_per_chunk: int = 8192,
) -> dict[str, np.ndarray]:
    """The three terms per sample, for the aggregate posterior of the N rows of x [N, X].

    Returns float64 arrays [N * samples_per_example]: "avg_kl", "mi", "marg_kl" (see the module
    docstring; avg_kl = mi + marg_kl sample by sample). mi is at most log N.
    """
    x = np.asarray(x, np.float32)
    n = x.shape[0]
    components_per_chunk = min(components_per_chunk, n)
    chunk = min(examples_per_chunk, n)

    @jax.jit
    def bottom(params, _, xb):
        m, s = jax.vmap(lambda xx: model.q_bottom(params, xx))(xb)
        return {"mean": m, "log_std": jnp.broadcast_to(s, m.shape)}

    q1 = chunked_map(bottom, [x], chunk, params=params)
    mean = jnp.asarray(pad_components(q1["mean"], components_per_chunk))
    log_std = jnp.asarray(pad_components(q1["log_std"], components_per_chunk))
    mixture = make_mixture_log_density(n, components_per_chunk=components_per_chunk)
    d1 = mean.shape[1]

    @jax.jit
    def terms(shared, key, xb):
        params, mean, log_std = shared

        def one(key, xx):
            def sample(k):
                z, log_q, _ = model.sample_q(params, k, xx)
                m, s = model.q_bottom(params, xx)
                return z, log_q, gaussian_log_pdf(z[:d1], m, s), model.log_prior(params, z)

            return jax.vmap(sample)(jax.random.split(key, samples_per_example))

        z, log_q, log_q1, log_p = jax.vmap(one)(jax.random.split(key, xb.shape[0]), xb)
        log_q1_agg = mixture(z[..., :d1].reshape(-1, d1), mean, log_std).reshape(log_q.shape)
        return log_q - log_p, log_q1 - log_q1_agg, log_q - log_q1 + log_q1_agg - log_p

    names = ("avg_kl", "mi", "marg_kl")
    per = chunked_map(
        lambda shared, k, xb: dict(zip(names, terms(shared, k, xb), strict=True)),
        [x],
        chunk,
        key,
        params=(params, mean, log_std),
        post=lambda out: {name: np.asarray(v, np.float64) for name, v in out.items()},
    )
    return {name: v.ravel() for name, v in per.items()}
