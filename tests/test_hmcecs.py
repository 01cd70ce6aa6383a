"""HMCECS (``inference.methods.hmcecs``) against the exact posterior of a conjugate regression on
20000 points (``tests/hmcecs_regression.py``: normal-inverse-gamma, noise variance unknown, so the
Taylor proxy is not exact and its perturbation is there to be seen), and its one-line refusals.

Tolerances: a posterior mean passes within 4 Monte Carlo standard errors of the exact value (ArviZ's
``az.mcse``; the exact value has none), a posterior sd within 4 MCSEs of the sd
(``inference.diagnostics.score``); every tolerance is also asserted under a tenth of the posterior
sd, so that a pass cannot come from a useless chain.

HMCECS with the Taylor proxy samples the perturbed posterior, not the posterior. Its error here,
measured with 4 x 20000 draws (``python -m tests.hmcecs_regression perturbation``; 4 MCSEs: 0.013
posterior sd), was within that run's own 4 MCSEs, |mean error| and |sd error| <= 0.006 posterior
sd, at the default subsample (200 of the 20000 points, 100 blocks, degree 2, MAP reference), at 50
points in 25 blocks and at degree 1 alike: far under this test's tolerance of 4 MCSEs at 4 x 1000
draws (about 0.06 posterior sd), so the tolerance covers the perturbation honestly and is no wider
than Monte Carlo error asks. That the test can fail: with the reference at an arbitrary point (noise
variance 5, coefficients 0, where the posterior sits at 2.24 and (1, -2, 0.5)) the subsample's
acceptance fell to 0.08 and the means were 4 to 44 posterior sds off.
"""
import pytest

import inference
import inference.methods.hmcecs  # noqa: F401
from inference.diagnostics import score
from tests import hmcecs_regression as regression

NUM_DATA = 20000


def test_matches_the_exact_posterior_of_a_conjugate_regression():
    spec = regression.spec(NUM_DATA)
    result = inference.run(spec, method="hmcecs", backend="numpyro", seed=0, num_warmup=500, num_samples=1000)
    s = score(result.samples, spec.reference)
    assert s["mean_ok"].all() and s["sd_ok"].all(), s
    assert (s["tol_mean"] < 0.1 * s["ref_sd"]).all() and (s["tol_sd"] < 0.1 * s["ref_sd"]).all(), s
    assert result.info["plate"] == "data" and result.info["subsample_size"] == NUM_DATA // 100
    assert result.info["reference"] == "MAP"
    assert set(result.sample_stats) == {"diverging", "acceptance_rate", "n_steps", "step_size", "energy",
                                        "tree_depth", "subsample_acceptance_rate"}
    assert set(result.samples) == {"beta", "sigma2"}  # the subsample's indices are not draws
    # the block update keeps the subsample's likelihood estimate steady: nearly every proposal is taken
    assert result.sample_stats["subsample_acceptance_rate"].mean() > 0.9


@pytest.mark.parametrize("fn, says", [
    (regression.model_without_plate, "needs a data plate to subsample, and model 'synthetic1000-nig_regression' has "
                                      "none (observed site(s) ['y'] lie in no plate)"),
    (regression.model_not_subsampling, "model 'synthetic1000-nig_regression' fails with its plate 'data' subsampled "
                                        "to 100 points"),
])
def test_a_model_without_a_subsampled_data_plate_is_refused_in_one_line(fn, says):
    with pytest.raises(ValueError) as e:
        inference.run(regression.spec(1000, fn=fn), method="hmcecs", backend="numpyro")
    message = str(e.value)
    assert "\n" not in message and says in message, message
    assert "numpyro.subsample(x, event_dim=...)" in message, message


def test_a_subsample_as_big_as_the_data_is_refused():
    with pytest.raises(ValueError, match="subsample_size=1000 is not below the 1000 points of plate 'data'"):
        inference.run(regression.spec(1000), method="hmcecs", backend="numpyro", subsample_size=1000)
