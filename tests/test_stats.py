import math

import pytest

from tfrl.stats import mean_ci


def test_mean_ci_is_the_student_t_interval():
    # values 1, 2, 3: mean 2, sample std 1, t(0.975, 2) = 4.3027 → half-width 4.3027 / sqrt(3)
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)


def test_one_value_has_no_interval():
    mean, half = mean_ci([5.0])
    assert mean == 5.0 and math.isnan(half)
