"""ChEES-HMC (the ``chees`` method, BlackJAX's ``chees_adaptation`` and ``dynamic_hmc``) against the
posteriordb reference draws.

Tolerance: posterior means within 4 sqrt(mcse^2 + mcse_ref^2) of the reference means, sds within
4 sqrt(mcse_sd^2 + mcse_sd_ref^2) of the reference sds, the MCSEs from ArviZ
(``tests.reference_checks``): the Monte Carlo error of both sides, not a number tuned until the
test passed.

Two posteriors: eight schools (non-centered), from the layer's uniform starts (``init="uniform"``:
ChEES alone, no Pathfinder); and kidiq-kidscore_momiq with the defaults: its intercept and slope
are correlated and their scales 100 apart (mom_iq is not centered), and from uniform starts most
chains never move (their gradients are 1e7, the shared step size 0.01), which the default
Pathfinder starts are there to fix.
"""
import numpy as np
import pytest

import inference
import inference.methods.chees  # noqa: F401  (registers "chees" until it is in registry.BUILTINS)
import ppl_models
from tests.reference_checks import assert_matches_reference

STATS = {"diverging", "acceptance_rate", "n_steps", "energy", "step_size"}


def check_stats(stats, num_chains, num_samples):
    assert set(stats) == STATS
    assert all(v.shape == (num_chains, num_samples) for v in stats.values())
    # ChEES targets an acceptance of 0.651, below NUTS's 0.8: a rare divergence is no defect (eight schools,
    # seed 1: 2 of 8000), a stuck chain is (500 of 8000 and more, every draw of it)
    assert int(stats["diverging"].sum()) <= 0.001 * num_chains * num_samples
    assert ((stats["acceptance_rate"] >= 0) & (stats["acceptance_rate"] <= 1)).all()
    # the jitter is shared by the chains: every chain takes the same number of leapfrog steps at a draw
    assert (stats["n_steps"] >= 1).all() and (stats["n_steps"] == stats["n_steps"][:1]).all()
    assert len(np.unique(stats["n_steps"])) > 1  # jittered trajectory lengths
    assert (stats["step_size"] == stats["step_size"][0, 0]).all() and stats["step_size"][0, 0] > 0
    assert np.isfinite(stats["energy"]).all()


@pytest.mark.parametrize("name, options", [
    ("eight_schools-eight_schools_noncentered", {"init": "uniform"}),
    ("kidiq-kidscore_momiq", {}),
])
def test_chees_matches_reference(name, options):
    # tolerance: 4 combined MCSE (ArviZ), see the module's docstring
    spec = ppl_models.get_model(name)
    result = inference.run(spec, method="chees", backend="numpyro", seed=0, **options)
    check_stats(result.sample_stats, 16, 500)
    # no R-hat (chains mixed) or ESS (over 100 per chain) warning; divergences are checked above
    assert not [w for w in result.warnings if "diverged" not in w], result.warnings
    assert_matches_reference(result, spec.reference)


def test_chees_is_registered_with_its_doc():
    method = inference.registry.get_method("chees")
    assert method.family == "mcmc" and method.backends == ("numpyro",)
    assert "Hoffman" in method.doc and method.options["target_accept_prob"].default == 0.651


@pytest.mark.parametrize("option, value", [("num_chains", 1), ("learning_rate", 0.0), ("init", "prior")])
def test_chees_bad_option_names_it(option, value):
    with pytest.raises(ValueError) as info:
        inference.run("eight_schools-eight_schools_noncentered", method="chees", backend="numpyro",
                      **{option: value})
    message = str(info.value)
    assert option in message and "\n" not in message.strip()
