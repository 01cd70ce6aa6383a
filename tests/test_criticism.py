"""Model criticism: pointwise log-likelihoods and replicated data in every result that has a posterior,
PSIS-LOO against the exact leave-one-out densities of the conjugate regression, ``loo_compare``,
prior draws, ArviZ's plots, and ``ppl loo``."""
import warnings

import numpy as np
import pytest
from scipy.stats import norm

import inference
from inference import arviz_compat, criticism
from inference.cli import main
from inference.result import load_result
from ppl_models import ModelSpec, get_model
from ppl_models.conjugate.linear_regression import conjugate_linear_regression
from ppl_models.generic import for_backends

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import arviz as az

KIDIQ = "kidiq-conjugate_regression"
ES = "eight_schools-eight_schools_noncentered"
NUTS = {"num_chains": 2, "num_samples": 500, "num_warmup": 300}


def intercept_only() -> ModelSpec:
    """The conjugate regression on the same data without the mother's schooling: a worse model."""
    spec = get_model(KIDIQ)
    return ModelSpec(name="kidiq-conjugate_intercept", data={**spec.data, "X": spec.data["X"][:, :1]},
                     model=for_backends(conjugate_linear_regression))


def exact_loo(spec) -> np.ndarray:
    """log p(y_i | y_-i) = log N(y_i; X_i m_-i, sigma^2 + X_i S_-i X_i^T), the posterior without point i
    being Gaussian with precision P - x_i x_i^T / sigma^2 and mean S_-i (X^T y - x_i y_i) / sigma^2."""
    X, y, sigma, scale = (spec.data[k] for k in ("X", "y", "sigma", "prior_scale"))
    precision = X.T @ X / sigma**2 + np.eye(X.shape[1]) / scale**2
    out = np.empty(len(y))
    for i, (x, yi) in enumerate(zip(X, y, strict=True)):
        cov = np.linalg.inv(precision - np.outer(x, x) / sigma**2)
        mean = cov @ (X.T @ y - x * yi) / sigma**2
        out[i] = norm.logpdf(yi, x @ mean, np.sqrt(sigma**2 + x @ cov @ x))
    return out


def psis_loo_mcse(log_lik: np.ndarray) -> float:
    """Monte Carlo standard error of the PSIS-LOO elpd computed from ``log_lik`` ``(chain, draw, N)``.

    elpd = sum_i log p_i with p_i = sum_s w_is p(y_i | theta_s), w_i the self-normalized smoothed
    weights of point i. To first order its error is sum_i sum_s w_is (p_is - p_i) / p_i = mean_s h_s
    with h_s = S sum_i w_is (p_is - p_i) / p_i: a mean over the draws, whose standard error ArviZ's
    ``mcse`` gives with the chains' autocorrelation. This counts that every point's estimate uses the
    same draws (their errors are correlated: the sum's error is not sqrt(N) times a point's); az.loo's
    ``se`` is the spread of elpd_i over points, a different quantity (13.5 here against about 0.12)."""
    chains, draws, n = log_lik.shape
    flat = log_lik.reshape(chains * draws, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weights = np.stack([np.exp(az.psislw(-flat[:, i].copy())[0]) for i in range(n)], axis=1)
    p = np.exp(flat - flat.max(axis=0))
    p_hat = (weights * p).sum(axis=0)
    h = (chains * draws * weights * (p - p_hat) / p_hat).sum(axis=1)
    return float(az.mcse(h.reshape(chains, draws), method="mean"))


@pytest.fixture(scope="module")
def kidiq_nuts():
    return {backend: inference.run(KIDIQ, method="nuts", backend=backend, seed=0, **NUTS)
            for backend in ("numpyro", "pyro")}


@pytest.fixture(scope="module")
def es_approximate():
    """Eight schools by SVI and by importance sampling (prior proposal), on both backends."""
    runs = {}
    for backend in ("numpyro", "pyro"):
        runs[backend, "svi"] = inference.run(ES, method="svi", backend=backend, seed=0, guide="normal",
                                             num_steps=200, learning_rate=0.05, num_samples=300)
        runs[backend, "is"] = inference.run(ES, method="is", backend=backend, seed=0, num_samples=2000)
    return runs


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_psis_loo_matches_exact_loo(kidiq_nuts, backend):
    result, spec = kidiq_nuts[backend], get_model(KIDIQ)
    n = len(spec.data["y"])
    assert result.log_likelihood["y"].shape == result.posterior_predictive["y"].shape == (2, 500, n)
    loo = arviz_compat.loo(result.to_arviz())
    exact, mcse = exact_loo(spec).sum(), psis_loo_mcse(result.log_likelihood["y"])
    print(f"{backend}: PSIS-LOO elpd {loo['elpd']:.3f}, exact {exact:.3f}, Monte Carlo se {mcse:.3f}, "
          f"az.loo se {loo['se']:.2f}, max k-hat {loo['khat'].max():.2f}")
    assert loo["khat"].max() < criticism.KHAT_MAX  # the posterior barely moves without one of 434 points
    # 4 Monte Carlo standard errors (psis_loo_mcse): a correct estimate fails 1 time in 16000. PSIS's
    # bias at k-hat < 0.7 is far below it. az.loo's se (about 13.5) would be no test at all.
    assert abs(loo["elpd"] - exact) <= 4 * mcse
    # WAIC approximates the same quantity; with 2 effective parameters it agrees as closely
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        waic = az.waic(result.to_arviz())
    assert abs(waic.elpd_waic - exact) <= 4 * mcse + 0.05  # WAIC's own error is O(1/n) per point


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_replicated_data_given_each_draw(kidiq_nuts, backend):
    """y_rep - X beta_s is N(0, sigma^2) exactly, draw by draw, however well the chains mixed: its
    mean and variance over all 2 x 500 x 434 values lie within 4 of their standard errors of 0 and 1."""
    result, spec = kidiq_nuts[backend], get_model(KIDIQ)
    z = (result.posterior_predictive["y"] - result.samples["beta"] @ spec.data["X"].T) / spec.data["sigma"]
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.var() - 1) < 4 * np.sqrt(2 / z.size)
    # and the log-likelihood is that of the data at the same draw
    mean = result.samples["beta"] @ spec.data["X"].T
    np.testing.assert_allclose(result.log_likelihood["y"], norm.logpdf(spec.data["y"], mean, spec.data["sigma"]),
                               rtol=1e-10)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
