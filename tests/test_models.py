"""Shapes and internal consistency of the IWAE paper's architectures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from elbo_lab.distributions import gaussian_log_pdf
from elbo_lab.likelihoods.bernoulli import BernoulliLikelihood
from elbo_lab.models.mlp import DeepLatentGaussian

ARCHS = {
    "burda_1l": ([50], [[200, 200]]),
    "burda_2l": ([100, 50], [[200, 200], [100, 100]]),
}


@pytest.fixture(params=sorted(ARCHS))
def model_and_params(request):
    latent, hidden = ARCHS[request.param]
    model = DeepLatentGaussian(784, latent, hidden, BernoulliLikelihood())
    x_mean = np.linspace(0.0, 0.5, 784)
    return model, model.init(jax.random.key(0), x_mean), x_mean


def test_shapes_and_parameter_counts(model_and_params):
    model, params, _ = model_and_params
    x = jnp.asarray(np.random.default_rng(0).integers(0, 2, 784), jnp.float32)
    z, log_q, q_mean = model.sample_q(params, jax.random.key(1), x)
    assert z.shape == q_mean.shape == (model.latent_dim,) and log_q.shape == ()
    assert model.log_joint(params, x, z).shape == ()
    assert model.sample_prior(params, jax.random.key(2)).shape == (model.latent_dim,)
    assert model.mean_x(params, z).shape == (784,)
    # Dense layers: encoder 784-200-200-(2*50) [+ 50-100-100-(2*100)?], decoder mirrored.
    sizes = {
        1: (784 * 200 + 200 * 200 + 200 * 100 + 500) + (50 * 200 + 200 * 200 + 200 * 784 + 1184),
        2: (784 * 200 + 200 * 200 + 200 * 200 + 600)
        + (100 * 100 + 100 * 100 + 100 * 100 + 300)
        + (100 * 200 + 200 * 200 + 200 * 784 + 1184)
        + (50 * 100 + 100 * 100 + 100 * 200 + 400),
    }
    n = sum(p.size for p in jax.tree.leaves(params))
    assert n == sizes[len(model.latent_dims)]


def test_init_follows_the_paper(model_and_params):
    model, params, x_mean = model_and_params
    bias = np.asarray(params["dec0"]["Dense_2"]["bias"])
    p = np.clip(x_mean, 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(bias, np.log(p / (1 - p)), rtol=1e-5, atol=1e-5)
    assert not np.any(np.asarray(params["enc0"]["Dense_0"]["bias"]))  # zero biases
    kernel = np.asarray(
        params["enc0"]["Dense_0"]["kernel"]
    )  # Glorot uniform: |w| <= sqrt(6/(in+out))
    limit = np.sqrt(6.0 / (784 + 200))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit


def test_log_q_agrees_with_the_sampler(model_and_params):
    """sample_q's log density is the log_q of the sample it returns, and for one layer it is the
    Gaussian density with the encoder's mean and scale."""
    model, params, _ = model_and_params
    x = jnp.asarray(np.random.default_rng(3).integers(0, 2, 784), jnp.float32)
    z, log_q, _ = model.sample_q(params, jax.random.key(4), x)
    np.testing.assert_allclose(model.log_q(params, x, z), log_q, rtol=1e-5)
    assert np.isfinite(float(model.log_joint(params, x, z)))


def test_gaussian_log_pdf_matches_scipy():
    from scipy.stats import norm

    z, m, s = np.array([0.3, -1.2]), np.array([0.1, 0.5]), np.array([-0.2, 0.4])
    want = norm.logpdf(z, m, np.exp(s)).sum()
    assert float(gaussian_log_pdf(jnp.asarray(z), jnp.asarray(m), jnp.asarray(s))) == pytest.approx(
        want, rel=1e-5
    )
