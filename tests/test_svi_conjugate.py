"""SVI against an exact posterior (kidiq-conjugate_regression, posterior correlation -0.89).

* A full-rank Gaussian guide (``mvn``) matches the exact posterior mean and sds.
* A mean-field guide (``normal``) matches the exact mean, and its sds match the
  KL(q || p)-optimal mean-field sds, 1 / sqrt(diag(precision)): about 0.46 times the
  true sds. The under-dispersion is asserted, not hidden.

* Each guide draw's importance weight log p(x, z) - log q(z) is exact: the closed-form log
  evidence plus the log ratio of the exact posterior to the fitted Gaussian guide, at the draw;
  their mean, the reported ELBO, is within 4 standard errors of log p(x) - KL(q || posterior).
  The mean-field guide's PSIS k-hat is where draws from the exact mean-field Gaussian put it.

Tolerance: 4 Monte Carlo standard errors of 2000 independent guide draws (means:
4 sd / sqrt(2000), sds: 4 sd / sqrt(2 * 2000)). The schedule (Adam, learning rate
0.1 decaying to 0.001 over 8000 steps) leaves an optimization error of at most
about 3% of an sd over seeds 0-3 on both backends (benchmarks/RESULTS.md), half the tolerance.

* With the default options (only guide="mvn": 5000 steps of Adam, step size 0.1 decaying to
  0.001, one particle), the fitted full-rank guide ends within 0.1 posterior sd of the exact
  mean and its sds within 10% of the exact ones, without a "not converged" warning; a run cut
  short, or the old constant step size 0.01, is warned about (inference/convergence.py).
"""
import numpy as np
import pytest
from scipy import stats

import inference
import ppl_models
from inference.arviz_compat import psis_khat

NUM_DRAWS = 2000
SETTINGS = dict(num_steps=8000, learning_rate=0.1, lr_decay=0.01, num_samples=NUM_DRAWS)
PARTICLES = {"numpyro": dict(num_particles=8), "pyro": dict(num_particles=4, jit_compile=True)}


@pytest.fixture(scope="module")
def spec():
    return ppl_models.get_model("kidiq-conjugate_regression")


def fitted_gaussian(params: dict, backend: str, guide: str):
    """The fitted guide's mean and covariance, from its parameters as each library names them."""
    if guide == "normal":
        loc, scale = (params[k] for k in {"numpyro": ("beta_auto_loc", "beta_auto_scale"),
                                          "pyro": ("AutoNormal.locs.beta", "AutoNormal.scales.beta")}[backend])
        return loc, np.diag(scale**2)
    if backend == "numpyro":
        loc, tril = params["auto_loc"], params["auto_scale_tril"]
    else:  # Pyro factors the Cholesky factor into scales and a unit lower-triangular matrix
        loc = params["AutoMultivariateNormal.loc"]
        tril = params["AutoMultivariateNormal.scale"][:, None] * params["AutoMultivariateNormal.scale_tril"]
    return loc, tril @ tril.T



def fit(spec, backend, guide):
    result = inference.run(spec, method="svi", backend=backend, guide=guide, seed=0, **SETTINGS, **PARTICLES[backend])
    check_log_weights(spec, result, *fitted_gaussian(result.params, backend, guide))
    draws = result.samples["beta"][0]
    return draws.mean(0), draws.std(0, ddof=1), result


