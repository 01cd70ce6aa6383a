"""The libraries' own keywords pass through ``inference.run`` to the class the method builds
(``inference.library_options``), checked against its signature: what is given is what the
library gets, and a misspelt or mistyped keyword is refused before anything runs."""
import numpy as np
import pytest

import inference
from ppl_models.errors import UnknownChoiceError

ES = "eight_schools-eight_schools_noncentered"
SHORT = dict(num_warmup=20, num_samples=20, num_chains=1)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_a_fixed_step_size_reaches_the_kernel(backend):
    result = inference.run(ES, method="nuts", backend=backend, step_size=0.0123, adapt_step_size=False, **SHORT)
    np.testing.assert_allclose(result.sample_stats["step_size"], 0.0123)
    assert result.info["options"]["library_options"] == {"step_size": 0.0123, "adapt_step_size": False}


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_initialization_by_value_and_the_guides_scale_reach_the_autoguide(backend):
    # one step of size 1e-12: the parameters are where the autoguide put them
    result = inference.run(ES, method="svi", backend=backend, num_steps=1, learning_rate=1e-12,
                           init_loc_fn={"mu": 1.5}, init_scale=0.0321)
    locs = {k: v for k, v in result.params.items() if "loc" in k and "mu" in k}
    scales = {k: v for k, v in result.params.items() if "scale" in k and "mu" in k}
    assert len(locs) == 1 and len(scales) == 1, result.params.keys()
    np.testing.assert_allclose(next(iter(locs.values())), 1.5, rtol=1e-6)
    np.testing.assert_allclose(next(iter(scales.values())), 0.0321, rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_an_init_strategy_starts_the_chain_there(backend):
    # one draw of a chain that cannot move (a step of 1e-12): where init_to_value put it
    result = inference.run(ES, method="hmc", backend=backend, init_strategy={"mu": 2.5}, step_size=1e-12,
                           adapt_step_size=False, num_steps=1, num_warmup=1, num_samples=4, num_chains=1)
    np.testing.assert_allclose(result.samples["mu"], 2.5, atol=1e-6)
    by_name = inference.run(ES, method="hmc", backend=backend, init_strategy="init_to_median", **SHORT)
    assert by_name.info["options"]["library_options"] == {"init_strategy": "init_to_median"}


@pytest.mark.parametrize("options, error, text", [
    (dict(method="nuts", adapt_mass_matrx=False), UnknownChoiceError,
     "unknown option for method 'nuts' 'adapt_mass_matrx'"),
    (dict(method="nuts", adapt_mass_matrx=False), UnknownChoiceError, "they include the keywords of numpyro's NUTS"),
    (dict(method="nuts", adapt_mass_matrx=False), UnknownChoiceError, "did you mean 'adapt_mass_matrix'"),
    (dict(method="nuts", adapt_mass_matrix=1), ValueError, "expected True or False, as the library's default True"),
    (dict(method="nuts", step_size="big"), ValueError, "step_size='big' for NUTS (numpyro) is invalid"),
    (dict(method="svi", init_loc_fn="init_to_middle"), ValueError, "expected one of init_to_feasible"),
    (dict(method="svi", guide="delta", init_scale=0.1), UnknownChoiceError, "the keywords of numpyro's AutoDelta"),
    (dict(method="nuts", engine="blackjax", adapt_mass_matrix=False), UnknownChoiceError,
     "unknown option for method 'nuts' 'adapt_mass_matrix'"),
])
def test_bad_library_keywords_are_refused_up_front(options, error, text, monkeypatch):
    with pytest.raises(error) as info:
        inference.run(ES, backend="numpyro", **options)
    assert text in str(info.value)
