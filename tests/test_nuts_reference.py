"""NUTS against ground truth: every model with a reference, on NumPyro; eight schools on Pyro too.

Posterior means must lie within 4 sqrt(mcse^2 + mcse_ref^2) of the reference means,
and sds within 4 sqrt(mcse_sd^2 + mcse_sd_ref^2) of the reference sds (MCSEs from
ArviZ; zero for exact references). With about 10 to 350 such checks per model, a
correct sampler fails one by chance with probability below about 2%.
"""
import pytest

import inference
import ppl_models
from tests.reference_checks import assert_matches_reference

WITH_REFERENCE = [n for n in ppl_models.list_models() if ppl_models.get_model(n).reference is not None]
# The centered eight schools has a funnel: its draws are biased, and that is asserted separately.
UNBIASED = [n for n in WITH_REFERENCE if n != "eight_schools-eight_schools_centered"]
SETTINGS = dict(num_warmup=1000, num_samples=1000, num_chains=4)


@pytest.mark.parametrize("name", UNBIASED)
def test_numpyro_nuts_matches_reference(name):
    spec = ppl_models.get_model(name)
    result = inference.run(spec, method="nuts", backend="numpyro", seed=0, target_accept_prob=0.9, **SETTINGS)
    assert int(result.sample_stats["diverging"].sum()) == 0
    assert_matches_reference(result, spec.reference)


def test_pyro_nuts_matches_reference():
    spec = ppl_models.get_model("eight_schools-eight_schools_noncentered")
    result = inference.run(spec, method="nuts", backend="pyro", seed=0, num_warmup=500, num_samples=1000, num_chains=2)
    assert int(result.sample_stats["diverging"].sum()) == 0
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