@pytest.mark.parametrize("method", ["svi", "is"])
def test_svi_and_importance_sampling_have_log_likelihood(es_approximate, backend, method):
    result = es_approximate[backend, method]
    data = get_model(ES).data
    draws = result.num_draws
    assert result.log_likelihood["y"].shape == result.posterior_predictive["y"].shape == (1, draws, 8)
    s = result.samples
    theta = s["mu"][..., None] + s["tau"][..., None] * s["theta_trans"]
    np.testing.assert_allclose(result.log_likelihood["y"], norm.logpdf(data["y"], theta, data["sigma"]), rtol=1e-6)
    loo = arviz_compat.loo(result.to_arviz())
    assert np.isfinite(loo["elpd"]) and loo["khat"].shape == (8,)


def test_loo_compare_ranks_by_exact_elpd(kidiq_nuts):
    worse = inference.run(intercept_only(), method="nuts", backend="numpyro", seed=0, **NUTS)
    table = inference.loo_compare({"full": kidiq_nuts["numpyro"], "intercept": worse})
    gap = exact_loo(get_model(KIDIQ)).sum() - exact_loo(intercept_only()).sum()  # 11.3
    assert list(table.index) == ["full", "intercept"] and list(table["rank"]) == [0, 1]
    # the estimated gap, within 4 Monte Carlo errors of the two estimates of the exact one
    tol = 4 * np.hypot(psis_loo_mcse(kidiq_nuts["numpyro"].log_likelihood["y"]),
                       psis_loo_mcse(worse.log_likelihood["y"]))
    assert abs(table.loc["intercept", "elpd_diff"] - gap) <= tol
    assert list(table["khat_over_0.7"]) == [0, 0] and list(table["num_points"]) == [434, 434]
    # ArviZ 1.x (arviz-stats) ranks the same, with the same elpd to within the same error
    modern = {name: arviz_compat.to_inference_data(
        {"posterior": r.samples, "log_likelihood": r.log_likelihood}, modern=True)
        for name, r in {"full": kidiq_nuts["numpyro"], "intercept": worse}.items()}
    table_1x = arviz_compat.compare(modern, modern=True)
    assert list(table_1x.index) == ["full", "intercept"]
    assert abs(table_1x.loc["full", "elpd"] - table.loc["full", "elpd"]) <= tol
    assert arviz_compat.loo(modern["full"], modern=True)["khat"].shape == (434,)
    # a list names its results by model, backend and method
    listed = inference.loo_compare([kidiq_nuts["pyro"], worse])
    assert listed.index[0] == f"{KIDIQ} (pyro nuts)"


def test_loo_compare_bad_input_names_the_result(kidiq_nuts, es_approximate, monkeypatch):
    result = es_approximate["numpyro", "svi"]
    skipped = inference.InferenceResult(model=ES, backend="numpyro", method="svi", samples=result.samples,
                                        observed_data=result.observed_data)
    monkeypatch.setattr(criticism, "MAX_POINTWISE_MB", 0)
    criticism.add_pointwise(get_model(ES), skipped, seed=0, device="cpu", dtype="float64")
    assert not skipped.log_likelihood and "MAX_POINTWISE_MB" in skipped.info["log_likelihood_skipped"]
    with pytest.raises(ValueError, match="result 'small' has no log_likelihood group .*MAX_POINTWISE_MB"):
        inference.loo_compare({"kidiq": kidiq_nuts["numpyro"], "small": skipped})
    with pytest.raises(ValueError, match="result 'es' has pointwise log-likelihoods .*same data"):
        inference.loo_compare({"kidiq": kidiq_nuts["numpyro"], "es": result})
    with pytest.raises(ValueError, match="at least two"):
        inference.loo_compare([result])


