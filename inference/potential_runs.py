"""Running a method that takes a ``Potential`` (a plug-in's runner, ``takes="potential"``).

The layer lowers the NumPyro model to a ``Potential`` once, calls the runner with the run's key
and the method's options, and turns what it returns into an ``InferenceResult``:

* draws ``(num_chains, num_samples, dim)`` on the unconstrained space become named, constrained
  sites, with the model's deterministic sites;
* ``(draws, stats)`` adds per-draw sample statistics ``{name: (num_chains, num_samples)}``
  (``diverging``, say, which the MCMC diagnostics count);
* ``(draws, stats, extras)`` adds what else the method found, any of ``warnings`` (a list of
  messages), ``diagnostics`` (``{"khat": ..., "elbo": ...}``), ``log_evidence`` and
  ``log_evidence_se``, ``losses`` and ``params``;
* an ``InferenceResult`` is taken as it is.

Anything else, draws of another shape, or draws that are not finite, is an error that names the
runner and says what it should have returned.
"""
from __future__ import annotations

import inspect
import time

import numpy as np

from inference.result import InferenceResult


def _runner_name(runner) -> str:
    return f"{runner.__module__}.{getattr(runner, '__qualname__', runner)}"


def accepts(fn, name: str) -> bool:
    """Whether ``fn`` takes keyword ``name`` (a plug-in need not take progress_bar, say)."""
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _check_draws(method: str, runner, draws, dim: int) -> np.ndarray:
    expected = f"(num_chains, num_samples, {dim}): draws on the model's unconstrained space, of dimension {dim}"
    try:
        draws = np.asarray(draws, dtype=float)
    except (TypeError, ValueError) as e:
        raise ValueError(f"method {method!r} ({_runner_name(runner)}) returned {type(draws).__name__}, not an "
                         f"array of shape {expected}") from e
    if draws.ndim != 3 or draws.shape[2] != dim or 0 in draws.shape[:2]:
        raise ValueError(f"method {method!r} ({_runner_name(runner)}) returned draws of shape {draws.shape}; it "
                         f"should return shape {expected}")
    if not np.isfinite(draws).all():
        chain, draw, _ = np.argwhere(~np.isfinite(draws))[0]
        raise ValueError(f"method {method!r} ({_runner_name(runner)}) returned non-finite draws (the first at "
                         f"chain {chain}, draw {draw})")
    return draws


def _check_stats(method: str, runner, stats, shape: tuple) -> dict[str, np.ndarray]:
    if not isinstance(stats, dict):
        raise ValueError(f"method {method!r} ({_runner_name(runner)}) returned sample statistics as "
                         f"{type(stats).__name__}, not a dict name -> array of shape {shape}")
    out = {}
    for name, value in stats.items():
        value = np.asarray(value)
        if value.shape[:2] != shape:
            raise ValueError(f"method {method!r} ({_runner_name(runner)}) returned sample statistic {name!r} of "
                             f"shape {value.shape}; it should have shape {shape} (chain, draw)")
        out[name] = value
    return out


EXTRAS = ("warnings", "diagnostics", "log_evidence", "log_evidence_se", "losses", "params")


def _check_extras(method: str, runner, extras) -> dict:
    unknown = sorted(set(extras) - set(EXTRAS)) if isinstance(extras, dict) else None
    if unknown is None or unknown:
        raise ValueError(f"method {method!r} ({_runner_name(runner)}) returned extras "
                         f"{unknown if unknown else type(extras).__name__}; a dict of {', '.join(EXTRAS)} is expected")
    return {**extras, "warnings": list(extras.get("warnings", []))}


def run_on_potential(method: str, runner, spec, model, *, seed: int, device: str, dtype: str, progress_bar: bool,
                     **options) -> InferenceResult:
    """Run ``runner``, method ``method``'s function of a Potential, on ``model``, NumPyro's function of ``spec``."""
    import jax

    from inference.backends.numpyro_common import backend_context, to_backend, trace_sites
    from inference.potential import Potential

    if spec.networks:
        raise ValueError(f"method {method!r} samples a model's latent variables; {spec.name!r} has networks "
                         "(trained by the methods of family vi or likelihood_free)")
    with backend_context(device, dtype):
        data = to_backend(spec.data, dtype)
        sites = trace_sites(model, data, seed)
        potential = Potential.of(model, data, seed)
        extra = {"progress_bar": progress_bar} if accepts(runner, "progress_bar") else {}
        t0 = time.perf_counter()
        out = runner(potential, rng_key=jax.random.PRNGKey(seed), **options, **extra)
        if isinstance(out, InferenceResult):  # whole, as the runner made it, under this run's names
            out.model, out.backend, out.method = spec.name, "numpyro", method
            return out
        out = jax.block_until_ready(out)
        elapsed = time.perf_counter() - t0
        draws, stats, extras = (*out, {})[:3] if isinstance(out, tuple) and len(out) in (2, 3) else (out, {}, {})
        draws = _check_draws(method, runner, draws, potential.dim)
        stats = _check_stats(method, runner, stats, draws.shape[:2])
        extras = _check_extras(method, runner, extras)
        samples = potential.constrain_draws(draws)
    return InferenceResult(
        model=spec.name, backend="numpyro", method=method,
        samples={k: v for k, v in samples.items() if k in sites.latent or k in sites.deterministic},
        sample_stats=stats, observed_data=sites.observed, timing={"sampling": elapsed},
        info={"runner": _runner_name(runner)}, **extras,
    )
