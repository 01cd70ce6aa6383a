"""A conjugate Bayesian linear regression on many points, written over a data plate that HMCECS can
subsample (``inference.methods.hmcecs``), with its exact posterior moments: the ground truth of
tests/test_hmcecs.py, of the HMCECS-against-NUTS measurement (``python -m tests.hmcecs_regression
measure 50000 3``) and of the perturbation's (``python -m tests.hmcecs_regression perturbation``).

Normal-inverse-gamma regression with unknown noise variance:

    sigma2 ~ InverseGamma(a0, b0),  beta | sigma2 ~ Normal(0, sigma2 * s0^2 I_D),
    y_n | beta, sigma2 ~ Normal(x_n . beta, sigma2),  n = 1..N,

whose posterior is closed-form: with L = X'X + I / s0^2 and mu = L^-1 X'y, a = a0 + N/2 and
b = b0 + (y'y - mu' L mu) / 2, beta is Student-t (2a degrees of freedom) with mean mu and covariance
b / (a - 1) L^-1, and sigma2 | y ~ InverseGamma(a, b): mean b / (a - 1), variance b^2 / ((a - 1)^2 (a - 2)).
The noise variance is unknown on purpose: with it known, every point's log-likelihood is quadratic
in beta and HMCECS's second-order Taylor proxy is exact, so a test could not see its perturbation.

Synthetic data, drawn with a fixed seed: the exact ground truth needs a conjugate model on data of
a chosen size, which no data set in the shared data directory gives."""
from __future__ import annotations

import time

import numpy as np

from ppl_models.reference import Reference
from ppl_models.spec import ModelSpec

A0, B0, S0 = 2.0, 2.0, 10.0  # prior: sigma2 ~ InverseGamma(2, 2), beta | sigma2 ~ Normal(0, 10 sigma)
TRUE_BETA = np.array([1.0, -2.0, 0.5])
TRUE_SIGMA = 1.5


