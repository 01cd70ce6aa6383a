"""The model contract: what every model, built in or a user's, should satisfy.

``check_model(spec)`` traces the model on each of its backends and checks that

* the backends agree on the latent, observed and deterministic sites and their shapes;
* the spec's own guide, if any, samples exactly the model's latent sites;
* the log joint density is finite at prior draws;
* Pyro and NumPyro give the same log joint density, to ``rtol``, at the same
  unconstrained points (in float64, transforms' Jacobians included).

It raises ``AssertionError`` (``SiteMismatchError`` for a guide) naming what differs.
"""
from __future__ import annotations

import importlib

import numpy as np

from inference.sites import check_guide_matches
from ppl_models.spec import ModelSpec

_COMMON = {"pyro": "inference.backends.pyro_common", "numpyro": "inference.backends.numpyro_common"}


class _Backend:
    """A model's functions on one backend, run in float64 on the CPU."""

    def __init__(self, spec: ModelSpec, backend: str):
        self.spec, self.name = spec, backend
        self.lib = importlib.import_module(_COMMON[backend])

    def _call(self, f, *args):
        with self.lib.backend_context("cpu", "float64") as dev:
            data = self.lib.to_backend(self.spec.data, dev if self.name == "pyro" else "float64")
            return f(data, *args)

    def sites(self, fn):
        return self._call(lambda data: self.lib.trace_sites(fn, data))

    def prior_point(self, seed: int) -> dict:
        return self._call(lambda data: self.lib.prior_point(self.spec.model_fn(self.name), data, seed))

    def log_density(self, point: dict) -> float:
        return self._call(lambda data: self.lib.log_density(self.spec.model_fn(self.name), data, point))


def _shapes(sites) -> dict:
    return {"latent": sites.latent, "observed": {k: np.shape(v) for k, v in sites.observed.items()},
            "deterministic": sites.deterministic}


def log_density_pairs(spec: ModelSpec, num_points: int = 3, seed: int = 0) -> list[tuple[float, float]]:
    """(Pyro, NumPyro) log joint densities at ``num_points`` prior draws (unconstrained)."""
    pyro_side, numpyro_side = _Backend(spec, "pyro"), _Backend(spec, "numpyro")
    points = [numpyro_side.prior_point(seed + i) for i in range(num_points)]
    return [(pyro_side.log_density(p), numpyro_side.log_density(p)) for p in points]


def check_model(spec: ModelSpec, num_points: int = 3, rtol: float = 1e-5, seed: int = 0) -> None:
    """Check ``spec`` against the model contract; raise naming the first thing that fails."""
    backends = {b: _Backend(spec, b) for b in spec.backends}
    shapes = {}
    for name, b in backends.items():
        sites = b.sites(spec.model_fn(name))
        shapes[name] = _shapes(sites)
        if spec.guide and name in spec.guide:
            check_guide_matches(sites, b.sites(spec.guide_fn(name)), f"of {spec.name!r} ({name})")
        for i in range(num_points):
            value = b.log_density(b.prior_point(seed + i))
            assert np.isfinite(value), f"{spec.name} ({name}): log joint density is {value} at prior draw {i}"
    if len(backends) == 2:
        assert shapes["pyro"] == shapes["numpyro"], (
            f"{spec.name}: Pyro and NumPyro sites differ: pyro {shapes['pyro']} vs numpyro {shapes['numpyro']}")
        for i, (lp_pyro, lp_numpyro) in enumerate(log_density_pairs(spec, num_points, seed)):
            assert np.isclose(lp_pyro, lp_numpyro, rtol=rtol, atol=0), (
                f"{spec.name}: log joint density differs between backends at prior draw {i}: "
                f"pyro {lp_pyro!r}, numpyro {lp_numpyro!r} (rtol {rtol})")
