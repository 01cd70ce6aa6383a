"""Importance sampling against exact evidence: PPCA on MNIST (local latents) and a conjugate toy (a global one).

IS estimates must lie within 3 of their own standard errors of the exact log p(x); a poor
proposal must be diagnosed (PSIS k-hat > 0.7, a warning), not silently reported.
"""
import numpy as np
import pytest
from scipy import stats

import inference
import ppl_models
from inference.importance import estimate, iwae_bounds
from ppl_models import ModelSpec, Reference
from ppl_models.generic import dist, for_backends, pyro

SVI = {"numpyro": {}, "pyro": {"jit_compile": True}}


@pytest.fixture(scope="module")
def ppca():
    return ppl_models.get_model("mnist-ppca")


@pytest.fixture(scope="module")
def fitted(ppca):
    """The PPCA guide fitted by SVI on each backend."""
    return {b: inference.run(ppca, method="svi", backend=b, guide="spec", num_steps=3000, learning_rate=0.02,
                             lr_decay=0.05, seed=0, **SVI[b]) for b in ("numpyro", "pyro")}


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_is_with_fitted_guide_matches_exact_evidence(ppca, fitted, backend):
    exact = float(ppca.reference.extra["log_evidence"])
    r = inference.run(ppca, method="is", backend=backend, params=fitted[backend].params, num_samples=500, seed=1)
    assert r.info["options"]["guide"] == "spec"  # the model's own guide is the default proposal
    assert r.log_weights.shape == (500, 20) and r.samples["z"].shape == (1, 500, 20, 5)
    assert abs(r.log_evidence - exact) < 3 * r.log_evidence_se
    assert r.log_evidence_se < 0.1 and (r.diagnostics["khat"] < 0.7).all() and not r.warnings
    # each data point's estimate, too
    per_point = ppca.reference.extra["log_evidence_per_point"]
    se = r.log_weights.std(0) / np.sqrt(500)  # weights are near 1 here, so this is the per-point se
    assert (np.abs(r.diagnostics["log_evidence_per_point"] - per_point) < 4 * se + 1e-3).all()
    # resampled draws follow the exact posterior (resampling halves the effective sample size at most)
    mean, sd = ppca.reference.mean["z"], ppca.reference.sd["z"]
    ess = r.diagnostics["ess"][:, None]
    assert (np.abs(r.samples["z"][0].mean(0) - mean) < 4 * sd * np.sqrt(2 / ess)).all()


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_elbo_is_below_the_exact_evidence(ppca, fitted, backend):
    exact = float(ppca.reference.extra["log_evidence"])
    losses = fitted[backend].losses[-500:]
    elbo, se = -losses.mean(), losses.std() / np.sqrt(len(losses))
    assert elbo < exact + 3 * se
    assert elbo > exact - 5  # and the guide is a good one (the gap is the KL, here under a nat)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_prior_proposal_is_diagnosed_as_poor(ppca, backend):
    with pytest.warns(inference.InferenceWarning, match="k-hat > 0.7 for 20 of 20"):
        r = inference.run(ppca, method="is", backend=backend, guide="prior", num_samples=200)
    assert (r.diagnostics["khat"] > 0.7).all() and any("k-hat" in w for w in r.warnings)


def normal_mean(y=None, n=None):
    """mu ~ Normal(0, 1); y_i ~ Normal(mu, 1): y ~ Normal(0, I + 11^T) exactly."""
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("obs", n):
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_joint_is_with_a_global_latent(backend):
    y = np.array([0.3, -0.4, 1.2, 0.8])
    exact = stats.multivariate_normal(np.zeros(4), np.eye(4) + 1.0).logpdf(y)
    spec = ModelSpec("test-normal_mean", {"y": y, "n": 4}, model=for_backends(normal_mean),
                     reference=Reference(mean={"mu": y.sum() / 5}, sd={"mu": np.sqrt(1 / 5)}))
    r = inference.run(spec, method="is", backend=backend, num_samples=4000, seed=0)
    assert r.info["options"]["guide"] == "prior" and r.log_weights.shape == (4000,)
    assert abs(r.log_evidence - exact) < 3 * r.log_evidence_se and r.log_evidence_se < 0.05
    assert abs(r.samples["mu"].mean() - y.sum() / 5) < 4 * np.sqrt(1 / 5) * np.sqrt(2 / r.diagnostics["ess"])


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_iwae_bound_rises_with_k_towards_the_evidence(ppca, fitted, backend):
    """With an over-dispersed proposal (the fitted guide's scales tripled), ELBO < IWAE_5 < IWAE_50 < log p(x)."""
    params = {**fitted[backend].params, "z_scale": 3 * np.asarray(fitted[backend].params["z_scale"])}
    r = inference.run(ppca, method="is", backend=backend, params=params, num_samples=2000, seed=2)
    bounds = iwae_bounds(r.log_weights, [1, 5, 50])
    exact = float(ppca.reference.extra["log_evidence"])
    (b1, se1), (b5, se5), (b50, se50) = bounds[1], bounds[5], bounds[50]
    assert b1 + 3 * np.hypot(se1, se5) < b5 and b5 + 3 * np.hypot(se5, se50) < b50
    assert b50 < exact + 3 * se50
    assert exact - b1 > 10 * (exact - b50) > 0  # most of the ELBO's gap is closed by k = 50


def test_chunks_do_not_change_the_answer(ppca, fitted):
    params = fitted["numpyro"].params
    whole = inference.run(ppca, method="is", backend="numpyro", params=params, num_samples=300, chunk_size=300)
    chunked = inference.run(ppca, method="is", backend="numpyro", params=params, num_samples=300, chunk_size=64)
    np.testing.assert_allclose(whole.log_weights, chunked.log_weights, rtol=1e-10)


def test_is_result_round_trip(ppca, fitted, tmp_path):
    r = inference.run(ppca, method="is", backend="pyro", params=fitted["pyro"].params, num_samples=50)
    loaded = inference.load_result(r.save(tmp_path / "is.npz"))
    assert loaded.log_evidence == r.log_evidence and loaded.log_evidence_se == r.log_evidence_se
    np.testing.assert_array_equal(loaded.log_weights, r.log_weights)
    np.testing.assert_array_equal(loaded.diagnostics["khat"], r.diagnostics["khat"])


def test_estimate_against_known_weights():
    """Equal weights give log p = log w exactly, zero se and ESS = K; the se formula matches a simulation."""
    est = estimate(np.full((100, 3), -2.0))
    np.testing.assert_allclose(est["log_evidence_per_point"], -2.0)
    assert est["log_evidence_se"] == 0 and np.allclose(est["ess"], 100)
    rng = np.random.default_rng(0)
    lw = rng.normal(0, 0.5, size=(1000, 400))  # 400 independent estimates from K = 1000 weights each
    est = estimate(lw)
    np.testing.assert_allclose(est["log_evidence_per_point"].std(), np.sqrt((est["log_evidence_se"] ** 2) / 400),
                               rtol=0.15)


def test_is_options_are_checked():
    with pytest.raises(ValueError, match="params.*expected a dict"):
        inference.run("mnist-ppca", method="is", backend="numpyro", params=[1, 2])
    with pytest.raises(ppl_models.UnknownChoiceError, match="guide for method 'is' 'normal'"):
        inference.run("mnist-ppca", method="is", backend="numpyro", guide="normal")
    with pytest.raises(ppl_models.UnknownChoiceError, match="'kidiq-conjugate_regression' has no guide of its own"):
        inference.run("kidiq-conjugate_regression", method="is", backend="numpyro", guide="spec")