def check_log_weights(spec, result, loc, cov):
    """log p(x, z) - log q(z) = log p(x) + log N(z; posterior) - log q(z), term by term in closed form."""
    X, y, sigma, prior_scale = (spec.data[k] for k in ("X", "y", "sigma", "prior_scale"))
    log_evidence = stats.multivariate_normal(np.zeros(len(y)), sigma**2 * np.eye(len(y))
                                             + prior_scale**2 * X @ X.T).logpdf(y)
    q = stats.multivariate_normal(loc, cov)
    z = result.samples["beta"][0]
    posterior = stats.multivariate_normal(spec.reference.mean["beta"], spec.reference.extra["beta_cov"])
    np.testing.assert_allclose(result.log_weights, log_evidence + posterior.logpdf(z) - q.logpdf(z), rtol=1e-9)
    # the ELBO, their mean: log p(x) - KL(q || posterior), in closed form for two Gaussians
    precision = np.linalg.inv(spec.reference.extra["beta_cov"])
    delta = spec.reference.mean["beta"] - loc
    kl = 0.5 * (np.trace(precision @ cov) + delta @ precision @ delta - len(loc)
                + np.linalg.slogdet(spec.reference.extra["beta_cov"])[1] - np.linalg.slogdet(cov)[1])
    elbo, se = float(result.diagnostics["elbo"]), float(result.diagnostics["elbo_se"])
    assert abs(elbo - (log_evidence - kl)) < 4 * se + 1e-9 * abs(log_evidence), (elbo, log_evidence - kl, se)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_full_rank_guide_recovers_exact_posterior(spec, backend):
    mean, sd, _ = fit(spec, backend, "mvn")
    exact_mean, exact_sd = spec.reference.mean["beta"], spec.reference.sd["beta"]
    np.testing.assert_array_less(np.abs(mean - exact_mean), 4 * exact_sd / np.sqrt(NUM_DRAWS))
    np.testing.assert_array_less(np.abs(sd - exact_sd), 4 * exact_sd / np.sqrt(2 * NUM_DRAWS))


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_mean_field_guide_is_under_dispersed_as_theory_says(spec, backend):
    mean, sd, result = fit(spec, backend, "normal")
    exact_mean, exact_sd = spec.reference.mean["beta"], spec.reference.sd["beta"]
    mf_sd = spec.reference.extra["beta_mean_field_sd"]
    assert (mf_sd < 0.5 * exact_sd).all()  # the ground truth itself: a strongly correlated posterior
    np.testing.assert_array_less(np.abs(mean - exact_mean), 4 * mf_sd / np.sqrt(NUM_DRAWS))
    np.testing.assert_array_less(np.abs(sd - mf_sd), 4 * mf_sd / np.sqrt(2 * NUM_DRAWS))
    np.testing.assert_array_less(sd, 0.6 * exact_sd)
    check_mean_field_khat(spec, result)


def check_mean_field_khat(spec, result):
    """Tail index of the weights p / q under q = the KL-optimal mean-field Gaussian: 1 - (smallest
    eigenvalue of the posterior precision scaled to unit diagonal) = 0.89. PSIS estimates it from
    NUM_DRAWS draws with a spread (and a downward bias) that 300 exact simulations measure."""
    mf_sd, precision = spec.reference.extra["beta_mean_field_sd"], np.linalg.inv(spec.reference.extra["beta_cov"])
    rng = np.random.default_rng(0)
    simulated = []
    for _ in range(300):
        z = rng.normal(size=(NUM_DRAWS, 2)) * mf_sd
        simulated.append(float(psis_khat(-0.5 * np.einsum("si,ij,sj->s", z, precision, z)
                                         + 0.5 * ((z / mf_sd) ** 2).sum(1))))
    low, high = np.quantile(simulated, [0.0005, 0.9995])
    khat = float(result.diagnostics["khat"])
    assert low < khat < high, (khat, low, high)
    assert np.median(simulated) > 0.7  # the exact mean-field guide is flagged more often than not
    # (and no "not converged" warning: this schedule converges)
    assert bool(result.warnings) == (khat > 0.7) and all("k-hat of the fitted guide" in w for w in result.warnings)


def test_comparison_shows_mean_field_under_dispersion(spec):
    """compare() against the exact reference: full rank passes, mean field is flagged on sd."""
    methods = [("numpyro", "svi", dict(guide=g, **SETTINGS, **PARTICLES["numpyro"])) for g in ("mvn", "normal")]
    table = inference.compare(spec, methods)
    full, mean_field = table.iloc[0], table.iloc[1]
    assert full["means_within_mcse"] and full["sds_within_mcse"]
    assert mean_field["means_within_mcse"] and not mean_field["sds_within_mcse"]
    assert mean_field["max_abs_z_sd"] > 0.4  # sd about 54% too small


