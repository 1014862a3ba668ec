"""cellsim.core.numeric.median is np.median for 1-D data, to the float, without importing numpy.ma."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from cellsim.core.numeric import median


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 101, 1000])
def test_median_equals_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        x = rng.normal(size=n) * 10 ** rng.uniform(-6, 6)
        assert median(x) == float(np.median(x))
        ties = rng.integers(-3, 3, size=n).astype(float)
        assert median(list(ties)) == float(np.median(ties))


def test_median_edge_cases() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(median([])) and np.isnan(median([1.0, np.nan, 2.0]))
        assert median([np.inf, 1.0, 2.0, np.inf]) == np.median([np.inf, 1.0, 2.0, np.inf])


def test_median_leaves_numpy_ma_unloaded() -> None:
    code = "import sys, numpy as np\nfrom cellsim.core.numeric import median\nmedian(np.arange(5.0))\n"
    code += "np.median(np.arange(3.0)) if len(sys.argv) > 1 else None\nprint('numpy.ma' in sys.modules)"
    out = [
        subprocess.run([sys.executable, "-c", code, *a], capture_output=True, text=True, check=True).stdout
        for a in ([], ["numpy"])
    ]
    assert out == ["False\n", "True\n"]  # and np.median itself does load it (the control)
