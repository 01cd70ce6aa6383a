"""nutpie's NUTS (``method="nuts", engine="nutpie"``) and nested
sampling (the ``nested`` method: jaxns through NumPyro) against ground truth.

Tolerance for posterior draws: means within 4 sqrt(mcse^2 + mcse_ref^2) of the reference means,
sds within 4 sqrt(mcse_sd^2 + mcse_sd_ref^2) of the reference sds (``inference.diagnostics.score``:
the Monte Carlo error of both sides). The log evidence: within 4 of jaxns's standard errors of the
conjugate regression's closed form.

Each part is skipped where its library is missing (the ``nutpie`` and ``nested`` extras).
"""
import importlib.metadata
import importlib.util

import numpy as np
import pytest
from scipy import stats

import inference
import ppl_models
from inference.diagnostics import reference_summary, score
from tests.reference_checks import assert_matches_reference

EIGHT = "eight_schools-eight_schools_noncentered"
CONJUGATE = "kidiq-conjugate_regression"


def _jaxns_version():
    try:
        return importlib.metadata.version("jaxns")
    except importlib.metadata.PackageNotFoundError:
        return None


needs_nutpie = pytest.mark.skipif(importlib.util.find_spec("nutpie") is None, reason="nutpie is not installed")
# numpyro.contrib.nested_sampling imports jaxns 2.x's API (jaxns.Model, jaxns.public.DefaultNestedSampler),
# which jaxns 3.0 removed
needs_jaxns = pytest.mark.skipif(_jaxns_version() is None or int(_jaxns_version().split(".")[0]) >= 3,
                                 reason=f"needs jaxns 2.6 (installed: {_jaxns_version()})")


def eight_schools_potential():
    from inference.backends.numpyro_common import backend_context, to_backend
    from inference.potential import Potential

    spec = ppl_models.get_model(EIGHT)
    with backend_context("cpu", "float64"):
        return Potential.of(spec.model_fn("numpyro"), to_backend(spec.data, "float64"))


# ------------------------------------------------------------------------------------------------ nutpie


@needs_nutpie
def test_nutpie_nuts_matches_reference():
    # tolerance: 4 combined MCSE (ArviZ), see the module's docstring
    spec = ppl_models.get_model(EIGHT)
    result = inference.run(spec, method="nuts", engine="nutpie", backend="numpyro", seed=0)
    assert result.info["runner"] == "inference.backends.nutpie_nuts.nuts"
    assert result.samples["theta"].shape == (4, 1000, 8) and result.samples["tau"].shape == (4, 1000)
    stats_ = result.sample_stats
    assert set(stats_) == {"diverging", "acceptance_rate", "n_steps", "tree_depth", "energy", "step_size", "lp"}
    assert all(v.shape == (4, 1000) for v in stats_.values())
    assert ((stats_["n_steps"] >= 1) & (stats_["n_steps"] <= 2 ** 10 - 1)).all()
    accept = stats_["acceptance_rate"]
    assert (stats_["step_size"] > 0).all() and ((accept >= 0) & (accept <= 1)).all()
    # a divergence or two can happen on the non-centered model (NumPyro's NUTS has none at seed 0); not dozens
    assert int(stats_["diverging"].sum()) <= 4
    assert_matches_reference(result, spec.reference)


@needs_nutpie
def test_nutpie_nuts_tree_depth_and_seed():
    """max_tree_depth caps the leapfrog steps at 2**depth - 1 (as NumPyro's), eight schools wants about
    7, so a depth of 2 is reached; the key decides the run."""
    import jax

    from inference.backends import nutpie_nuts
    from inference.backends.numpyro_common import backend_context

    potential = eight_schools_potential()
    kwargs = dict(num_warmup=100, num_samples=100, num_chains=2, target_accept_prob=0.8, max_tree_depth=2)
    with backend_context("cpu", "float64"):
        draws, stats_ = nutpie_nuts.nuts(potential, rng_key=jax.random.PRNGKey(0), **kwargs)
        again, _ = nutpie_nuts.nuts(potential, rng_key=jax.random.PRNGKey(0), **kwargs)
        other, _ = nutpie_nuts.nuts(potential, rng_key=jax.random.PRNGKey(1), **kwargs)
    assert draws.shape == (2, 100, potential.dim) and np.isfinite(draws).all()
    assert stats_["n_steps"].max() == 3 and stats_["n_steps"].min() >= 1 and stats_["tree_depth"].max() == 2
    np.testing.assert_array_equal(draws, again)
    assert not np.array_equal(draws, other)