def model(x, y):
    import numpyro
    import numpyro.distributions as dist

    sigma2 = numpyro.sample("sigma2", dist.InverseGamma(A0, B0))
    beta = numpyro.sample("beta", dist.Normal(0.0, S0 * sigma2 ** 0.5).expand([x.shape[1]]).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        xb = numpyro.subsample(x, event_dim=1)
        numpyro.sample("y", dist.Normal(xb @ beta, sigma2 ** 0.5), obs=numpyro.subsample(y, event_dim=0))


def model_without_plate(x, y):
    """The same likelihood as one vectorized site in no plate: nothing for HMCECS to subsample."""
    import numpyro
    import numpyro.distributions as dist

    sigma2 = numpyro.sample("sigma2", dist.InverseGamma(A0, B0))
    beta = numpyro.sample("beta", dist.Normal(0.0, S0 * sigma2 ** 0.5).expand([x.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Normal(x @ beta, sigma2 ** 0.5).to_event(1), obs=y)


def model_not_subsampling(x, y):
    """A data plate whose data is not taken through numpyro.subsample: fails once subsampled."""
    import numpyro
    import numpyro.distributions as dist

    sigma2 = numpyro.sample("sigma2", dist.InverseGamma(A0, B0))
    beta = numpyro.sample("beta", dist.Normal(0.0, S0 * sigma2 ** 0.5).expand([x.shape[1]]).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal(x @ beta, sigma2 ** 0.5), obs=y)


def data(num_data: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(num_data), rng.normal(size=(num_data, len(TRUE_BETA) - 1))])
    y = x @ TRUE_BETA + TRUE_SIGMA * rng.normal(size=num_data)
    return {"x": x, "y": y}


def exact_posterior(x: np.ndarray, y: np.ndarray) -> Reference:
    precision = x.T @ x + np.eye(x.shape[1]) / S0**2
    cov = np.linalg.inv(precision)
    mu = cov @ (x.T @ y)
    a = A0 + len(y) / 2
    b = B0 + 0.5 * (y @ y - mu @ precision @ mu)
    return Reference(mean={"beta": mu, "sigma2": np.array(b / (a - 1))},
                     sd={"beta": np.sqrt(b / (a - 1) * np.diag(cov)), "sigma2": np.array(b / (a - 1) / np.sqrt(a - 2))},
                     source="closed form: normal-inverse-gamma conjugate regression")


def spec(num_data: int = 20000, fn=model, seed: int = 0) -> ModelSpec:
    d = data(num_data, seed)
    return ModelSpec(name=f"synthetic{num_data}-nig_regression", data=d, model={"numpyro": fn},
                     reference=exact_posterior(d["x"], d["y"]), data_dims={"x": ("N", 3), "y": ("N",)},
                     description="normal-inverse-gamma linear regression, written over a subsamplable data plate")


def measure(num_data: int = 50000, repeats: int = 3, num_chains: int = 4, seed: int = 0) -> None:
    """Wall time and minimum bulk ESS of hmcecs against nuts on one model, in one process, interleaved
    (a first untimed run of each compiles and warms the caches)."""
    import inference
    import inference.methods.hmcecs  # noqa: F401 - not yet among the registry's BUILTINS
    from inference.diagnostics import score, summarize

    s = spec(num_data)
    rows = {"nuts": [], "hmcecs": []}
    for method in rows:  # warm-up, not recorded
        inference.run(s, method=method, backend="numpyro", seed=seed, num_warmup=50, num_samples=50, num_chains=1)
    for r in range(repeats):
        for method in rows:
            cpu = time.process_time()
            result = inference.run(s, method=method, backend="numpyro", seed=seed + r, num_chains=num_chains,
                                   chain_method="sequential")
            cpu = time.process_time() - cpu
            ess = float(summarize(result.samples)["ess_bulk"].min())
            z = score(result.samples, s.reference)
            rows[method].append((result.timing["wall"], cpu, ess, float(z["z_mean"].abs().max()),
                                 float(z["z_sd"].abs().max()), bool((z["mean_ok"] & z["sd_ok"]).all())))
            print(method, r, *(f"{v:.3g}" for v in rows[method][-1]), flush=True)
    print("| method | wall s | CPU s | min bulk ESS | ESS/s (wall) | max abs z_mean | max abs z_sd | passed 4 MCSE |")
    for method, rs in rows.items():
        wall, cpu, ess = (np.median([r[i] for r in rs]) for i in range(3))
        print(f"| {method} | {wall:.1f} | {cpu:.1f} | {ess:.0f} | {ess / wall:.0f} | {max(r[3] for r in rs):.3f} | "
              f"{max(r[4] for r in rs):.3f} | {sum(r[5] for r in rs)}/{len(rs)} |")


def measure_perturbation(num_samples: int = 20000, seed: int = 1) -> None:
    """HMCECS's error against the exact posterior with many draws (4 chains of ``num_samples``), in
    posterior sds, at three settings: the perturbation the test's docstring states."""
    import inference
    import inference.methods.hmcecs  # noqa: F401 - not yet among the registry's BUILTINS
    from inference.diagnostics import score, summarize

    s = spec(20000)
    for options in ({}, {"subsample_size": 50, "num_blocks": 25}, {"taylor_degree": 1}):
        result = inference.run(s, method="hmcecs", backend="numpyro", seed=seed, num_samples=num_samples, **options)
        z = score(result.samples, s.reference)
        print(options, "min ESS", round(summarize(result.samples)["ess_bulk"].min()), "subsample acceptance",
              round(float(result.sample_stats["subsample_acceptance_rate"].mean()), 4))
        print(z[["z_mean", "z_sd", "tol_mean", "tol_sd", "mean_ok", "sd_ok"]].assign(
            tol_mean_in_sd=z["tol_mean"] / z["ref_sd"]).to_string(), flush=True)


if __name__ == "__main__":
    import sys

    what, *numbers = sys.argv[1:] or ["measure"]
    {"measure": measure, "perturbation": measure_perturbation}[what](*(int(a) for a in numbers))
