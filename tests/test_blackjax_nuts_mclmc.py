"""BlackJAX's NUTS (``method="nuts", engine="blackjax"``) and MCLMC (the ``mclmc`` method) against the
posteriordb reference draws.

Tolerance, in every test: posterior means within 4 sqrt(mcse^2 + mcse_ref^2) of the reference
means, sds within 4 sqrt(mcse_sd^2 + mcse_sd_ref^2) of the reference sds, the MCSEs from ArviZ
(``inference.diagnostics.score``): the Monte Carlo error of both sides, not a number tuned until
the test passed. MCLMC has no Metropolis correction, so its bias is not in the MCSE; a bias larger
than the Monte Carlo error fails the test, as it should.
"""
import numpy as np
import pytest

import inference
import ppl_models
from inference.backends import blackjax_nuts
from tests.reference_checks import assert_matches_reference, assert_rare_divergences


def test_blackjax_nuts_matches_reference():
    # tolerance: 4 combined MCSE (ArviZ), see the module's docstring
    spec = ppl_models.get_model("eight_schools-eight_schools_noncentered")
    result = inference.run(spec, method="nuts", engine="blackjax", backend="numpyro", seed=0)
    assert result.info["runner"] == "inference.backends.blackjax_nuts.nuts"
    stats = result.sample_stats
    assert set(stats) == {"diverging", "acceptance_rate", "n_steps", "energy", "step_size"}
    assert all(v.shape == (4, 1000) for v in stats.values())
    # the non-centered eight schools has no funnel: divergences are rare (tests.reference_checks), and
    # the only warning a run may carry is the one that counts them
    assert_rare_divergences(result)
    assert ((stats["n_steps"] >= 1) & (stats["n_steps"] <= 2 ** 10 - 1)).all()
    assert (stats["step_size"] == stats["step_size"][:, :1]).all() and (stats["step_size"] > 0).all()
    assert not [w for w in result.warnings if "diverged" not in w], result.warnings
    assert_matches_reference(result, spec.reference)


def test_blackjax_nuts_max_tree_depth_caps_the_leapfrog_steps():
    """max_tree_depth is BlackJAX's max_num_doublings: at most 2**depth - 1 leapfrog steps a draw, as
    NumPyro's max_tree_depth; eight schools wants about 9, so a depth of 2 is reached."""
    import jax

    from inference.backends.numpyro_common import backend_context, to_backend
    from inference.potential import Potential

    spec = ppl_models.get_model("eight_schools-eight_schools_noncentered")
    with backend_context("cpu", "float64"):
        potential = Potential.of(spec.model_fn("numpyro"), to_backend(spec.data, "float64"))
        draws, stats = blackjax_nuts.nuts(potential, rng_key=jax.random.PRNGKey(0), num_warmup=100, num_samples=100,
                                          num_chains=2, target_accept_prob=0.8, max_tree_depth=2)
        n_steps = np.asarray(stats["n_steps"])
    assert draws.shape == (2, 100, potential.dim)
    assert n_steps.max() == 3 and n_steps.min() >= 1


@pytest.mark.parametrize("name", ["eight_schools-eight_schools_noncentered", "kidiq-kidscore_momiq"])
def test_mclmc_matches_reference(name):
    # tolerance: 4 combined MCSE (ArviZ), see the module's docstring; the method's default steps
    spec = ppl_models.get_model(name)
    result = inference.run(spec, method="mclmc", backend="numpyro", seed=0)
    stats = result.sample_stats
    assert set(stats) == {"n_steps", "energy_change", "step_size", "diverging"}
    assert all(v.shape == (4, 5000) for v in stats.values())
    assert (stats["n_steps"] == 2).all()  # the McLachlan integrator: two gradients a step
    assert int(stats["diverging"].sum()) == 0 and np.isfinite(stats["energy_change"]).all()
    assert not result.warnings
    assert_matches_reference(result, spec.reference)


def test_mclmc_is_registered_with_its_doc():
    method = inference.registry.get_method("mclmc")
    assert method.family == "mcmc" and method.backends == ("numpyro",)
    assert "Robnik" in method.doc
    with pytest.raises(ValueError, match="num_warmup"):
        inference.run("eight_schools-eight_schools_noncentered", method="mclmc", backend="numpyro", num_warmup=0)
