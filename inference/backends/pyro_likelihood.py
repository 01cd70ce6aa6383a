"""The exact log-likelihood of a model without latent variables (MADE, a flow) on Pyro, at fitted
parameters: one pass over the data, in chunks of the minibatch keys, per data point."""
from __future__ import annotations

import numpy as np
import pyro
import torch
from pyro import poutine

from inference.backends.pyro_common import (
    _observed,
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
    with pyro.get_param_store().scope(), backend_context(device, dtype) as dev, torch.no_grad():
        data = to_backend(spec.data, dev)
        (model,) = with_networks(spec, 0, dev, spec.model_fn("pyro"), params=params)
        for name, value in params.items():
            if SEPARATOR not in name:
                pyro.param(name, torch.as_tensor(value, dtype=torch.get_default_dtype(), device=dev))
        keys = spec.minibatch.keys if spec.minibatch is not None else ()
        num = int(np.shape(spec.data[keys[0]])[0]) if keys else 1
        pieces = data_chunks(spec, num, chunk_size)
        check_no_latent(trace_sites(model, {**data, **{k: data[k][pieces[0]] for k in keys}}).latent, spec.name)
        out = []
        for p in pieces:
            trace = poutine.trace(model).get_trace(**{**data, **{k: data[k][p] for k in keys}})
            observed = _observed(trace)
            plate = data_plate({}, {n: frames(s) for n, s in observed.items()})
            out.append(np.atleast_1d(sum(reduce_log_prob(s, plate) for s in observed.values()).cpu().numpy()))
    return np.concatenate(out).astype(np.float64)
