"""The model contract, over every registered model.

* Pyro and NumPyro traces have the same latent, observed and deterministic sites, with the same shapes.
* A spec's own guide samples exactly the model's latent sites.
* The log joint density is finite at prior draws, on both backends.
* Pyro and NumPyro give the same log joint density at the same unconstrained point (1e-5 relative, float64).
"""
import numpy as np
import pytest

import ppl_models
from inference.contract import check_model, log_density_pairs
from ppl_models import ModelSpec
from ppl_models.errors import SiteMismatchError
from ppl_models.generic import dist, for_backends, pyro

MODELS = ppl_models.list_models()


@pytest.mark.parametrize("name", MODELS)
def test_model_contract(name):
    check_model(ppl_models.get_model(name), num_points=3, rtol=1e-5)


@pytest.mark.parametrize("name", ["eight_schools-eight_schools_noncentered", "kidiq-kidscore_momiq"])
def test_log_densities_agree_and_vary(name):
    """The cross-backend check compares distinct, finite values, not one constant."""
    pairs = log_density_pairs(ppl_models.get_model(name), num_points=4)
    values = np.array(pairs)
    assert np.isfinite(values).all()
    np.testing.assert_allclose(values[:, 0], values[:, 1], rtol=1e-5)
    assert len(set(np.round(values[:, 0], 6))) == 4


def _two_scales(scale_pyro, scale_numpyro):
    def model(y=None, scale=None):
        mu = pyro.sample("mu", dist.Normal(0.0, scale))
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    fns = for_backends(model)

    def pyro_model(y=None):
        return fns["pyro"](y=y, scale=scale_pyro)

    def numpyro_model(y=None):
        return fns["numpyro"](y=y, scale=scale_numpyro)

    return {"pyro": pyro_model, "numpyro": numpyro_model}


def test_contract_catches_backends_that_disagree():
    spec = ModelSpec("test-disagree", {"y": np.array(0.3)}, model=_two_scales(1.0, 2.0))
    with pytest.raises(AssertionError, match="log joint density"):
        check_model(spec)
    check_model(ModelSpec("test-agree", {"y": np.array(0.3)}, model=_two_scales(2.0, 2.0)))


def test_contract_catches_a_guide_with_other_sites():
    def model(y=None):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    def guide(y=None):
        pyro.sample("nu", dist.Normal(0.0, 1.0))

    spec = ModelSpec("test-guide", {"y": np.array(0.3)}, model=for_backends(model), guide=for_backends(guide))
    with pytest.raises(SiteMismatchError, match=r"\['mu'\].*\['nu'\]"):
        check_model(spec)


def test_contract_catches_site_names_that_differ_between_backends():
    def model_a(y=None):
        pyro.sample("y", dist.Normal(pyro.sample("mu", dist.Normal(0.0, 1.0)), 1.0), obs=y)

    def model_b(y=None):
        pyro.sample("y", dist.Normal(pyro.sample("m", dist.Normal(0.0, 1.0)), 1.0), obs=y)

    spec = ModelSpec("test-names", {"y": np.array(0.3)},
                     model={"pyro": for_backends(model_a)["pyro"], "numpyro": for_backends(model_b)["numpyro"]})
    with pytest.raises(AssertionError, match="sites differ"):
        check_model(spec)
