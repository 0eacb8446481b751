"""The optimiser schedules: Adam, and the IWAE paper's stages."""

import math

import numpy as np
import pytest

from elbo_lab.config import OptimConfig
from elbo_lab.train import learning_rate, schedule


def test_burda_schedule_is_the_papers():
    """8 stages of 3^i epochs (3,280 in all) at 1e-3 * 10^(-i/7), applied by step."""
    cfg = OptimConfig(name="burda", eps=1e-4, epochs=None)
    epochs, lrs = schedule(cfg)
    assert epochs == [3**i for i in range(8)] and sum(epochs) == 3280
    np.testing.assert_allclose(lrs, [1e-3 * 10 ** (-i / 7) for i in range(8)])
    steps_per_epoch = 7
    lr = learning_rate(cfg, steps_per_epoch)
    starts = np.concatenate([[0], np.cumsum(epochs)[:-1]]) * steps_per_epoch
    for i, start in enumerate(starts):
        assert float(lr(int(start))) == pytest.approx(lrs[i], rel=1e-5)
        if i:
            assert float(lr(int(start) - 1)) == pytest.approx(lrs[i - 1], rel=1e-5)
    assert float(lr(3280 * steps_per_epoch - 1)) == pytest.approx(1e-4, rel=1e-5)


def test_reduced_burda_schedule_keeps_every_stage():
    epochs, lrs = schedule(OptimConfig(name="burda", epoch_scale=0.1, epochs=None))
    assert epochs == [max(1, round(0.1 * 3**i)) for i in range(8)] and min(epochs) == 1
    assert len(lrs) == 8 and math.isclose(lrs[-1], 1e-4)


def test_adam_schedule_is_constant():
    lr = learning_rate(OptimConfig(name="adam", lr=3e-4, epochs=4), 10)
    assert {round(float(lr(s)), 10) for s in (0, 17, 39)} == {3e-4}
