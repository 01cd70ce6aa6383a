"""Bad input to a user's own model gets a one-line error naming the culprit, raised before
inference runs (issue 14); and data that plain NumPyro or Pyro takes runs through the layer.

Every model here is written as a user would (``ppl_models.generic``, or plain Pyro), and the runs
that must succeed are a few steps or draws long."""
import numpy as np
import pytest

import inference
from inference.result import InferenceResult, load_result
from ppl_models import DataError, ModelSpec, UnknownChoiceError
from ppl_models.errors import OptionError, ResultFileError
from ppl_models.generic import dist, for_backends, pyro

BACKENDS = ["numpyro", "pyro"]
SHORT = {"nuts": dict(num_warmup=20, num_samples=20, num_chains=1),
         "svi": dict(num_steps=2, num_samples=2)}


def regression(x, y=None):
    a = pyro.sample("a", dist.Normal(0.0, 1.0))
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    with pyro.plate("obs", len(y)):
        pyro.sample("y", dist.Normal(a + b * x, 1.0), obs=y)


def normal_mean(y=None, n=None):
    mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
    with pyro.plate("obs", n):
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def coin(y=None, n=None):
    p = pyro.sample("p", dist.Beta(1.0, 1.0))
    with pyro.plate("obs", n):
        pyro.sample("y", dist.Bernoulli(p), obs=y)


