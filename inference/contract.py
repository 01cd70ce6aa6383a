"""The model contract: what every model, built in or a user's, should satisfy.

``check_model(spec)`` traces the model on each of its backends and checks that

* the backends agree on the latent, observed and deterministic sites and their shapes;
* the spec's own guide, if any, samples exactly the model's latent sites;
* the log joint density is finite at prior draws;
* Pyro and NumPyro give the same log joint density, to ``rtol``, at the same
  unconstrained points (in float64, transforms' Jacobians included), with the
  same weights in the model's networks.

An implicit model (``likelihood=False``) has no density to compare: its sampling is
checked instead. Generated data must be finite and shaped as the data, and both
backends must generate the same points, to ``rtol``, from the same noise and weights.

Models written over minibatches are checked on their first minibatch.

It raises ``AssertionError`` (``SiteMismatchError`` for a guide) naming what differs.
"""
from __future__ import annotations

import contextlib
import importlib

import numpy as np

from inference.sites import check_guide_matches
from ppl_models.spec import ModelSpec

_COMMON = {"pyro": "inference.backends.pyro_common", "numpyro": "inference.backends.numpyro_common"}


def network_params(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights for the spec's networks, one set for both backends (built by the Pyro factory,
    named ``<network>$$$<parameter>`` as ``pyro.module`` names them)."""
    from ppl_models.nets import network_seed, param_name

    return {param_name(name, k): v.detach().numpy() for name, factory in spec.networks.items()
            for k, v in factory.build("pyro", network_seed(seed, name), "float64").state_dict().items()}


def contract_data(spec: ModelSpec, batch_size: int = 100) -> dict:
    """The spec's data; for a model written over minibatches, its first minibatch, which the
    model scales up to the full data as in training."""
    if spec.minibatch is None:
        return spec.data
    return {k: v[:batch_size] if k in spec.minibatch.keys else v for k, v in spec.data.items()}


class BackendModel:
    """A model's functions on one backend, run in float64 on the CPU, networks loaded with ``params``."""

    def __init__(self, spec: ModelSpec, backend: str, params: dict):
        self.spec, self.name, self.params = spec, backend, params
        self.lib = importlib.import_module(_COMMON[backend])

    def _scope(self):
        """Pyro: a parameter store of the call's own, so that specs checked in turn never see each
        other's parameters (two LDAs register ``topic_word_counts`` of different widths)."""
        if self.name == "pyro":
            import pyro

            return pyro.get_param_store().scope()
        return contextlib.nullcontext()

    def _call(self, f, fn, *args):
        with self._scope(), self.lib.backend_context("cpu", "float64") as dev:
            where = dev if self.name == "pyro" else "float64"
            data = self.lib.to_backend(contract_data(self.spec), where)
            (bound,) = self.lib.with_networks(self.spec, 0, where, fn, params=self.params)
            return f(bound, data, *args)

    def sites(self, fn):
        return self._call(self.lib.trace_sites, fn)

    def prior_point(self, seed: int) -> dict:
        return self._call(self.lib.prior_point, self.spec.model_fn(self.name), seed)

    def log_density(self, point: dict) -> float:
        return self._call(self.lib.log_density, self.spec.model_fn(self.name), point)

    def generated_data(self, point: dict) -> dict:
        return self._call(self.lib.generated_data, self.spec.model_fn(self.name), point)

    def prior_predictive(self, seed: int) -> tuple[dict, dict]:
        return self._call(self.lib.prior_predictive, self.spec.model_fn(self.name), seed)


def _shapes(sites) -> dict:
    return {"latent": sites.latent, "observed": {k: np.shape(v) for k, v in sites.observed.items()},
            "deterministic": sites.deterministic}


def log_density_pairs(spec: ModelSpec, num_points: int = 3, seed: int = 0) -> list[tuple[float, float]]:
    """(Pyro, NumPyro) log joint densities at ``num_points`` prior draws (unconstrained)."""
    params = network_params(spec)
    pyro_side, numpyro_side = BackendModel(spec, "pyro", params), BackendModel(spec, "numpyro", params)
    points = [numpyro_side.prior_point(seed + i) for i in range(num_points)]
    return [(pyro_side.log_density(p), numpyro_side.log_density(p)) for p in points]


def _check_generated(spec: ModelSpec, backend: str, generated: dict, observed: dict, draw: int) -> None:
    for site, value in generated.items():
        assert np.shape(value) == np.shape(observed[site]), (
            f"{spec.name} ({backend}): generated {site!r} has shape {np.shape(value)}, the data "
            f"{np.shape(observed[site])} (prior draw {draw})")
        assert np.isfinite(value).all(), (
            f"{spec.name} ({backend}): generated {site!r} is not finite at prior draw {draw}")


def check_model(spec: ModelSpec, num_points: int = 3, rtol: float = 1e-5, seed: int = 0) -> None:
    """Check ``spec`` against the model contract; raise naming the first thing that fails."""
    params = network_params(spec)
    backends = {b: BackendModel(spec, b, params) for b in spec.backends}
    shapes, observed = {}, None
    for name, b in backends.items():
        sites = b.sites(spec.model_fn(name))
        shapes[name], observed = _shapes(sites), observed or sites.observed
        if spec.guide and name in spec.guide:
            check_guide_matches(sites, b.sites(spec.guide_fn(name)), f"of {spec.name!r} ({name})", density_needed=False)
    if len(backends) == 2:
        assert shapes["pyro"] == shapes["numpyro"], (
            f"{spec.name}: Pyro and NumPyro sites differ: pyro {shapes['pyro']} vs numpyro {shapes['numpyro']}")
    # every backend is checked at the same prior draws (the first backend's), and the two compared there
    first = next(iter(backends.values()))
    points = [first.prior_point(seed + i) for i in range(num_points)]
    for i, point in enumerate(points):
        if not spec.likelihood:
            generated = {name: b.generated_data(point) for name, b in backends.items()}
            for name, x in generated.items():
                _check_generated(spec, name, x, observed, i)
        else:
            values = {name: b.log_density(point) for name, b in backends.items()}
            for name, value in values.items():
                assert np.isfinite(value), f"{spec.name} ({name}): log joint density is {value} at prior draw {i}"
        if len(backends) < 2:
            continue
        if not spec.likelihood:
            for site in generated["pyro"]:
                pyro_x, numpyro_x = generated["pyro"][site], generated["numpyro"][site]
                assert np.allclose(pyro_x, numpyro_x, rtol=rtol, atol=1e-12), (
                    f"{spec.name}: generated {site!r} differs between backends at prior draw {i}: largest "
                    f"difference {np.max(np.abs(pyro_x - numpyro_x))} (rtol {rtol})")
        else:
            assert np.isclose(values["pyro"], values["numpyro"], rtol=rtol, atol=0), (
                f"{spec.name}: log joint density differs between backends at prior draw {i}: "
                f"pyro {values['pyro']!r}, numpyro {values['numpyro']!r} (rtol {rtol})")