def test_plots_run(kidiq_nuts):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idata = kidiq_nuts["numpyro"].to_arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert az.plot_ppc(idata, num_pp_samples=20) is not None
        assert az.plot_loo_pit(idata, y="y") is not None
    plt.close("all")


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_prior_draws_and_round_trip(kidiq_nuts, backend, tmp_path):
    spec = get_model(KIDIQ)
    result = inference.add_prior(kidiq_nuts[backend], num_samples=500)
    beta, y = result.prior["beta"], result.prior_predictive["y"]
    assert beta.shape == (1, 500, 2) and y.shape == (1, 500, 434)
    # beta ~ N(0, 10^2): the sd of 1000 draws is within 4 standard errors (10 / sqrt(2 * 1000)) of 10
    assert abs(beta.std() - spec.data["prior_scale"]) < 4 * spec.data["prior_scale"] / np.sqrt(2 * beta.size)
    z = (y - beta @ spec.data["X"].T) / spec.data["sigma"]  # the data given each prior draw
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.var() - 1) < 4 * np.sqrt(2 / z.size)
    idata = load_result(result.save(tmp_path / "run.npz")).to_arviz()
    for group in ("posterior", "log_likelihood", "posterior_predictive", "observed_data", "prior", "prior_predictive",
                  "sample_stats"):
        assert group in idata.groups()
    np.testing.assert_array_equal(idata.log_likelihood["y"].values, result.log_likelihood["y"])
    np.testing.assert_array_equal(idata.prior["beta"].values, beta)


def test_prior_of_an_improper_model_is_an_error():
    result = inference.InferenceResult(model="kidiq-kidscore_momiq", backend="numpyro", method="nuts", samples={})
    with pytest.raises(ValueError, match="'kidiq-kidscore_momiq' has an improper prior"):
        inference.add_prior(result)


def test_cli_loo(capsys):
    """Importance sampling from the prior leaves few distinct draws: PSIS flags points, on stderr."""
    code = main(["loo", ES, "eight_schools-eight_schools_centered", "--backend", "numpyro", "--method", "is",
                 "--num-samples", "1000"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert max(map(len, out.splitlines())) <= 100
    rows = [line for line in out.splitlines() if line.startswith("eight_schools_")]  # after "data: eight_schools"
    assert "data: eight_schools" in out and len(rows) == 2 and "elpd" in out and "khat>0.7" in out
    assert "PSIS k-hat > 0.7 for" in err and "WARNING" not in out
    code = main(["loo", ES, ES, "--backend", "numpyro", "--method", "nuts"])
    assert code == 2 and "two or more different models" in capsys.readouterr().err


def test_pyro_models_written_for_one_draw_run_under_vmap():
    """A Pyro model written for one draw (``X @ beta``) cannot take Predictive's extra batch dimension;
    torch.func.vmap runs it over the draws instead: the same log-likelihoods as one trace per draw, and
    replicates with the same distribution (means and sds of 400 x 434 replicates within 4 standard
    errors of the sequential ones)."""
    import torch

    from inference.backends import pyro_criticism as pc
    from inference.backends.pyro_common import _UnconditionData, backend_context, to_backend

    spec = get_model("kidiq-kidscore_momiq")
    draws = {k: np.asarray(v).reshape(-1, *np.shape(v)[2:])[:400] for k, v in spec.reference.draws.items()}
    with backend_context("cpu", "float64") as dev, torch.no_grad():
        model, data = _UnconditionData()(spec.model_fn("pyro")), to_backend(spec.data, dev)
        draws = {k: torch.as_tensor(draws[k]) for k in ("beta", "sigma")}
        with pytest.raises((RuntimeError, ValueError, IndexError)):
            pc._vectorized(model, data, draws, 400)
        mapped, sequential = pc._vmapped(model, data, draws, 400), pc._sequential(model, data, draws, 400)
    torch.testing.assert_close(mapped[0]["y"], sequential[0]["y"])
    a, b = mapped[1]["y"].numpy(), sequential[1]["y"].numpy()
    sd = np.std(b - b.mean(0), ddof=1)  # the replicates' noise, about sigma
    assert abs(a.mean() - b.mean()) < 4 * sd * np.sqrt(2 / a.size)
    assert abs((a - a.mean(0)).std() / (b - b.mean(0)).std() - 1) < 4 * np.sqrt(1 / a.size)


def test_a_pyro_model_vmap_cannot_run_falls_back_to_one_draw_at_a_time():
    import pyro
    import pyro.distributions as dist
    import torch

    from inference.backends import pyro_criticism as pc

    def model(y):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        scale = 1.0 if float(mu) > 0 else 2.0  # control flow on a value: vmap refuses it
        pyro.sample("y", dist.Normal(mu, scale), obs=y)

    draws = {"mu": torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)}
    y = torch.tensor(0.3, dtype=torch.float64)
    log_lik, _ = pc._all_draws(pc._UnconditionData()(model), {"y": y}, draws, 3)
    expected = [norm.logpdf(0.3, -1.0, 2.0), norm.logpdf(0.3, 0.5, 1.0), norm.logpdf(0.3, 2.0, 1.0)]
    np.testing.assert_allclose(log_lik["y"].numpy(), expected)
