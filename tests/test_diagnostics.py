"""Active units (Burda et al. 2015): unit u is active if Cov_x(E_q[u | x]) > 0.01."""

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
