"""Model criticism: what ArviZ's ``loo``, ``waic``, ``compare``, ``plot_ppc`` and ``plot_loo_pit`` need.

After a method whose results hold posterior draws (the families mcmc, vi and importance:
``inference.registry``), ``inference.run`` calls :func:`add_pointwise`,
which fills the result's ``log_likelihood`` (each data site's log density at the data, per draw
and element) and ``posterior_predictive`` (data replicated from each draw), so that
``result.to_arviz()`` carries both with ``observed_data``. It skips, saying why in
``result.info["log_likelihood_skipped"]``:

- models trained on minibatches (their data is not kept in the result) or built with networks
  (the fitted networks are not rebuilt here);
- runs that kept no posterior draws (SVI with ``num_samples=0``, IS with ``resample=False``);
- runs whose two pointwise arrays would together exceed ``MAX_POINTWISE_MB``
  (draws x data elements x 8 bytes x 2).

Prior draws are on request: :func:`add_prior` fills ``prior`` and ``prior_predictive``.
:func:`loo_compare` ranks fitted models by PSIS-LOO elpd with ArviZ's ``compare``.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from inference import arviz_compat
from inference.importance import KHAT_MAX
from ppl_models.spec import resolve_function

MAX_POINTWISE_MB = 64
_BACKENDS = {"numpyro": "inference.backends.numpyro_criticism", "pyro": "inference.backends.pyro_criticism"}


def _backend(backend: str, name: str):
    return resolve_function(f"{_BACKENDS[backend]}:{name}")


def _derived_seed(seed: int) -> int:
    """A seed for replicated data, independent of the run's own random stream."""
    return int(np.random.SeedSequence([seed, 0x10A]).generate_state(1)[0])


def skip_reason(spec, result) -> str | None:
    """Why the run gets no pointwise log-likelihood, or None if it does."""
    if spec.minibatch is not None:
        return "the model is trained on minibatches: its data is not kept in the result"
    if spec.networks:
        return "the model has networks, which are not rebuilt after the run"
    if not result.samples:
        return "the run kept no posterior draws"
    if not result.observed_data:
        return "the model has no data sites"
    draws = result.num_chains * result.num_draws
    elements = sum(np.size(v) for v in result.observed_data.values())
    megabytes = 2 * 8 * draws * elements / 2**20
    if megabytes > MAX_POINTWISE_MB:
        return (f"the pointwise arrays would take {megabytes:.0f} MB (over MAX_POINTWISE_MB = {MAX_POINTWISE_MB}): "
                f"{draws} draws x {elements} data elements")
    return None


def add_pointwise(spec, result, *, seed: int, device: str, dtype: str) -> None:
    """Fill ``result.log_likelihood`` and ``result.posterior_predictive`` (see the module docstring), in place."""
    reason = skip_reason(spec, result)
    if reason:
        result.info["log_likelihood_skipped"] = reason
        return
    t0 = time.perf_counter()
    result.log_likelihood, result.posterior_predictive = _backend(result.backend, "pointwise")(
        spec, result.samples, _derived_seed(seed), device, dtype)
    result.timing["pointwise"] = time.perf_counter() - t0


def add_prior(result, model=None, *, num_samples: int = 500, seed: int | None = None):
    """Fill ``result.prior`` and ``result.prior_predictive`` with ``num_samples`` draws of the joint
    prior predictive, on the result's backend, device and precision; returns ``result``.

    ``model`` is the registered name or ``ModelSpec`` the result was fitted to (default: its name);
    ``seed`` defaults to the run's. A model with an improper prior has no prior draws: that is an error
    naming the model."""
    from inference.api import resolve_model

    spec = resolve_model(result.model if model is None else model)
    if spec.name != result.model:
        raise ValueError(f"add_prior: the result is of model {result.model!r}, not {spec.name!r}")
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(f"add_prior: num_samples must be an integer >= 1, not {num_samples!r}")
    seed = result.info.get("seed", 0) if seed is None else seed
    device, dtype = result.info.get("device", "cpu"), result.info.get("dtype", spec.dtype)
    try:
        result.prior, result.prior_predictive = _backend(result.backend, "prior_draws")(
            spec, num_samples, _derived_seed(seed), device, dtype)
    except NotImplementedError:  # ImproperUniform and friends cannot be sampled
        raise ValueError(f"add_prior: model {spec.name!r} has an improper prior, which cannot be sampled") from None
    return result


def _named(results) -> dict:
    """``{name: result}`` from a mapping, or from a sequence named ``model (backend method)``."""
    if isinstance(results, Mapping):
        named = dict(results)
    elif isinstance(results, Sequence) and not isinstance(results, str):
        named = {}
        for result in results:
            name = f"{result.model} ({result.backend} {result.method})"
            named[name if name not in named else f"{name} #{len(named)}"] = result
    else:
        raise TypeError(f"loo_compare takes a mapping name -> InferenceResult or a list of them, "
                        f"not {type(results).__name__}")
    if len(named) < 2:
        raise ValueError(f"loo_compare needs at least two results to rank, not {len(named)}")
    return named


def _check_comparable(named: dict) -> None:
    """Every result has a log-likelihood, and all of the same data (same sites, same shapes)."""
    shapes = {}
    for name, result in named.items():
        if not result.log_likelihood:
            why = result.info.get("log_likelihood_skipped", f"method {result.method!r} computes none")
            raise ValueError(f"loo_compare: result {name!r} has no log_likelihood group ({why})")
        shapes[name] = {k: v.shape[2:] for k, v in result.log_likelihood.items()}
    first, *others = shapes
    for name in others:
        if shapes[name] != shapes[first]:
            raise ValueError(f"loo_compare: result {name!r} has pointwise log-likelihoods {shapes[name]}, but "
                             f"{first!r} has {shapes[first]}: models are compared on the same data only")


def loo_compare(results, *, var_name: str | None = None) -> pd.DataFrame:
    """Rank fitted models by their PSIS-LOO expected log predictive density (ArviZ's ``compare``).

    ``results`` maps names to ``InferenceResult``s (or is a list of them, named
    ``model (backend method)``), each with a ``log_likelihood`` group of the same data;
    ``var_name`` picks the data site when a model has several. Returns ArviZ's table (``rank``,
    ``elpd``, ``p``, ``elpd_diff``, ``weight``, ``se``, ``dse``, ``warning``) plus ``khat_over_0.7``
    (data points whose PSIS k-hat exceeds 0.7: there the elpd estimate is unreliable) and
    ``num_points``, best model first."""
    named = _named(results)
    _check_comparable(named)
    datas = {name: result.to_arviz() for name, result in named.items()}
    table = arviz_compat.compare(datas, var_name=var_name)
    khats = {name: arviz_compat.loo(data, var_name=var_name)["khat"] for name, data in datas.items()}
    table[f"khat_over_{KHAT_MAX}"] = [int((khats[name] > KHAT_MAX).sum()) for name in table.index]
    table["num_points"] = [khats[name].size for name in table.index]
    return table


def khat_warnings(table: pd.DataFrame) -> list[str]:
    """One line per model of a :func:`loo_compare` table with data points whose k-hat exceeds 0.7."""
    column = f"khat_over_{KHAT_MAX}"
    return [f"{name}: PSIS k-hat > {KHAT_MAX} for {row[column]} of {row['num_points']} data points: "
            "their leave-one-out estimates, and the model's elpd, are unreliable"
            for name, row in table.iterrows() if row[column] > 0]