@needs_nutpie
def test_nutpie_dense_mass_is_the_low_rank_mass_matrix():
    """dense_mass=True: nutpie's low-rank modified mass matrix, which adapts to the conjugate
    regression's correlation (-0.89): 2.6 leapfrog steps a draw at seed 0, to the diagonal's 5.6;
    the draws match the exact posterior moments (4 MCSE)."""
    spec = ppl_models.get_model(CONJUGATE)
    result = inference.run(spec, method="nuts", engine="nutpie", backend="numpyro", seed=0, dense_mass=True)
    assert result.sample_stats["n_steps"].mean() < 4
    assert_matches_reference(result, spec.reference)


# ------------------------------------------------------------------------------------------------ nested


def exact_log_evidence(spec) -> float:
    """log p(y) of the conjugate regression: y ~ Normal(0, sigma^2 I + prior_scale^2 X X^T)."""
    X, y, sigma, prior_scale = (spec.data[k] for k in ("X", "y", "sigma", "prior_scale"))
    return float(stats.multivariate_normal(np.zeros(len(y)), sigma**2 * np.eye(len(y))
                                           + prior_scale**2 * X @ X.T).logpdf(y))


@needs_jaxns
def test_nested_log_evidence_matches_exact():
    """Within 4 of jaxns's standard errors of the closed form (NumPyro's default, 25 live points per
    dimension: 50). Over seeds 0-3 the error was 0.86, -0.12, 1.16 and -0.21 standard errors."""
    spec = ppl_models.get_model(CONJUGATE)
    r = inference.run(spec, method="nested", backend="numpyro", seed=0)
    exact = exact_log_evidence(spec)
    assert r.info["family"] == "importance" and r.info["options"]["num_live_points"] == 50
    assert abs(r.log_evidence - exact) < 4 * r.log_evidence_se, (r.log_evidence, exact, r.log_evidence_se)
    assert 0 < r.log_evidence_se < 1.0
    assert r.info["termination"] == ["small remaining evidence (dlogz)"] and not r.warnings
    num = r.info["options"]["num_samples"]  # the weights' effective sample size, by default
    assert num == round(float(r.diagnostics["ess"])) and r.samples["beta"].shape == (1, num, 2)
    assert_matches_reference(r, spec.reference)  # the exact posterior moments: 4 MCSE of our draws


@needs_jaxns
def test_nested_eight_schools_matches_reference(tmp_path):
    """Means within 4 combined MCSE (ArviZ; see the module's docstring) of the reference; sds within 25%.
    100 live points, for time (NumPyro's default is 250): about 150 draws (the weights' ESS). The sds
    are held to less than 4 MCSE: of seeds 0-2, seed 1 drew theta[0]'s sd 0.19 sds low, more than 4
    of the MCSE ArviZ computes from the resampled draws, which sees neither the tails' few dead points
    nor the resampling. The log evidence (no closed form here) agreed across seeds 0-2 and 250 live
    points within 2 standard errors: -31.16, -31.44, -31.42 (se 0.12-0.14) and -31.32 (se 0.08)."""
    spec = ppl_models.get_model(EIGHT)
    r = inference.run(spec, method="nested", backend="numpyro", seed=0, num_live_points=100)
    num = r.info["options"]["num_samples"]
    assert set(r.samples) == {"mu", "tau", "theta_trans", "theta"} and r.samples["theta"].shape == (1, num, 8)
    assert 100 <= num <= 250 and not r.warnings
    assert abs(r.log_evidence - (-31.32)) < 4 * np.hypot(r.log_evidence_se, 0.08), r.log_evidence
    scores = score(r.samples, spec.reference)
    assert list(scores.index) == list(reference_summary(spec.reference).index)
    assert scores["mean_ok"].all(), f"means off by more than 4 MCSE:\n{scores[~scores['mean_ok']]}"
    assert ((scores["sd_ratio"] > 0.75) & (scores["sd_ratio"] < 1.25)).all(), scores
    loaded = inference.load_result(r.save(tmp_path / "nested.npz"))
    assert (loaded.log_evidence, loaded.log_evidence_se) == (r.log_evidence, r.log_evidence_se)


