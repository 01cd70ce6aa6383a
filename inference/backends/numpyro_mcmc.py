"""NUTS and HMC on NumPyro: a thin wrapper of ``numpyro.infer.MCMC``.

With a checkpoint, warmup runs first (``MCMC.warmup``) and sampling then runs in pieces, each
continuing from the last one's sampler state (``post_warmup_state``), with the state and the
draws so far saved after each piece."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import HMC, MCMC, NUTS

from inference.backends import hmc_path_length
from inference.backends.numpyro_common import backend_context, to_backend, to_numpy, trace_sites, with_networks
from inference.checkpoint import Checkpoint
from inference.library_options import to_library
from inference.result import InferenceResult

EXTRA_FIELDS = ("diverging", "accept_prob", "num_steps", "adapt_state.step_size", "energy")
# NumPyro's extra field names -> ArviZ's sample_stats names
STAT_NAMES = {"diverging": "diverging", "accept_prob": "acceptance_rate", "num_steps": "n_steps",
              "adapt_state.step_size": "step_size", "energy": "energy"}


def make_kernel(method: str, model, opts: dict):
    common = dict(target_accept_prob=opts["target_accept_prob"], dense_mass=opts["dense_mass"],
                  **to_library("numpyro", opts["library_options"]))  # the library's own keywords, given
    if method == "nuts":
        return NUTS(model, max_tree_depth=opts["max_tree_depth"], **common)
    return HMC(model, **hmc_path_length(opts), **common)


def default_chain_method(num_chains: int, device: str) -> str:
    """Chains in parallel over host devices when there are enough of them; else sequentially."""
    if num_chains == 1:
        return "sequential"
    if device == "cuda":
        return "vectorized"
    return "parallel" if jax.local_device_count() >= num_chains else "sequential"


def sample_in_pieces(make_mcmc, key, data: dict, checkpoint: Checkpoint, num_samples: int):
    """Warmup (unless the checkpoint is past it), then ``num_samples`` draws per chain in pieces of
    ``checkpoint.every``, saving the sampler state and the draws so far after each. Returns draws
    and extra fields, grouped by chain."""
    saved = checkpoint.load()
    samplers = {}  # one MCMC per piece length
    if saved is None:
        mcmc = samplers[checkpoint.every] = make_mcmc(checkpoint.every)
        mcmc.warmup(key, extra_fields=EXTRA_FIELDS, collect_warmup=False, **data)
        done, state, record = 0, mcmc.post_warmup_state, {"samples": {}, "stats": {}}
        checkpoint.save(0, jax.device_get(state), record)
    else:
        done, state, record = saved[0], jax.tree.map(jnp.asarray, saved[1]), saved[2]
    for first, last in checkpoint.segments(done, num_samples):
        if last - first not in samplers:
            samplers[last - first] = make_mcmc(last - first)
        mcmc = samplers[last - first]
        mcmc.post_warmup_state = state
        mcmc.run(state.rng_key, extra_fields=EXTRA_FIELDS, **data)  # the state's own keys: the chain goes on
        state = mcmc.last_state
        for part, new in (("samples", mcmc.get_samples(group_by_chain=True)),
                          ("stats", mcmc.get_extra_fields(group_by_chain=True))):
            record[part] = {k: np.concatenate([record[part][k], v], axis=1) if k in record[part] else v
                            for k, v in to_numpy(new).items()}
        checkpoint.save(last, jax.device_get(state), record)
    return record["samples"], record["stats"]


def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    chain_method = opts["chain_method"] or default_chain_method(opts["num_chains"], device)
    with backend_context(device, dtype):
        data = to_backend(spec.data, dtype)
        (model,) = with_networks(spec, seed, dtype, model)  # networks, if any, at their initial weights
        sites = trace_sites(model, data, seed)

        def make_mcmc(num_samples):
            return MCMC(make_kernel(method, model, opts), num_warmup=opts["num_warmup"], num_samples=num_samples,
                        num_chains=opts["num_chains"], chain_method=chain_method, progress_bar=progress_bar)

        t0 = time.perf_counter()
        checkpoint = Checkpoint.of_run(spec.name, "numpyro", method, seed, opts, total=opts["num_samples"],
                                        unit="draw per chain")
        if checkpoint is not None:
            samples, stats = sample_in_pieces(make_mcmc, jax.random.PRNGKey(seed), data, checkpoint,
                                              opts["num_samples"])
        else:
            mcmc = make_mcmc(opts["num_samples"])
            mcmc.run(jax.random.PRNGKey(seed), extra_fields=EXTRA_FIELDS, **data)
            samples = to_numpy(mcmc.get_samples(group_by_chain=True))
            stats = to_numpy(mcmc.get_extra_fields(group_by_chain=True))
        elapsed = time.perf_counter() - t0
    sample_stats = {STAT_NAMES[k]: v for k, v in stats.items()}
    if method == "nuts":  # a tree of depth d takes up to 2^d - 1 leapfrog steps
        sample_stats["tree_depth"] = np.floor(np.log2(sample_stats["n_steps"])).astype(int) + 1
    return InferenceResult(
        model=spec.name, backend="numpyro", method=method,
        samples={k: v for k, v in samples.items() if k in sites.latent or k in sites.deterministic},
        sample_stats=sample_stats, observed_data=sites.observed,
        # NumPyro runs warmup and sampling in one compiled loop; splitting them would
        # cost a second compilation, so only their sum is measured.
        timing={"warmup_and_sampling": elapsed},
        info={"chain_method": chain_method},
    )