def spec_of(model, data, **kwargs):
    return ModelSpec("test-bad_input", data, model=for_backends(model), **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_covariate_of_the_wrong_length_names_key_and_plate(backend):
    s = spec_of(regression, {"x": np.zeros(4), "y": np.zeros(3)})
    with pytest.raises(DataError, match=r"data\['x'\] has shape \(4,\), which fits none of the model's plates "
                                        r"'obs' \(size 3\)") as e:
        inference.run(s, method="nuts", backend=backend, **SHORT["nuts"])
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_observation_of_the_wrong_length_names_key_and_plate(backend):
    s = spec_of(normal_mean, {"y": np.zeros(4), "n": 3})
    with pytest.raises(DataError, match=r"data\['y'\].*\(4,\).*'obs' \(size 3\)") as e:
        inference.run(s, method="svi", backend=backend, **SHORT["svi"])
    assert "\n" not in str(e.value)


def shifted_mean(y=None, shift=None):
    mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
    with pyro.plate("obs", 3):
        pyro.sample("y", dist.Normal(mu + shift, 1.0), obs=y)


@pytest.mark.parametrize("backend,model,key", [("numpyro", normal_mean, "n"), ("numpyro", shifted_mean, "shift"),
                                               ("pyro", shifted_mean, "shift")])
def test_missing_key_left_at_none_is_named(backend, model, key):
    # an argument defaulting to None is not given: the model fails deep inside the library without this
    # check (NumPyro's plate: "'>' not supported between NoneType and int"; Pyro's plate takes size None)
    s = spec_of(model, {"y": np.zeros(3)})
    with pytest.raises(DataError, match=rf"data has no key\(s\) \['{key}'\], so the model's argument\(s\) of that "
                                        r"name were left at None and the model failed on its data \(TypeError"):
        inference.run(s, method="nuts", backend=backend, **SHORT["nuts"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_observation_left_out_is_named(backend):
    s = spec_of(normal_mean, {"n": 3})
    with pytest.raises(DataError, match=r"no key\(s\) \['y'\].*site\(s\) \['y'\] would be sampled as latent"):
        inference.run(s, method="nuts", backend=backend, **SHORT["nuts"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["nuts", "svi"])
def test_observation_outside_its_support_is_named(backend, method):
    s = spec_of(coin, {"y": np.array([0.0, 1.0, 1.0, 2.0, 2.0]), "n": 5})
    with pytest.raises(DataError, match=r"data\['y'\] \(observed at site 'y'\) holds 2.0 at index \(3,\), outside "
                                        r"the support .*\(2 such entries\)"):
        inference.run(s, method=method, backend=backend, **SHORT[method])


def _saved(tmp_path):
    return InferenceResult(model="m", backend="numpyro", method="nuts",
                           samples={"mu": np.arange(2000.0).reshape(1, 2000)}).save(tmp_path / "good.npz")


@pytest.mark.parametrize("kind,why", [
    ("truncated", "a truncated or corrupt .npz archive"),
    ("random", "not an .npz archive"),
    ("empty", "the file is empty"),
    ("foreign_npz", "without the 'meta' entry a result has"),
    ("foreign_npy", "a single numpy array"),
    ("bad_meta", "lacks"),
])
def test_load_result_names_the_file_and_what_is_wrong(tmp_path, kind, why):
    good = _saved(tmp_path)
    bad = tmp_path / f"{kind}.npz"
    if kind == "truncated":
        bad.write_bytes(good.read_bytes()[:-200])
    elif kind == "random":
        bad.write_bytes(np.random.default_rng(0).bytes(1000))
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "foreign_npz":
        np.savez(bad, a=np.zeros(3))
    elif kind == "foreign_npy":
        with open(bad, "wb") as f:
            np.save(f, np.zeros(3))
    else:
        np.savez(bad, meta=np.array('{"format_version": 1}'))
    with pytest.raises(ResultFileError, match=f"{kind}.npz' is not a result written by InferenceResult.save: "
                                              f".*{why}") as e:
        load_result(bad)
    assert "\n" not in str(e.value)
    assert load_result(good).samples["mu"].shape == (1, 2000)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rank_above_the_latent_dimensions_is_refused(backend):
    s = spec_of(regression, {"x": np.zeros(3), "y": np.zeros(3)})  # 2 latent dimensions
    with pytest.raises(OptionError, match=r"rank=3 for guide='lowrank' is above the 2 latent dimension\(s\)"):
        inference.run(s, method="svi", backend=backend, guide="lowrank", rank=3, num_steps=2)


def truncated_student_t(y=None, n=None):
    from numpyro.distributions import TruncatedDistribution

    tau = pyro.sample("tau", TruncatedDistribution(dist.StudentT(3.0, 0.0, 10.0), low=0.0))
    with pyro.plate("obs", n):
        pyro.sample("y", dist.Normal(0.0, tau), obs=y)


def test_nuts_runs_on_a_prior_numpyro_cannot_draw_from():
    """Drawing from a truncated StudentT needs TensorFlow Probability (betaincinv); plain NumPyro NUTS
    never draws from the prior, and neither may the layer, to learn the sites."""
    s = ModelSpec("test-truncated_t", {"y": np.array([1.0, -2.0, 0.5]), "n": 3},
                  model={"numpyro": for_backends(truncated_student_t)["numpyro"]})
    r = inference.run(s, method="nuts", backend="numpyro", **SHORT["nuts"])
    assert r.samples["tau"].shape == (1, 20) and (r.samples["tau"] > 0).all()


def test_data_file_keys_the_model_does_not_take_are_ignored_and_recorded():
    data = {"y": np.array([0.8, 1.4, 0.3]), "n": 3, "x": np.zeros(3), "K": 2}  # a data file of several models
    r = inference.run(spec_of(normal_mean, data), method="svi", backend="pyro", **SHORT["svi"])
    assert r.info["data_keys_ignored"] == ["K", "x"]
    with pytest.raises(DataError, match=r"data has key 'Y' that the model normal_mean does not take "
                                        r"\(did you mean 'y'\?"):
        inference.run(spec_of(normal_mean, {"Y": data["y"], "n": 3}), method="svi", backend="numpyro")


def integer_covariates(x, idx, y=None):
    """``x`` (integers) enters arithmetic, ``idx`` (integers, undeclared) indexes."""
    a = pyro.sample("a", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    with pyro.plate("obs", len(y)):
        pyro.sample("y", dist.Normal(a[idx] + b * (x - x.mean()), 1.0), obs=y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_covariates_and_indices(backend):
    data = {"x": np.array([1, 2, 3, 5]), "idx": np.array([0, 1, 1, 0]), "y": np.array([0.5, 1.0, 1.5, 2.5])}
    r = inference.run(spec_of(integer_covariates, data), method="svi", backend=backend, **SHORT["svi"])
    assert r.samples["a"].shape == (1, 2, 2)


def test_integer_observations_of_a_discrete_distribution():
    # NumPyro takes them as they are; torch's Bernoulli log density refuses a Long tensor
    r = inference.run(spec_of(coin, {"y": np.array([0, 1, 1, 0]), "n": 4}), method="svi", backend="pyro",
                      **SHORT["svi"])
    assert r.samples["p"].shape == (1, 2)


def _pyro_vae(dtype):
    """A VAE as Pyro's examples write it: networks as attributes of an ``nn.Module`` (float32, torch's
    default), registered with ``pyro.module`` in the model and the guide."""
    import pyro as pyro_
    import pyro.distributions as pdist
    import torch
    from torch import nn

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder, self.encoder = nn.Linear(2, 4, dtype=torch.float32), nn.Linear(4, 4, dtype=torch.float32)

        def model(self, x):
            pyro_.module("decoder", self.decoder)
            with pyro_.plate("data", x.shape[0]):
                z = pyro_.sample("z", pdist.Normal(torch.zeros(2), 1.0).to_event(1))
                pyro_.sample("x", pdist.Bernoulli(logits=self.decoder(z)).to_event(1), obs=x)

        def guide(self, x):
            pyro_.module("encoder", self.encoder)
            with pyro_.plate("data", x.shape[0]):
                loc, log_scale = self.encoder(x).chunk(2, -1)
                pyro_.sample("z", pdist.Normal(loc, log_scale.exp()).to_event(1))

    vae = VAE()
    x = (np.random.default_rng(0).random((8, 4)) < 0.5).astype(dtype)
    return ModelSpec("test-pyro_vae", {"x": x}, model={"pyro": vae.model}, guide={"pyro": vae.guide})


def test_float32_network_with_float32_data_runs_in_float32():
    r = inference.run(_pyro_vae(np.float32), method="svi", backend="pyro", guide="spec", **SHORT["svi"])
    assert r.info["dtype"] == "float32" and r.samples["z"].dtype == np.float32


def test_float32_network_with_float64_data_names_the_mismatch():
    with pytest.raises(DataError, match=r"network parameters are float32 \(parameter 'decoder\$\$\$\w+'\), but this "
                                        r"run is float64.*dtype='float32'"):
        inference.run(_pyro_vae(np.float64), method="svi", backend="pyro", guide="spec", **SHORT["svi"])


def test_spec_guide_for_a_model_without_one_lists_the_autoguides():
    s = spec_of(normal_mean, {"y": np.zeros(3), "n": 3})
    with pytest.raises(UnknownChoiceError, match=r"'test-bad_input' has no guide of its own; use one of: normal, mvn, "
                                                 r"lowrank, iaf, delta"):
        inference.run(s, method="svi", backend="numpyro", guide="spec")


def test_contract_checks_a_prior_numpyro_cannot_draw_from():
    from inference.contract import check_model

    check_model(ModelSpec("test-truncated_t", {"y": np.array([1.0, -2.0, 0.5]), "n": 3},
                          model={"numpyro": for_backends(truncated_student_t)["numpyro"]}), num_points=1)
