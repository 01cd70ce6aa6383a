"""NUTS against ground truth: one model per family with a reference, on NumPyro; eight schools on Pyro too.

The rest of posteriordb's posteriors run in the benchmark (``benchmarks/posteriordb_nuts.py``, its
table in RESULTS), a sample of them in ``tests/test_posterior_database.py`` (one per model
function), and diamonds and the GP in ``tests/test_diamonds_gp.py``: all of them here took 5 to 10
minutes more than the suite can give.

Posterior means must lie within 4 sqrt(mcse^2 + mcse_ref^2) of the reference means,
and sds within 4 sqrt(mcse_sd^2 + mcse_sd_ref^2) of the reference sds (MCSEs from
ArviZ; zero for exact references). With about 10 to 350 such checks per model, a
correct sampler fails one by chance with probability below about 2%.
"""
import pytest

import inference
import ppl_models
from tests.reference_checks import assert_matches_reference, assert_rare_divergences

WITH_REFERENCE = ["earnings-logearn_interaction", "eight_schools-eight_schools_centered",
                  "eight_schools-eight_schools_noncentered", "kidiq-conjugate_regression", "kidiq-kidscore_momiq",
                  "mesquite-logmesquite", "mnist-ppca", "nes2000-nes", "radon_mn-radon_hierarchical_intercept_centered",
                  "radon_mn-radon_hierarchical_intercept_noncentered",
                  "radon_mn-radon_variable_intercept_slope_noncentered"]
# The centered eight schools has a funnel: its draws are biased, and that is asserted separately.
UNBIASED = [n for n in WITH_REFERENCE if n != "eight_schools-eight_schools_centered"]
SETTINGS = dict(num_warmup=1000, num_samples=1000, num_chains=4)


@pytest.mark.parametrize("name", UNBIASED)
def test_numpyro_nuts_matches_reference(name):
    spec = ppl_models.get_model(name)
    result = inference.run(spec, method="nuts", backend="numpyro", seed=0, target_accept_prob=0.9, **SETTINGS)
    assert_rare_divergences(result)
    assert_matches_reference(result, spec.reference)


def test_pyro_nuts_matches_reference():
    spec = ppl_models.get_model("eight_schools-eight_schools_noncentered")
    result = inference.run(spec, method="nuts", backend="pyro", seed=0, num_warmup=500, num_samples=1000, num_chains=2)
    assert_rare_divergences(result)
    assert_matches_reference(result, spec.reference)


def test_noncentered_eight_schools_has_no_divergences_and_no_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", inference.InferenceWarning)
        result = inference.run("eight_schools-eight_schools_noncentered", method="nuts", backend="numpyro", seed=1,
                               **SETTINGS)
    assert int(result.sample_stats["diverging"].sum()) == 0 and not result.warnings


def test_centered_eight_schools_is_reported_divergent():
    with pytest.warns(inference.InferenceWarning, match="diverged"):
        result = inference.run("eight_schools-eight_schools_centered", method="nuts", backend="numpyro", seed=0,
                               **SETTINGS)
    assert int(result.sample_stats["diverging"].sum()) > 0
    assert any("diverged" in w for w in result.warnings)
