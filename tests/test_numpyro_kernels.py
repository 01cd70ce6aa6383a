"""NumPyro's other MCMC kernels as methods (sa, barker, aies, ensemble_slice), each through the same
runner as NUTS (inference/backends/numpyro_mcmc.py, which names no method), against posteriordb's
reference for the non-centered eight schools.

A mean (sd) passes within 4 combined Monte Carlo standard errors, sqrt(mcse^2 + mcse_ref^2), of the
reference's (``inference.diagnostics.score``), as in test_nuts_reference. These samplers mix far
more slowly than NUTS, hence the longer runs below, each the shortest that passed in every seed
tried (SA 5 of 5 seeds; Barker, AIES and ensemble slice 4 of 4; half the draws failed one seed in
3 or 4 for each). A pass must not come from huge MCSEs (a stranded walker once made every tolerance
wide): each tolerance is also asserted to be under half a reference sd."""
import numpy as np
import pytest

import inference
import ppl_models
from inference.diagnostics import score
from inference.options import resolve_options
from inference.registry import method_names
from ppl_models.errors import UnknownChoiceError

MODEL = "eight_schools-eight_schools_noncentered"  # 10 unconstrained latent dimensions
DIM = 10
# method -> (options, per-draw statistics it records)
RUNS = {
    # SA's defaults: 10000 + 10000 (5000 + 5000 failed tau's mean in 1 of 3 seeds)
    "sa": ({}, {"acceptance_rate", "lp"}),
    # Barker's defaults: 5000 + 5000 (2000 + 2000 failed in 1 of 4 seeds)
    "barker": ({}, {"acceptance_rate", "step_size", "lp", "n_steps"}),
    # AIES's defaults: 5000 + 5000, 40 walkers (4 per dimension)
    "aies": ({}, set()),
    # ensemble slice, 40 walkers: 2000 + 2000 (its defaults; 1000 + 1000 failed in 1 of 4 seeds)
    "ensemble_slice": ({}, set()),
}


@pytest.fixture(scope="module")
def spec():
    return ppl_models.get_model(MODEL)


@pytest.mark.parametrize("method", sorted(RUNS))
def test_matches_the_eight_schools_reference(spec, method):
    options, stats = RUNS[method]
    result = inference.run(spec, method=method, backend="numpyro", seed=0, **options)
    s = score(result.samples, spec.reference)
    assert s["mean_ok"].all() and s["sd_ok"].all(), s
    assert (s["tol_mean"] < 0.5 * s["ref_sd"]).all() and (s["tol_sd"] < 0.5 * s["ref_sd"]).all(), s
    assert set(result.sample_stats) == stats
    chains = next(iter(result.samples.values())).shape[0]
    if method in ("aies", "ensemble_slice"):
        assert chains == 4 * DIM and result.info["chain_method"] == "vectorized"
        assert result.info["options"]["num_chains"] == 4 * DIM
    else:
        assert chains == 4
    if method == "barker":  # one gradient a draw
        assert (result.sample_stats["n_steps"] == 1).all()
        assert 0.2 < result.sample_stats["acceptance_rate"].mean() < 0.7  # adapted towards 0.4
    if "lp" in stats:
        assert np.isfinite(result.sample_stats["lp"]).all() and (result.sample_stats["lp"] < 0).all()
    if method == "aies":  # DE moves in 10 dimensions: about a quarter of walker updates accepted
        assert 0.1 < result.info["acceptance_rate"] < 0.5
    if method == "ensemble_slice":
        assert result.info["mu"] > 0


@pytest.mark.parametrize("method", ["aies", "ensemble_slice"])
@pytest.mark.parametrize("num_chains", [2, 10, 21])
def test_too_few_or_odd_walkers_are_refused_in_one_line(method, num_chains):
    with pytest.raises(ValueError) as e:
        inference.run(MODEL, method=method, backend="numpyro", num_chains=num_chains)
    message = str(e.value)
    assert "\n" not in message
    assert "needs num_chains >= 20, an even number" in message and f"not {num_chains}" in message, message


