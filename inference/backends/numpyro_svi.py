"""SVI on NumPyro: ``numpyro.infer.SVI`` with an autoguide or the model's own guide.

Training runs in one compiled loop (``SVI.run``, a ``fori_loop`` without a
progress bar); posterior draws come from ``Predictive`` over the fitted guide,
so deterministic sites of the model are returned too.
"""
from __future__ import annotations

import time

import jax
import numpy as np
import numpyro.infer as infer
from numpyro.infer import SVI, Predictive, autoguide
from numpyro.optim import Adam

from inference.backends import AUTOGUIDES, ELBOS, autoguide_kwargs, elbo_kwargs
from inference.backends.numpyro_common import backend_context, to_backend, to_numpy, trace_sites
from inference.result import InferenceResult
from inference.sites import check_guide_matches
from ppl_models.errors import TrainingError


def make_guide(spec, model, guide: str, rank):
    if guide == "spec":
        return spec.guide_fn("numpyro")
    return getattr(autoguide, AUTOGUIDES[guide])(model, **autoguide_kwargs(guide, rank))


def exponential_decay(learning_rate: float, decay: float, num_steps: int):
    """A constant step size, or a schedule falling by ``decay`` over ``num_steps``."""
    if decay == 1.0:
        return learning_rate
    return lambda step: learning_rate * decay ** (step / num_steps)


def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    train_key, draw_key = jax.random.split(jax.random.PRNGKey(seed))
    with backend_context(device, dtype):
        data = to_backend(spec.data, dtype)
        sites = trace_sites(model, data, seed)
        guide = make_guide(spec, model, opts["guide"], opts["rank"])
        if opts["guide"] == "spec":
            check_guide_matches(sites, trace_sites(guide, data, seed), f"of {spec.name!r}")
        elbo = getattr(infer, ELBOS[opts["elbo"]])(**elbo_kwargs(opts["elbo"], opts["num_particles"], opts["alpha"]))
        step_size = exponential_decay(opts["learning_rate"], opts["lr_decay"], opts["num_steps"])
        svi = SVI(model, guide, Adam(step_size), elbo)
        t0 = time.perf_counter()
        # stable_update: a step whose loss or gradient is not finite leaves the parameters as they were
        fit = svi.run(train_key, opts["num_steps"], progress_bar=progress_bar, stable_update=True, **data)
        losses = np.asarray(fit.losses)
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            # The compiled loop cannot stop early. The parameters that gave the last finite loss
            # (step - 1) are those after step - 1 updates: replay them (same keys, same trajectory).
            step = int(bad[0])
            good = svi.run(train_key, step - 1, progress_bar=False, stable_update=True, **data).params \
                if step > 1 else svi.get_params(svi.init(train_key, **data))
            partial = InferenceResult(model=spec.name, backend="numpyro", method=method, samples={},
                                      losses=losses[:step + 1], params=to_numpy(good))
            raise TrainingError(step, float(losses[step - 1]) if step else None, partial)
        t1 = time.perf_counter()
        predictive = Predictive(model, guide=guide, params=fit.params, num_samples=opts["num_samples"],
                                return_sites=[*sites.latent, *sites.deterministic])
        draws = to_numpy(predictive(draw_key, **data))
        t2 = time.perf_counter()
    return InferenceResult(
        model=spec.name, backend="numpyro", method=method,
        samples={k: v[None] for k, v in draws.items()}, observed_data=sites.observed,
        losses=losses, params=to_numpy(fit.params),
        timing={"optimization": t1 - t0, "sampling": t2 - t1},
    )
