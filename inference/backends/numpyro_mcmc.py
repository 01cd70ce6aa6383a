"""MCMC on NumPyro: a thin wrapper of ``numpyro.infer.MCMC`` around any of NumPyro's kernels.

The method hands over what is its own (``run``'s keywords ``kernel``, ``stats``, ``derive``,
``info``): how to build its ``MCMCKernel`` from the model and the options, which
fields of the kernel's state to record per draw and under which ArviZ names, the statistics that
follow from those, and what to say about the whole run. Nothing here names a method.

With a checkpoint, warmup runs first (``MCMC.warmup``) and sampling then runs in pieces, each
continuing from the last one's sampler state (``post_warmup_state``), with the state and the
draws so far saved after each piece."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC
from numpyro.infer.mcmc import MCMCKernel

from inference.backends.numpyro_common import backend_context, to_backend, to_numpy, trace_sites, with_networks
from inference.checkpoint import Checkpoint
from inference.result import InferenceResult

KernelBuilder = Callable[[Callable, dict], MCMCKernel]  # (model, options) -> kernel


def default_chain_method(num_chains: int, device: str) -> str:
    """Chains in parallel over host devices when there are enough of them; else sequentially."""
    if num_chains == 1:
        return "sequential"
    if device == "cuda":
        return "vectorized"
    return "parallel" if jax.local_device_count() >= num_chains else "sequential"


def sample_in_pieces(make_mcmc, key, data: dict, checkpoint: Checkpoint, num_samples: int,
                     extra_fields: tuple[str, ...] = ()):
    """Warmup (unless the checkpoint is past it), then ``num_samples`` draws per chain in pieces of
    ``checkpoint.every``, saving the sampler state and the draws so far after each. Returns draws
    and extra fields, grouped by chain, and the sampler's last state."""
    saved = checkpoint.load()
    samplers = {}  # one MCMC per piece length
    if saved is None:
        mcmc = samplers[checkpoint.every] = make_mcmc(checkpoint.every)
        mcmc.warmup(key, extra_fields=extra_fields, collect_warmup=False, **data)
        done, state, record = 0, mcmc.post_warmup_state, {"samples": {}, "stats": {}}
        checkpoint.save(0, jax.device_get(state), record)
    else:
        done, state, record = saved[0], jax.tree.map(jnp.asarray, saved[1]), saved[2]
    for first, last in checkpoint.segments(done, num_samples):
        if last - first not in samplers:
            samplers[last - first] = make_mcmc(last - first)
        mcmc = samplers[last - first]
        mcmc.post_warmup_state = state
        mcmc.run(state.rng_key, extra_fields=extra_fields, **data)  # the state's own keys: the chain goes on
        state = mcmc.last_state
        for part, new in (("samples", mcmc.get_samples(group_by_chain=True)),
                          ("stats", mcmc.get_extra_fields(group_by_chain=True))):
            record[part] = {k: np.concatenate([record[part][k], v], axis=1) if k in record[part] else v
                            for k, v in to_numpy(new).items()}
        checkpoint.save(last, jax.device_get(state), record)
    return record["samples"], record["stats"], state


def run(spec, model, *, kernel: KernelBuilder, stats: Mapping[str, str] | None = None,
        derive: Callable[[dict], dict] | None = None, info: Callable[[object, dict], dict] | None = None,
        method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    """Run ``kernel(model, opts)`` in ``numpyro.infer.MCMC`` on ``spec``'s data.

    ``stats`` maps fields of the kernel's state (dotted for nested ones: ``adapt_state.step_size``)
    to the ArviZ ``sample_stats`` names they are recorded under, per draw; fields the kernel
    records by default that are not in ``stats`` are dropped. ``derive(sample_stats)`` returns
    the statistics recorded: those, changed or with more computed from them (or constant per
    draw). ``info(last_state, samples)`` returns entries for the result's ``info``: scalars of the
    whole run, from the sampler's last state and the draws (grouped by chain). The chains run as
    ``opts["chain_method"]`` says (an ensemble kernel's runner sets ``"vectorized"``), else as
    ``default_chain_method`` says.
    """
    chain_method = opts.get("chain_method") or default_chain_method(opts["num_chains"], device)
    stats = dict(stats or {})
    extra_fields = tuple(stats)
    with backend_context(device, dtype):
        data = to_backend(spec.data, dtype)
        (model,) = with_networks(spec, seed, dtype, model)  # networks, if any, at their initial weights
        sites = trace_sites(model, data, seed)

        def make_mcmc(num_samples):
            return MCMC(kernel(model, opts), num_warmup=opts["num_warmup"], num_samples=num_samples,
                        num_chains=opts["num_chains"], chain_method=chain_method, progress_bar=progress_bar)

        t0 = time.perf_counter()
        checkpoint = Checkpoint.of_run(spec.name, "numpyro", method, seed, opts, total=opts["num_samples"],
                                        unit="draw per chain")
        if checkpoint is not None:
            samples, fields, last_state = sample_in_pieces(make_mcmc, jax.random.PRNGKey(seed), data, checkpoint,
                                                           opts["num_samples"], extra_fields)
        else:
            mcmc = make_mcmc(opts["num_samples"])
            mcmc.run(jax.random.PRNGKey(seed), extra_fields=extra_fields, **data)
            samples = to_numpy(mcmc.get_samples(group_by_chain=True))
            fields = to_numpy(mcmc.get_extra_fields(group_by_chain=True))
            last_state = mcmc.last_state
        elapsed = time.perf_counter() - t0
        run_info = info(jax.device_get(last_state), samples) if info is not None else {}
    sample_stats = {stats[k]: v for k, v in fields.items() if k in stats}
    if derive is not None:
        sample_stats = derive(sample_stats)
    return InferenceResult(
        model=spec.name, backend="numpyro", method=method,
        samples={k: v for k, v in samples.items() if k in sites.latent or k in sites.deterministic},
        sample_stats=sample_stats, observed_data=sites.observed,
        # NumPyro runs warmup and sampling in one compiled loop; splitting them would
        # cost a second compilation, so only their sum is measured.
        timing={"warmup_and_sampling": elapsed},
        info={"chain_method": chain_method, **run_info},
    )