def test_library_keywords_pass_through_checked_against_numpyros_signatures():
    assert resolve_options("sa", "numpyro", {"adapt_state_size": 30})["library_options"] == {"adapt_state_size": 30}
    assert resolve_options("ensemble_slice", "numpyro", {"tune_mu": False})["library_options"] == {"tune_mu": False}
    assert resolve_options("barker", "numpyro", {"adapt_mass_matrix": False})["library_options"] == {
        "adapt_mass_matrix": False}
    with pytest.raises(UnknownChoiceError, match="adapt_state_size"):
        resolve_options("sa", "numpyro", {"adapt_state_siz": 30})
    with pytest.raises(ValueError, match="step_size='big' for BarkerMH"):
        resolve_options("barker", "numpyro", {"step_size": "big"})
    # the layer's own options are not taken again as the library's
    with pytest.raises(UnknownChoiceError):
        resolve_options("aies", "numpyro", {"chain_method": "parallel"})  # ensembles run vectorized


def test_dense_sa_is_refused_while_numpyros_cholesky_update_is_wrong():
    from inference.methods.sa import cholesky_update_is_exact

    if cholesky_update_is_exact():
        pytest.skip("this NumPyro's cholesky_update is right: dense SA is allowed")
    with pytest.raises(ValueError, match="refuses dense_mass=True"):
        inference.run(MODEL, method="sa", backend="numpyro", dense_mass=True)


def test_the_mcmc_backend_names_no_method():
    from pathlib import Path

    import inference.backends.numpyro_mcmc as backend

    source = Path(backend.__file__).read_text()
    named = [m for m in method_names() if f'"{m}"' in source or f"'{m}'" in source]
    assert not named, named


def test_an_ensemble_that_crashed_resumes_where_it_stopped(tmp_path, monkeypatch):
    """An ensemble kernel's state holds one RNG key for all its walkers (not one per chain); sampling in
    checkpointed pieces, crashing after one and calling again ends as the uninterrupted checkpointed run."""
    import inference.checkpoint as checkpoint

    save = checkpoint.Checkpoint.save

    def save_then_crash(self, step, state, record):
        save(self, step, state, record)
        if step == 40:
            raise KeyboardInterrupt

    def fit(path):
        return inference.run(MODEL, method="aies", backend="numpyro", seed=3, num_warmup=100, num_samples=100,
                             num_chains=20, checkpoint=path, checkpoint_every=20)

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint.Checkpoint, "save", save_then_crash)
        with pytest.raises(KeyboardInterrupt):
            fit(tmp_path / "run.ckpt")
    resumed, whole = fit(tmp_path / "run.ckpt"), fit(tmp_path / "whole.ckpt")
    assert whole.samples["theta"].shape == (20, 100, 8)
    for key, value in whole.samples.items():
        np.testing.assert_allclose(resumed.samples[key], value, rtol=1e-12, atol=0, err_msg=key)
    assert resumed.info["acceptance_rate"] == whole.info["acceptance_rate"]


def test_moves_by_name_reach_numpyro_and_the_result_saves(tmp_path):
    """NumPyro takes moves as a dict keyed by functions; here they are named, so the result's record of its
    options stays plain data (a result with NumPyro's own dict of functions could not be saved)."""
    from numpyro.infer import AIES

    from inference.methods.aies import kernel

    built = kernel(lambda: None, {"randomize_split": False, "moves": {"stretch": 1.0}, "library_options": {}})
    assert [m.__name__ for m in built._moves] == ["stretch_move"]
    default = kernel(lambda: None, {"randomize_split": False, "moves": None, "library_options": {}})
    assert [m.__name__ for m in default._moves] == [AIES.DEMove().__name__]
    with pytest.raises(UnknownChoiceError, match="moves"):
        resolve_options("ensemble_slice", "numpyro", {"movs": {"gaussian": 1.0}})
    with pytest.raises(ValueError, match="'de', 'stretch'"):
        resolve_options("aies", "numpyro", {"moves": {"walk": 1.0}})
    r = inference.run(MODEL, method="aies", backend="numpyro", num_warmup=200, num_samples=50,
                      moves={"de": 0.5, "stretch": 0.5})
    assert r.info["options"]["moves"] == ["de", "stretch"]  # a dict option is recorded by its keys
    loaded = inference.load_result(r.save(tmp_path / "aies.npz"))
    assert loaded.info == r.info
