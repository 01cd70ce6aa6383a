"""The backend contract, over every (backend, method): shapes, ArviZ, files, reproducibility."""
import numpy as np
import pytest

import inference
from inference import arviz_compat

MODEL = "eight_schools-eight_schools_noncentered"
SHAPES = {"mu": (), "tau": (), "theta_trans": (8,), "theta": (8,)}
SMALL = {
    "nuts": dict(num_warmup=60, num_samples=40, num_chains=2),
    "hmc": dict(num_warmup=60, num_samples=40, num_chains=2, num_steps=8),
    "svi": dict(num_steps=60, num_samples=40),
}
CASES = [(b, m) for b in ("numpyro", "pyro") for m in SMALL]


@pytest.fixture(scope="module")
def runs():
    """Each (backend, method) run with seed 1 and with seed 2."""
    return {(b, m, seed): inference.run(MODEL, method=m, backend=b, seed=seed, **SMALL[m])
            for b, m in CASES for seed in (1, 2)}


@pytest.mark.parametrize("backend,method", CASES)
def test_shapes_and_stats(runs, backend, method):
    r = runs[backend, method, 1]
    chains, draws = (2, 40) if method != "svi" else (1, 40)
    assert {k: v.shape for k, v in r.samples.items()} == {k: (chains, draws, *s) for k, s in SHAPES.items()}
    assert all(np.isfinite(v).all() for v in r.samples.values())
    np.testing.assert_allclose(r.samples["theta"], r.samples["mu"][..., None]
                               + r.samples["tau"][..., None] * r.samples["theta_trans"], rtol=1e-6)
    if method == "svi":
        assert r.losses.shape == (60,) and np.isfinite(r.losses).all() and r.params
    else:
        assert r.sample_stats["diverging"].shape == (chains, draws)
        assert r.sample_stats["step_size"].shape == (chains, draws)
        assert (r.sample_stats["step_size"] > 0).all()
    assert set(r.observed_data) == {"y"}
    assert r.timing["wall"] > 0
    assert r.info["seed"] == 1 and r.info["device"] == "cpu" and r.info["dtype"] == "float64"
    assert backend in r.info["versions"]


@pytest.mark.parametrize("backend,method", CASES)
def test_same_seed_same_draws_other_seed_other_draws(runs, backend, method):
    again = inference.run(MODEL, method=method, backend=backend, seed=1, **SMALL[method])
    first, other = runs[backend, method, 1], runs[backend, method, 2]
    for k in SHAPES:
        np.testing.assert_array_equal(first.samples[k], again.samples[k])
        assert not np.array_equal(first.samples[k], other.samples[k])


@pytest.mark.parametrize("backend,method", CASES)
def test_save_load_round_trip(runs, backend, method, tmp_path):
    r = runs[backend, method, 1]
    loaded = inference.load_result(r.save(tmp_path / "run.npz"))
    assert (loaded.model, loaded.backend, loaded.method) == (r.model, r.backend, r.method)
    for group in ("samples", "sample_stats", "observed_data", "params"):
        a, b = getattr(r, group), getattr(loaded, group)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    assert loaded.info == r.info and loaded.timing == r.timing and loaded.warnings == r.warnings
    if r.losses is not None:
        np.testing.assert_array_equal(loaded.losses, r.losses)


@pytest.mark.parametrize("modern", [False, True])
@pytest.mark.parametrize("backend,method", [("numpyro", "nuts"), ("pyro", "svi")])
def test_arviz_conversion(runs, backend, method, modern):
    if modern:
        pytest.importorskip("arviz_base")
    r = runs[backend, method, 1]
    groups = {"posterior": r.samples, "sample_stats": r.sample_stats, "observed_data": r.observed_data}
    idata = arviz_compat.to_inference_data(groups, modern=modern)
    posterior = idata["posterior"] if modern else idata.posterior
    assert posterior["theta"].shape == r.samples["theta"].shape
    np.testing.assert_array_equal(np.asarray(posterior["mu"]), r.samples["mu"])
    observed = idata["observed_data"] if modern else idata.observed_data
    np.testing.assert_array_equal(np.asarray(observed["y"]), r.observed_data["y"])
    assert type(r.to_arviz()).__name__ == ("DataTree" if arviz_compat.MODERN else "InferenceData")


@pytest.mark.parametrize("modern", [False, True])
def test_arviz_diagnostics_agree_between_versions(modern):
    """The 0.x and 1.x paths of arviz_compat compute the same statistics (both tested here)."""
    if modern:
        pytest.importorskip("arviz_stats")
    x = np.random.default_rng(0).normal(size=(4, 500))
    ess = arviz_compat.ess(x, "bulk", modern=modern)
    assert 1500 < ess < 2500  # independent draws: ESS close to the 2000 draws
    assert abs(arviz_compat.rhat(x, modern=modern) - 1) < 0.01
    np.testing.assert_allclose(arviz_compat.mcse(x, modern=modern), x.std() / np.sqrt(ess), rtol=0.05)
    assert arviz_compat.ess(x, "tail", modern=modern) > 1000
    # independent energies: BFMI = E[(E_t - E_t-1)^2] / Var(E) = 2; per chain of 500, its sd is about 0.2
    np.testing.assert_allclose(arviz_compat.bfmi(x, modern=modern), 2.0, atol=0.6)
