"""Autoguides whose parameters are networks (the inverse autoregressive flow) run to a result that
holds numpy arrays only, and saves and loads (the leaderboard found NumPyro's nested IAF weights
breaking the result)."""
import numpy as np
import pytest

import inference
from inference.result import load_result


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_an_iaf_guide_gives_a_result_of_arrays_that_saves_and_loads(backend, tmp_path):
    result = inference.run("eight_schools-eight_schools_noncentered", method="svi", backend=backend, guide="iaf",
                           num_steps=200, num_samples=100, progress_bar=False)
    assert result.params and all(isinstance(v, np.ndarray) for v in result.params.values())
    assert sum(v.size for v in result.params.values()) > 100  # the flow's weights, every leaf of them
    loaded = load_result(result.save(tmp_path / "iaf.npz"))
    assert loaded.params.keys() == result.params.keys()
    for name, value in result.params.items():
        np.testing.assert_array_equal(loaded.params[name], value)
