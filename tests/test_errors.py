"""Bad input gets a clear error naming the culprit, before anything runs."""
import dataclasses

import numpy as np
import pytest

import inference
import ppl_models
from inference import registry
from ppl_models import DataError, DeviceError, ModelSpec, SiteMismatchError, UnknownChoiceError
from ppl_models.generic import dist, for_backends, pyro

MODEL = "eight_schools-eight_schools_noncentered"


def normal_mean(n, y=None):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("obs", n):
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def guide_with_other_site(n, y=None):
    pyro.sample("nu", dist.Normal(pyro.param("loc", 0.0), 1.0))


def spec(**data):
    return ModelSpec("test-normal_mean", {"y": np.zeros(3), "n": 3, **data}, model=for_backends(normal_mean),
                     guide=for_backends(guide_with_other_site), data_dims={"y": ("n",)})


@pytest.fixture(autouse=True)
def no_run(monkeypatch):
    """Nothing may start: every runner is replaced by one that fails the test."""
    for name, entry in registry.methods().items():
        monkeypatch.setitem(registry._METHODS, name, dataclasses.replace(entry, runner=must_not_run))


def must_not_run(*args, **kwargs):
    raise AssertionError("inference started although the input was bad")


@pytest.mark.parametrize("kwargs,kind,culprit,valid", [
    (dict(model="eight_school"), "model", "eight_school", "eight_schools-eight_schools_noncentered"),
    (dict(method="nutz"), "method", "nutz", "nuts"),
    (dict(backend="stan"), "backend", "stan", "numpyro"),
    (dict(num_warmups=10), "option for method 'nuts'", "num_warmups", "num_warmup"),
    (dict(chain_method="threads"), "chain_method for backend 'numpyro'", "threads", "vectorized"),
])
def test_unknown_names_list_the_choices(kwargs, kind, culprit, valid):
    call = dict(model=MODEL, method="nuts", backend="numpyro") | kwargs
    model = call.pop("model")
    with pytest.raises(UnknownChoiceError) as e:
        inference.run(model, **call)
    message = str(e.value)
    assert kind in message and repr(culprit) in message and valid in message


@pytest.mark.parametrize("options,text", [
    (dict(method="svi", guide="laplace"), "valid choices: delta, iaf, lowrank, mvn, normal, spec"),
    (dict(method="svi", elbo="iwae", alpha=0.5), "alpha goes with elbo='renyi'"),
    (dict(method="svi", elbo="renyi"), "elbo='renyi' needs alpha"),
    (dict(method="svi", alpha=0.0), "alpha goes with elbo='renyi'"),
    (dict(method="svi", rank=2), "rank applies to guide='lowrank'"),
    (dict(method="nuts", num_samples=0), "num_samples=0 for method 'nuts' is invalid: expected an integer >= 1"),
    (dict(method="nuts", target_accept_prob=1.5), "expected a number in (0, 1)"),
    (dict(method="nuts", jit_compile=False), "jit_compile' applies to backend(s) pyro only"),
    (dict(method="nuts", seed=-1), "seed must be a non-negative integer"),
    (dict(method="svi", device="tpu"), "unknown device for method 'svi' 'tpu'; valid choices: cpu, cuda"),
    (dict(method="svi", learning_rate=float("inf")), "learning_rate=inf for method 'svi' is invalid: expected a "
                                                      "finite number > 0"),
    (dict(method="svi", learning_rate=float("nan")), "expected a finite number > 0"),
    (dict(method="hmc", trajectory_length=float("inf")), "expected a finite number > 0"),
    (dict(method="svi", elbo="renyi", alpha=float("-inf")), "expected a finite number other than 1"),
    (dict(method="mmd", bandwidth=(1.0, float("inf"))), "expected None, a number > 0 or a tuple of them"),
])
def test_bad_option_values(options, text):
    with pytest.raises(ValueError) as e:
        inference.run(MODEL, backend="numpyro", **options)
    assert text in str(e.value)


def test_pyro_chain_method_choices():
    with pytest.raises(UnknownChoiceError, match="'vectorized'.*valid choices: parallel, sequential"):
        inference.run(MODEL, method="nuts", backend="pyro", chain_method="vectorized")


def test_missing_data_key_is_named():
    s = ModelSpec("test-missing", {"y": np.zeros(3)}, model=for_backends(normal_mean))
    with pytest.raises(DataError, match=r"missing key\(s\) \['n'\]"):
        inference.run(s, method="nuts", backend="numpyro")


