"""A method written outside the package (tests/plugin_rwm.py: random-walk Metropolis on the
model's Potential) runs through every entry point with no edit to the project: ``inference.run``,
``compare`` and its report, sweeps in worker processes, SBC, ``ppl fit``, ``ppl compare`` and
``ppl methods`` (the command line imports it with ``--plugin``).

Ground truth: posteriordb's reference draws of eight schools; the plug-in's means and sds must lie
within 4 combined Monte Carlo standard errors of them (``inference.diagnostics.score``).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import inference
import ppl_models
from inference.registry import register_method, unregister_method
from ppl_models.errors import UnknownChoiceError
from tests import plugin_rwm  # noqa: F401 - registers "rwm"

ES = "eight_schools-eight_schools_noncentered"
ROOT = Path(__file__).resolve().parents[1]
# long enough chains for this slow-mixing sampler to reach an ESS of several hundred
LONG = dict(num_warmup=2000, num_samples=8000)


@pytest.fixture(scope="module")
def result():
    return inference.run(ES, method="rwm", backend="numpyro", seed=1, **LONG)


def test_the_plugin_is_listed_with_its_family_and_options():
    entry = inference.get_method("rwm")
    assert (entry.family, entry.backends, entry.takes) == ("mcmc", ("numpyro",), "potential")
    assert entry.options["scale"].default == 0.1
    assert entry.module == "tests.plugin_rwm"


def test_run_names_and_constrains_the_sites_and_adds_the_diagnostics(result):
    spec = ppl_models.get_model(ES)
    assert set(result.samples) == {"mu", "tau", "theta_trans", "theta"}  # latents and the deterministic theta
    assert result.samples["theta"].shape == (4, 8000, 8) and (result.samples["tau"] > 0).all()
    np.testing.assert_allclose(result.samples["theta"], result.samples["mu"][..., None]
                               + result.samples["tau"][..., None] * result.samples["theta_trans"], rtol=1e-10)
    assert result.info["family"] == "mcmc" and result.info["runner"] == "tests.plugin_rwm.rwm"
    assert result.sample_stats["acceptance_rate"].shape == (4, 8000)
    assert "y" in result.log_likelihood and result.to_arviz().log_likelihood["y"].shape == (4, 8000, 8)
    scores = inference.diagnostics.score(result.samples, spec.reference)
    assert scores["mean_ok"].all(), scores[~scores["mean_ok"]]
    assert scores["sd_ok"].all(), scores[~scores["sd_ok"]]
    assert result.summary()["r_hat"].max() < 1.05


def test_compare_scores_it_and_the_report_shows_its_mcmc_diagnostics(tmp_path):
    table = inference.compare(ES, [("numpyro", "rwm", dict(num_warmup=500, num_samples=1000))],
                              out=tmp_path / "runs", report=tmp_path / "report")
    row = table.iloc[0]
    assert row["method"] == "rwm" and np.isfinite(row["max_r_hat"]) and np.isfinite(row["ess_bulk_min"])
    assert "MCMC diagnostics: numpyro rwm" in (tmp_path / "report" / "report.html").read_text()


def test_a_sweep_runs_it_in_worker_processes(tmp_path):
    config = tmp_path / "plugin.yaml"
    config.write_text(f"models: [{ES}]\nmethods: ['numpyro:rwm:num_warmup=300,num_samples=300']\n"
                      f"seeds: [0]\nstore: {tmp_path / 'store'}\n")
    index = inference.run_sweep(inference.load_config(config))
    assert list(index["status"]) == ["ok"], index.get("error")


def test_sbc_runs_it():
    out = inference.sbc(ES, "rwm", num_simulations=3, num_ranks=9, num_warmup=200, num_samples=200, num_chains=1)
    assert not out.failures and len(out.ranks) == 3 and out.ranks.to_numpy().max() <= 9


def _ppl(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PPL_DATA_DIR"}
    return subprocess.run([sys.executable, "-m", "inference.cli", "--plugin", str(ROOT / "tests" / "plugin_rwm.py"),
                           *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_the_command_line_imports_it_with_plugin(tmp_path):
    listed = _ppl("methods", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert {"method": "rwm", "family": "mcmc"}.items() <= next(
        m for m in json.loads(listed.stdout) if m["method"] == "rwm").items()
    fit = _ppl("fit", ES, "--backend", "numpyro", "--method", "rwm", "--num-samples", "500", "--num-warmup", "500",
               "--scale", "0.2", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    assert "r_hat" in fit.stdout and "mu" in fit.stdout
    assert list((tmp_path / "runs" / ES).glob("numpyro_rwm*.npz"))
    compared = _ppl("compare", ES, "--methods", "numpyro:rwm:num_samples=500,num_warmup=500", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "numpyro rwm" in compared.stdout


def test_a_missing_plugin_gets_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "inference.cli", "--plugin", "no_such_plugin_module", "methods"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no_such_plugin_module" in out.stderr


# --- bad input ---------------------------------------------------------------------------------


def _register(name, returns, options=None):
    @register_method(name, family="mcmc", backends=("numpyro",), options=options or {"num_chains": 2})
    def runner(potential, *, rng_key, num_chains):
        return returns(potential, num_chains)

    return runner


@pytest.mark.parametrize("returns, message", [
    (lambda p, n: np.zeros((n, 10)), "returned draws of shape (2, 10); it should return shape "
                                     "(num_chains, num_samples, 10)"),
    (lambda p, n: np.zeros((n, 5, p.dim + 1)), "returned draws of shape (2, 5, 11)"),
    (lambda p, n: np.full((n, 5, p.dim), np.nan), "returned non-finite draws (the first at chain 0, draw 0)"),
    (lambda p, n: (np.zeros((n, 5, p.dim)), {"diverging": np.zeros(3)}), "sample statistic 'diverging' of shape (3,)"),
])
def test_a_plugin_returning_the_wrong_thing_is_named(returns, message):
    _register("broken", returns)
    try:
        with pytest.raises(ValueError, match="method 'broken' \\(tests.test_plugin.") as info:
            inference.run(ES, method="broken", backend="numpyro")
        assert message in str(info.value)
    finally:
        unregister_method("broken")


def test_registering_a_name_twice_is_refused_unless_replaced():
    with pytest.raises(ValueError, match="method 'rwm' is already registered \\(by tests.plugin_rwm\\)"):
        _register("rwm", lambda p, n: None)
    with pytest.raises(ValueError, match="method 'nuts' is already registered"):
        _register("nuts", lambda p, n: None)
    _register("twice", lambda p, n: np.zeros((n, 3, p.dim)))
    try:
        register_method("twice", family="vi", backends=("numpyro",), replace=True)(lambda potential, *, rng_key: 0)
        assert inference.get_method("twice").family == "vi"
    finally:
        unregister_method("twice")


def test_bad_registrations_and_options_are_refused_up_front():
    with pytest.raises(UnknownChoiceError, match="unknown family of method 'x' 'mcmcs'.*did you mean 'mcmc'"):
        register_method("x", family="mcmcs", backends=("numpyro",))
    with pytest.raises(ValueError, match="takes a Potential, a JAX log density: it runs on backends=\\('numpyro',\\)"):
        register_method("x", family="mcmc", backends=("pyro",))
    with pytest.raises(TypeError, match="takes no option\\(s\\) \\['scale'\\]"):
        register_method("x", family="mcmc", backends=("numpyro",), options={"scale": 1.0})(
            lambda potential, *, rng_key: 0)
    with pytest.raises(UnknownChoiceError, match="did you mean 'scale'"):
        inference.run(ES, method="rwm", backend="numpyro", scal=0.2)
    with pytest.raises(ValueError, match="option num_chains='4' for method 'rwm' is invalid: expected an integer"):
        inference.run(ES, method="rwm", backend="numpyro", num_chains="4")
    with pytest.raises(UnknownChoiceError, match="method 'rwm' runs on numpyro only, not on 'pyro'"):
        inference.run(ES, method="rwm", backend="pyro")
