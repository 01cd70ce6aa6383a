"""The backend contract, over every registered method and backend (``inference.registry``):
shapes, ArviZ, files, reproducibility. A new built-in method is covered here without a new test.

Methods that fit something other than a model's latents are left out, each with its reason: the
likelihood-free family (implicit models only) and methods whose checks refuse eight schools (AVB
needs a model with its own implicit guide)."""
import numpy as np
import pytest

import inference
import ppl_models
from inference import arviz_compat
from inference.options import resolve_options
from inference.registry import methods

MODEL = "eight_schools-eight_schools_noncentered"
SHAPES = {"mu": (), "tau": (), "theta_trans": (8,), "theta": (8,)}
# a short run of any method, by what its options mean in its family
SMALL = {"num_warmup": 60, "num_samples": 40, "num_chains": 2, "num_live_points": 50, "num_paths": 2, "num_runs": 2,
         "init": "uniform"}  # init: ChEES starts from Pathfinder draws by default, whose compilation is slow
SMALL_STEPS = {"mcmc": 8, "vi": 60}  # num_steps: leapfrog steps per iteration (HMC), optimization steps (VI)


def small(method) -> dict:
    out = {k: v for k, v in SMALL.items() if k in method.options}
    if "num_steps" in method.options and method.family in SMALL_STEPS:
        out["num_steps"] = SMALL_STEPS[method.family]
    if method.family == "importance" and "num_particles" in method.options:  # SMC's particles are its draws
        out["num_particles"] = 40
    return out


def excluded(method, backend) -> str | None:
    """Why ``method`` is not run here on ``backend``, or None."""
    if not method.posterior:
        return f"{method.name} ({method.family}) fits implicit models, not eight schools' latents"
    spec = ppl_models.get_model(MODEL)
    try:
        options = resolve_options(method.name, backend, small(method))
        if method.prepare is not None:
            method.prepare(spec, backend, options)
    except ValueError as e:
        return f"{method.name} refuses eight schools: {e}"
    return None


ALL = [(b, m) for m in methods().values() for b in m.backends]
CASES = [(b, m.name) for b, m in ALL if excluded(m, b) is None]
SKIPPED = {f"{b}-{m.name}": excluded(m, b) for b, m in ALL if excluded(m, b) is not None}


@pytest.fixture(scope="module")
def runs():
    """Each (backend, method) run with seed 1 and with seed 2."""
    table = methods()
    return {(b, m, seed): inference.run(MODEL, method=m, backend=b, seed=seed, **small(table[m]))
            for b, m in CASES for seed in (1, 2)}


@pytest.mark.parametrize("case", sorted(SKIPPED))
def test_methods_left_out_say_why(case):
    pytest.skip(SKIPPED[case])


@pytest.mark.parametrize("backend,method", CASES)
def test_shapes_and_stats(runs, backend, method):
    r = runs[backend, method, 1]
    leading = {v.shape[:2] for v in r.samples.values()}
    assert len(leading) == 1 and min(next(iter(leading))) > 0, leading
    chains, draws = leading.pop()
    assert {k: v.shape for k, v in r.samples.items()} == {k: (chains, draws, *s) for k, s in SHAPES.items()}
    assert all(np.isfinite(v).all() for v in r.samples.values())
    np.testing.assert_allclose(r.samples["theta"], r.samples["mu"][..., None]
                               + r.samples["tau"][..., None] * r.samples["theta_trans"], rtol=1e-6)
    family = methods()[method].family
    if family == "vi" and "num_steps" in methods()[method].options:  # trained by steps (Pathfinder is not)
        assert r.losses.shape == (60,) and np.isfinite(r.losses).all() and r.params
    if family == "mcmc":
        assert (chains, draws) == (2, 40)
        for stat in r.sample_stats.values():
            assert stat.shape[:2] == (chains, draws)
        if "step_size" in r.sample_stats:
            assert (r.sample_stats["step_size"] > 0).all()
    assert set(r.observed_data) == {"y"}
    assert r.timing["wall"] > 0
    assert r.info["seed"] == 1 and r.info["device"] == "cpu" and r.info["dtype"] == "float64"
    assert r.info["family"] == family and backend in r.info["versions"]


@pytest.mark.parametrize("backend,method", CASES)
def test_same_seed_same_draws_other_seed_other_draws(runs, backend, method):
    again = inference.run(MODEL, method=method, backend=backend, seed=1, **small(methods()[method]))
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
