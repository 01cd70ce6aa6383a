"""The exact log-likelihood of a model without latent variables (MADE, a flow) on NumPyro, at fitted
parameters: one pass over the data, in compiled chunks of the minibatch keys, per data point."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers

from inference.backends.numpyro_common import (
    backend_context,
    frames,
    reduce_log_prob,
    to_backend,
    trace_sites,
    with_networks,
)
from inference.importance import data_chunks, data_plate
from inference.methods._guides import check_no_latent
from ppl_models.nets.factories import SEPARATOR


def log_likelihood(spec, params: dict, *, device: str = "cpu", dtype: str | None = None,
                   chunk_size: int = 1000) -> np.ndarray:
    """log p(x_n) of each data point n (the data plate's elements; one total if the model has none),
    exactly, at ``params`` (``<network>$$$<parameter>`` for the networks' weights, else param sites)."""
    dtype = dtype or spec.dtype
    with backend_context(device, dtype):
        data = to_backend(spec.data, dtype)
        (model,) = with_networks(spec, 0, dtype, spec.model_fn("numpyro"), params=params)
        other = {k: jnp.asarray(v, dtype=dtype) for k, v in params.items() if SEPARATOR not in k}
        if other:
            model = handlers.substitute(model, data=other)
        keys = spec.minibatch.keys if spec.minibatch is not None else ()
        num = int(np.shape(spec.data[keys[0]])[0]) if keys else 1
        pieces = data_chunks(spec, num, chunk_size)
        check_no_latent(trace_sites(model, {**data, **{k: data[k][pieces[0]] for k in keys}}).latent, spec.name)

        @jax.jit
        def per_point(arrays):
            trace = handlers.trace(handlers.seed(model, 0)).get_trace(**{**data, **arrays})
            observed = {n: s for n, s in trace.items() if s["type"] == "sample" and s["is_observed"]}
            plate = data_plate({}, {n: frames(s) for n, s in observed.items()})
            return sum(reduce_log_prob(s, plate) for s in observed.values())

        out = [np.atleast_1d(np.asarray(per_point({k: data[k][p] for k in keys}))) for p in pieces]
    return np.concatenate(out).astype(np.float64)