def test_misspelt_data_key_is_named():
    # a key the model does not take is dropped (data files carry other models' keys), unless it looks
    # like a misspelling of an argument that is not given (tests/test_bad_input.py runs the first case)
    s = ModelSpec("test-typo", {"Y": np.zeros(3), "n": 3}, model=for_backends(normal_mean))
    with pytest.raises(DataError, match=r"data has key 'Y' that the model normal_mean does not take \(did you mean "
                                        r"'y'\?"):
        inference.run(s, method="nuts", backend="pyro")
    with pytest.raises(DataError, match=r"missing key\(s\) \['n'\].*\(data has 'N' for 'n': misspelt\?\)"):
        inference.run(ModelSpec("test-typo", {"y": np.zeros(3), "N": 3}, model=for_backends(normal_mean)),
                      method="nuts", backend="numpyro")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_data_is_named(bad):
    with pytest.raises(DataError, match=r"data\['y'\] holds NaN or inf \(first at index \(1,\)\)"):
        spec(y=np.array([0.0, bad, 1.0]))


def test_wrong_shape_is_named():
    with pytest.raises(DataError, match=r"data\['y'\] has shape \(4,\); expected \('n',\) with n = 3"):
        spec(y=np.zeros(4))
    with pytest.raises(DataError, match=r"data\['sigma'\] has shape \(7,\)"):
        data = ppl_models.get_model(MODEL).data
        ModelSpec("test-shape", {**data, "sigma": np.ones(7)}, model=ppl_models.get_model(MODEL).model,
                  data_dims={"sigma": ("J",), "y": ("J",)})


def test_index_out_of_range_is_named():
    spec = ppl_models.get_model("radon_mn-radon_hierarchical_intercept_noncentered")
    data = dict(spec.data)
    data["county_idx"] = data["county_idx"].copy()
    data["county_idx"][7] = 85
    with pytest.raises(DataError, match=r"data\['county_idx'\] holds 85 at index 7, outside \[0, 85\)"):
        ModelSpec("test-radon", data, model=spec.model, index_bounds=spec.index_bounds)
    data["county_idx"] = data["county_idx"].astype(float)
    with pytest.raises(DataError, match=r"data\['county_idx'\] holds indices and must be integers"):
        ModelSpec("test-radon", data, model=spec.model, index_bounds=spec.index_bounds)


def test_non_numeric_data_is_refused():
    with pytest.raises(DataError, match=r"data\['y'\] has dtype <U1"):
        spec(y=np.array(["a", "b", "c"]))


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_mismatched_guide_names_the_sites(backend, monkeypatch):
    monkeypatch.undo()  # this check happens inside the runner, before optimization starts
    with pytest.raises(SiteMismatchError, match=r"\['mu'\] of the model are not sampled.*\['nu'\]"):
        inference.run(spec(), method="svi", backend=backend, guide="spec", num_steps=1)


def test_spec_guide_must_exist():
    with pytest.raises(UnknownChoiceError, match="'eight_schools-eight_schools_noncentered' has no guide of its own; "
                                                 "use one of: normal, mvn, lowrank, iaf, delta"):
        inference.run(MODEL, method="svi", backend="numpyro", guide="spec")
    with pytest.raises(UnknownChoiceError, match="has no guide of its own; use one of: prior"):
        inference.run(MODEL, method="is", backend="pyro", guide="spec")


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_cuda_without_a_gpu_is_a_clear_error(backend, monkeypatch):
    monkeypatch.undo()
    import importlib

    common = importlib.import_module(f"inference.backends.{backend}_common")
    try:
        common.torch_device("cuda") if backend == "pyro" else common.jax_device("cuda")
        pytest.skip("this machine has a GPU")
    except DeviceError:
        pass
    with pytest.raises(DeviceError, match="(?i)device='cuda' was asked for.*use device='cpu'") as err:
        inference.run(MODEL, method="svi", backend=backend, device="cuda", num_steps=1)
    # one short line, in the user's terms: not JAX's "no platforms that are instances of gpu are present"
    assert "\n" not in str(err.value) and len(str(err.value)) <= 140 and "instances of" not in str(err.value)


def test_model_must_be_name_or_spec():
    with pytest.raises(TypeError, match="registered name or a ModelSpec"):
        inference.run(42, method="nuts", backend="numpyro")


def test_spec_validation():
    with pytest.raises(UnknownChoiceError, match="'stan'"):
        ModelSpec("x", {}, model={"stan": normal_mean})
    with pytest.raises(ValueError, match="has a guide but no model for backend"):
        ModelSpec("x", {}, model={"pyro": normal_mean}, guide={"numpyro": normal_mean})
    with pytest.raises(UnknownChoiceError, match="backend for model 'x'"):
        inference.run(ModelSpec("x", {"y": np.zeros(3), "n": 3}, model={"pyro": normal_mean}),
                      method="nuts", backend="numpyro")


def test_generic_model_outside_a_backend():
    with pytest.raises(RuntimeError, match="outside a backend; bind the model with for_backends"):
        normal_mean(3)


def test_registering_a_name_twice():
    s = ModelSpec("test-registered", {"y": np.zeros(3), "n": 3}, model=for_backends(normal_mean))
    ppl_models.register_model(s)
    assert ppl_models.get_model("test-registered") is s and "test-registered" in ppl_models.list_models()
    with pytest.raises(ValueError, match="already registered"):
        ppl_models.register_model(s)
    ppl_models.register_model(s, overwrite=True)