# The default schedule, measured on the fitted guide's own parameters (no Monte Carlo error: the
# exact posterior is the ground truth). What is left is the optimizer's: over seeds 0-9 on NumPyro
# and 0-4 on Pyro the worst location is 0.07 sd off and the worst sd 4.5% (benchmarks/RESULTS.md,
# "SVI with its default schedule"). The bounds are the accuracy asked of a default fit: a tenth of
# a posterior sd for a location, and the same tenth, relative, for an sd (the ELBO's curvature in
# log sd is twice that in a location, in sd units, so Adam's noise leaves it no larger). The old
# default (constant step size 0.01) missed by up to 0.6 sd. Pyro's 5000 uncompiled steps cost
# about 10 s a seed, so the suite runs 2 of its seeds; benchmarks/svi_conjugate_sweep.py --defaults
# runs 5 on both backends.
DEFAULT_SEEDS = {"numpyro": [0, 1, 2, 3, 4], "pyro": [0, 1]}


def not_converged(result) -> list[str]:
    return [w for w in result.warnings if w.startswith("not converged")]


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_default_schedule_ends_at_the_exact_posterior(spec, backend):
    exact_mean, exact_sd = spec.reference.mean["beta"], spec.reference.sd["beta"]
    for seed in DEFAULT_SEEDS[backend]:
        # num_samples: draws after training (the schedule is the default's); 100 keep it cheap
        result = inference.run(spec, method="svi", backend=backend, guide="mvn", seed=seed, num_samples=100)
        assert result.info["options"]["learning_rate"] == 0.1 and result.info["options"]["lr_decay"] == 0.01
        loc, cov = fitted_gaussian(result.params, backend, "mvn")
        np.testing.assert_array_less(np.abs(loc - exact_mean) / exact_sd, 0.1, err_msg=f"seed {seed}")
        np.testing.assert_array_less(np.abs(np.sqrt(np.diag(cov)) / exact_sd - 1), 0.1, err_msg=f"seed {seed}")
        assert not not_converged(result), (seed, result.warnings)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_a_run_cut_short_is_warned_about(spec, backend):
    """300 steps at a constant step size 0.1: still on its way, and noisy."""
    result = inference.run(spec, method="svi", backend=backend, guide="mvn", num_steps=300, lr_decay=1.0,
                           num_samples=10)
    loc, _ = fitted_gaussian(result.params, backend, "mvn")
    assert np.abs(loc - spec.reference.mean["beta"]).max() > spec.reference.sd["beta"].max()  # far off
    warned = not_converged(result)  # NumPyro's seed 0: both checks fire; Pyro's: the locations' (0.88 of an sd)
    assert warned and all("num_steps" in w for w in warned), result.warnings


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_a_run_frozen_before_it_arrived_is_warned_about(spec, backend):
    """The default decay squeezed into 300 steps: the step size is gone before the run gets there,
    so it freezes far off, its loss falling by less than its noise and its locations barely moving.
    Only the gradient at the end tells: its Newton step is many guide sds long."""
    result = inference.run(spec, method="svi", backend=backend, guide="mvn", num_steps=300, seed=0, num_samples=10)
    loc, _ = fitted_gaussian(result.params, backend, "mvn")
    assert np.abs((loc - spec.reference.mean["beta"]) / spec.reference.sd["beta"]).max() > 3  # far off
    assert any("gradient at the end is not zero" in w for w in not_converged(result)), result.warnings


def test_the_old_constant_step_size_is_warned_about(spec):
    """Seed 1 of the user trial: a constant step size 0.01 ends 0.6 sd off, and is told so."""
    result = inference.run(spec, method="svi", backend="numpyro", guide="mvn", learning_rate=0.01, lr_decay=1.0,
                           seed=1, num_samples=10)
    loc, _ = fitted_gaussian(result.params, "numpyro", "mvn")
    assert np.abs((loc - spec.reference.mean["beta"]) / spec.reference.sd["beta"]).max() > 0.3
    assert any("locations still move" in w and "lr_decay" in w for w in not_converged(result)), result.warnings
