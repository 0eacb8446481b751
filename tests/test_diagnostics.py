"""Active units (Burda et al. 2015): unit u is active if Cov_x(E_q[u | x]) > 0.01."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from elbo_lab.diagnostics import active_units, active_units_per_layer


def test_active_units_count_per_layer():
    """Columns with known spread over 4,000 examples: standard deviations 0.2 (variance 0.04,
    active) and 0.05 (0.0025, inactive). The sample variance's relative SE is sqrt(2/3999) = 2%,
    so neither side can cross the 0.01 threshold by chance."""
    rng = np.random.default_rng(0)
    scales = np.array([0.2, 0.05, 0.2, 0.2, 0.05] + [0.2] * 2 + [0.05] * 3)
    q_mean = rng.standard_normal((4000, scales.size)) * scales
    assert active_units(q_mean) == 5
    assert active_units_per_layer(q_mean, (5, 5)) == [3, 2]
    assert active_units_per_layer(q_mean, (10,)) == [5]
    with pytest.raises(ValueError, match="sum to 9"):
        active_units_per_layer(q_mean, (4, 5))


def test_gradient_snr_recovers_known_signal_to_noise_ratios_for_each_half():
    """Gradients g = mu + sigma * eps with eps ~ N(0, 1): per parameter the SNR is |mu| / sigma
    exactly. Encoder SNRs 0.5 ... 4, decoder SNRs 0.1 ... 1 (medians 2.25 and 0.55); with 2,000
    gradients each estimate's relative SE is ~sqrt((1 + SNR^2 / 2) / R) <= 5%, so the medians
    agree within 15%. The aggregate is mean(mu^2) / mean(sigma^2). A constant leaf (variance 0)
    is left out of the quantiles."""
    from elbo_lab.diagnostics import gradient_snr

    mu_enc, mu_dec = jnp.linspace(0.5, 4.0, 8), jnp.linspace(0.1, 1.0, 10)
    params = {"enc0": jnp.zeros(8), "dec0": jnp.zeros(10), "dec1": jnp.zeros(3)}

    def grad_fn(params, key, scale):
        k1, k2 = jax.random.split(key)
        return {
            "enc0": mu_enc + scale * jax.random.normal(k1, (8,)),
            "dec0": mu_dec + scale * jax.random.normal(k2, (10,)),
            "dec1": jnp.ones(3),  # no noise: no SNR
        }

    keys = jax.random.split(jax.random.key(0), 2000)
    found = gradient_snr(grad_fn, params, keys, ("enc0",), jnp.asarray(1.0))
    assert found["encoder"]["parameters"] == 8 and found["decoder"]["parameters"] == 13
    assert found["encoder"]["snr_median"] == pytest.approx(2.25, rel=0.15)
    assert found["decoder"]["snr_median"] == pytest.approx(0.55, rel=0.15)
    assert found["encoder"]["aggregate"] == pytest.approx(float(jnp.mean(mu_enc**2)), rel=0.15)
    assert found["decoder"]["variance"] == pytest.approx(10 / 13, rel=0.15)
