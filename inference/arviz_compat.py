"""The one place that knows which ArviZ is installed.

ArviZ 0.x (what pip resolves on Python 3.11) has ``InferenceData``,
``from_dict(posterior=..., sample_stats=...)`` and ``ess``/``rhat``/``mcse``
taking a ``(chain, draw)`` array. ArviZ 1.x (Python >= 3.12) is built on
arviz-base and arviz-stats: ``from_dict({"posterior": ...})`` returns an xarray
``DataTree``, the diagnostics take ``chain_axis``/``draw_axis``, and
``from_pyro``/``from_numpyro`` are gone, which is why results are converted
from plain numpy dicts rather than from the libraries' MCMC objects.
"""
from __future__ import annotations

import functools
import importlib.metadata
import warnings

import numpy as np

# The version from the package's metadata: importing ArviZ takes about 2 s, which every ``ppl`` command
# (``ppl models`` too) would pay at start; it is imported where it is first used.
ARVIZ_VERSION = importlib.metadata.version("arviz")
MODERN = int(ARVIZ_VERSION.split(".")[0]) >= 1


@functools.cache
def _arviz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ 0.23 warns about its coming refactor at import
        import arviz
    return arviz


def _modern_modules():
    import arviz_base
    import arviz_stats

    return arviz_base, arviz_stats


def to_inference_data(groups: dict[str, dict[str, np.ndarray]], attrs: dict | None = None, modern: bool = MODERN):
    """ArviZ's container for ``groups`` (group name -> variable -> array).

    Posterior-like groups hold arrays shaped ``(chain, draw, ...)``;
    ``observed_data`` holds plain arrays. Returns ``InferenceData`` (0.x) or ``DataTree`` (1.x).
    """
    groups = {g: v for g, v in groups.items() if v}
    if modern:
        arviz_base, _ = _modern_modules()
        return arviz_base.from_dict(groups, attrs=attrs)
    return _arviz().from_dict(**groups, attrs=attrs)


def _stat(name: str, x: np.ndarray, modern: bool, **kwargs) -> float:
    x = np.asarray(x, dtype=float)
    if modern:
        _, arviz_stats = _modern_modules()
        return float(getattr(arviz_stats, name)(x, chain_axis=0, draw_axis=1, **kwargs))
    return float(getattr(_arviz(), name)(x, **kwargs))


def ess(x: np.ndarray, method: str = "bulk", modern: bool = MODERN) -> float:
    """Effective sample size of a ``(chain, draw)`` array (``method``: bulk, tail, mean, sd)."""
    # arviz-stats needs the tail quantiles spelled out; 0.05/0.95 is what ArviZ 0.x and Stan use.
    kwargs = {"prob": (0.05, 0.95)} if method == "tail" and modern else {}
    return _stat("ess", x, modern, method=method, **kwargs)


def rhat(x: np.ndarray, modern: bool = MODERN) -> float:
    """Rank-normalized split R-hat of a ``(chain, draw)`` array."""
    return _stat("rhat", x, modern)


def mcse(x: np.ndarray, method: str = "mean", modern: bool = MODERN) -> float:
    """Monte Carlo standard error of the mean (or ``method="sd"``) of a ``(chain, draw)`` array."""
    return _stat("mcse", x, modern, method=method)


def psis_khat(log_weights: np.ndarray, modern: bool = MODERN) -> np.ndarray:
    """Pareto k-hat of importance weights, draws along the last axis (one k-hat per leading index)."""
    log_weights = np.asarray(log_weights, dtype=float)
    if modern:
        from arviz_stats.base import array_stats

        return np.asarray(array_stats.psislw(log_weights, axis=-1)[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ warns when k-hat is high; callers report that themselves
        return np.asarray(_arviz().psislw(log_weights)[1])


def bfmi(energy: np.ndarray, modern: bool = MODERN) -> np.ndarray:
    """Bayesian fraction of missing information of each chain's HMC energies, ``(chain, draw)``."""
    energy = np.asarray(energy, dtype=float)
    if modern:
        from arviz_stats.base import array_stats

        return np.asarray(array_stats.bfmi(energy, chain_axis=-2, draw_axis=-1))
    return np.asarray(_arviz().bfmi(energy))


def loo(data, var_name: str | None = None, modern: bool = MODERN) -> dict:
    """PSIS-LOO of an ArviZ container with a ``log_likelihood`` group: ``elpd``, its standard error
    over data points ``se``, the effective number of parameters ``p``, and Pareto ``khat`` per point."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ warns when k-hat is high; callers report that themselves
        if modern:
            _, arviz_stats = _modern_modules()
            out = arviz_stats.loo(data, pointwise=True, var_name=var_name)
            return {"elpd": float(out.elpd), "se": float(out.se), "p": float(out.p),
                    "khat": np.asarray(out.pareto_k).ravel()}
        out = _arviz().loo(data, pointwise=True, var_name=var_name)
        return {"elpd": float(out["elpd_loo"]), "se": float(out["se"]), "p": float(out["p_loo"]),
                "khat": np.asarray(out["pareto_k"]).ravel()}


def compare(datas: dict, var_name: str | None = None, modern: bool = MODERN):
    """ArviZ's ranking of models by PSIS-LOO elpd (stacking weights), as a pandas DataFrame indexed by
    name, with the same columns on either ArviZ: ``rank``, ``elpd``, ``p``, ``elpd_diff``, ``weight``,
    ``se``, ``dse``, ``warning``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if modern:
            _, arviz_stats = _modern_modules()
            table = arviz_stats.compare(datas, var_name=var_name)
        else:
            table = _arviz().compare(datas, ic="loo", var_name=var_name)
    table = table.rename(columns={"elpd_loo": "elpd", "p_loo": "p"})
    return table[["rank", "elpd", "p", "elpd_diff", "weight", "se", "dse", "warning"]]