def folded_scale(y=None):
    """sigma ~ |Normal(0, 1)|, y_i ~ Normal(0, sigma): sigma's prior is folded at 0, the edge of its support."""
    import numpyro
    import numpyro.distributions as dist

    sigma = numpyro.sample("sigma", dist.FoldedDistribution(dist.Normal(0.0, 1.0)))
    numpyro.sample("y", dist.Normal(0.0, sigma).expand([len(y)]), obs=y)


@needs_jaxns
def test_nested_runs_a_prior_folded_at_zero():
    """jaxns evaluates the likelihood once at u = 0.5, where the folded prior gives sigma = 0: an invalid scale
    that stopped diamonds-diamonds with "Normal distribution got invalid scale parameter". The run must go on
    and match the log evidence and posterior mean of sigma, both by quadrature."""
    from ppl_models import ModelSpec

    y = np.array([0.8, -1.3, 0.4, 2.1, -0.6])
    spec = ModelSpec("test-folded_scale", {"y": y}, model={"numpyro": folded_scale})
    r = inference.run(spec, method="nested", backend="numpyro", seed=0, num_live_points=200)
    grid = np.linspace(1e-6, 12.0, 200_001)
    log_joint = stats.halfnorm.logpdf(grid) + stats.norm.logpdf(y[:, None], 0.0, grid).sum(0)
    joint = np.exp(log_joint - log_joint.max())
    log_z = np.log(np.trapezoid(joint, grid)) + log_joint.max()
    post = joint / np.trapezoid(joint, grid)
    mean = np.trapezoid(grid * post, grid)
    sd = np.sqrt(np.trapezoid((grid - mean) ** 2 * post, grid))
    # the quadrature's own error is below 1e-6; 0.05 is a floor under jaxns's se, not needed at this seed
    # (log Z off by 0.109 against 4 se = 0.32)
    assert abs(r.log_evidence - log_z) < 4 * r.log_evidence_se + 0.05, (r.log_evidence, r.log_evidence_se, log_z)
    draws = r.samples["sigma"].ravel()
    ess = float(r.diagnostics["ess"])
    assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(ess), (draws.mean(), mean, sd, ess)


def improper_mean(y=None):
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.ImproperUniform(dist.constraints.real, (), ()))
    numpyro.sample("y", dist.Normal(mu, 1.0).expand([len(y)]), obs=y)


@needs_jaxns
def test_nested_names_a_prior_without_an_inverse_cdf():
    from ppl_models import ModelSpec

    spec = ModelSpec("test-improper_mean", {"y": np.array([0.1, 0.5])}, model={"numpyro": improper_mean})
    with pytest.raises(ValueError, match="inverse CDF.*site 'mu' \\(ImproperUniform\\)"):
        inference.run(spec, method="nested", backend="numpyro")


def test_nested_refuses_float32():
    with pytest.raises(ValueError, match="float64"):
        inference.run(CONJUGATE, method="nested", backend="numpyro", dtype="float32")


def test_systematic_resampling_follows_the_weights():
    from inference.methods.nested import systematic_resample

    log_w = np.array([np.log(0.5), np.log(0.25), np.log(0.25), -np.inf])
    idx = systematic_resample(log_w, 400, np.random.default_rng(0))
    np.testing.assert_array_equal(np.bincount(idx, minlength=4), [200, 100, 100, 0])
    assert not (np.diff(idx) >= 0).all()  # shuffled
