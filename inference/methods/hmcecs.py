"""HMCECS, HMC with energy conserving subsampling (Dang, Quiroz, Kohn, Tran & Villani 2019,
"Hamiltonian Monte Carlo with Energy Conserving Subsampling", JMLR 20): NumPyro's
``numpyro.infer.HMCECS`` around its NUTS, for models with many data points. (Not around its HMC:
NumPyro's default trajectory of length 2 pi took thousands of leapfrog steps per iteration while the
step size adapted on a posterior of sd 0.03, and a 2000-point run did not end in 10 minutes.)

The algorithm. Each iteration is a Gibbs step in two blocks. (1) The subsample: the indices u of
``subsample_size`` = m of the N data points (drawn with replacement) are proposed afresh in one of
``num_blocks`` blocks and accepted by a Metropolis test on the likelihood estimate at the current
parameters (a block pseudo-marginal update: the new subsample correlates with the old, so the
estimate's noise barely moves the chain). (2) The parameters: a NUTS trajectory on the log
prior plus the log-likelihood *estimated from the subsample*, which stays fixed along the
trajectory, so energy is conserved and the acceptance test is exact for that target. With
``proxy="taylor"`` the estimate is the difference estimator of Quiroz et al. 2019: a Taylor
expansion of every point's log-likelihood (order ``taylor_degree``) about reference parameters,
summed exactly over all N points, plus N times the subsample's mean difference between the true
terms and their expansions, minus half the estimator's variance (the bias correction). Its target
is the *perturbed* posterior, not the posterior: close to it when the expansion is good (its error
shrinks as the differences' variance N^2/m var(d) does, that is as m grows and as the reference
nears the posterior's bulk), exact when every point's log-likelihood is a polynomial of the
expansion's degree in the unconstrained parameters (a linear regression with known noise under
``taylor_degree=2``). The reference parameters are ``reference`` (constrained values by site), or
else the MAP: NumPyro's SVI with ``AutoDelta`` on the whole data (``map_steps`` Adam steps), run
once before sampling (``timing["reference_map"]``). ``proxy=None`` is NumPyro's naive
subsampling (the likelihood's subsample mean times N, no bias correction): its estimate's variance
grows with N and the chain sticks; use it only to compare. A gradient costs the m subsampled
points' log-likelihoods and, with the proxy, their expansions (O(m d^2) at degree 2 in d
parameters) instead of all N points'.

Measured on the 20000-point normal-inverse-gamma regression of tests/test_hmcecs.py (noise variance
unknown, so the proxy is not exact), at the defaults (m = 200, 100 blocks, degree 2, MAP reference):
the perturbed posterior's means and sds were within 0.006 posterior sd of the exact ones, inside
the Monte Carlo error of 4 x 20000 draws; likewise at m = 50 and at degree 1. With the reference
90 to 190 posterior sds away (noise variance 5, coefficients 0) the subsample acceptance fell to 0.08 and the means were
4 to 44 sds off; with ``proxy=None``, acceptance 0.10, minimum ESS 4 of 4000 draws, and the noise
variance 89 sds off.

Chains run in parallel or in sequence, not vectorized: NumPyro's HMCECS draws its first subsample
from one key (on a GPU, where the layer's default is vectorized, they run in sequence).

What a model must look like: its global latents outside, its likelihood inside one data plate whose
observed data it takes through ``numpyro.subsample`` (the plate itself has the whole data's size)::

    def model(x, y):
        beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
        with numpyro.plate("data", x.shape[0]):
            xb = numpyro.subsample(x, event_dim=1)
            numpyro.sample("y", dist.Normal(xb @ beta, 1.0), obs=numpyro.subsample(y, event_dim=0))

Run by any other method, the plate holds every point and ``numpyro.subsample`` returns the data as
it is; run by this one, the plate is subsampled to ``subsample_size`` by a handler, so the model
itself names no subsample size. ``plate`` names the data plate (default: the one plate around the
observed sites that holds no latent site). Refused in one line, naming the model: no such plate,
several of them (pass ``plate=``), a latent site inside it (a local latent per data point: HMCECS
subsamples the likelihood only), data inside it not taken through ``numpyro.subsample`` (the model
fails, or observes all N points, once the plate is subsampled), or a subsample not smaller than the
plate. Models written for minibatch training (``ModelSpec(minibatch=...)``: the data sliced outside
the model, a plate sized by a scalar) hold local latents and do not fit.

Per-draw statistics: NUTS's (``diverging``, ``acceptance_rate``, ``n_steps``, ``step_size``,
``energy``, ``tree_depth``) for the parameter block, and
``subsample_acceptance_rate``, the probability with which the subsample proposal was accepted at
that draw. ``n_steps`` counts gradients of the subsampled target, each far cheaper than one of the
whole data's, so ESS per gradient does not compare with plain NUTS's; compare ESS per second.
"""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping

from inference.methods._mcmc import check_chain_method
from inference.methods._numpyro_kernels import BASE_OPTIONS, HMC_STATS, NUMPYRO
from inference.methods.nuts import tree_depth
from inference.options import MCMC_OPTIONS, integer, one_of, opt, or_none
from inference.registry import register_method

# HMCECSState holds the inner kernel's state as ``hmc_state`` and the subsample step's ``accept_prob``
STATS = {**{f"hmc_state.{k}": v for k, v in HMC_STATS.items()}, "accept_prob": "subsample_acceptance_rate"}
# without subsample_size: 1% of the data plate, at least 100 points (NumPyro's example takes 1000 of 11 million)
DEFAULT_FRACTION, DEFAULT_MIN = 0.01, 100


@functools.cache
def _plate_subsampler():
    """The Messenger that subsamples one plate. NumPyro has no handler for this: ``substitute`` sets a
    plate's indices, not how many there are, and HMCECS takes the subsample size from the plate's
    own ``subsample_size``; so the plate's message is given one before NumPyro draws its indices."""
    from numpyro.primitives import Messenger

    class SubsamplePlate(Messenger):
        def __init__(self, fn, plate: str, size: int):
            self.plate, self.size = plate, size
            super().__init__(fn)

        def process_message(self, msg):
            if msg["type"] == "plate" and msg["name"] == self.plate:
                msg["args"] = (msg["args"][0], self.size)
                msg["value"] = None  # indices drawn by the plate, or set by HMCECS (an outer substitute)

    return SubsamplePlate


def subsampled(model, plate: str, size: int):
    """``model`` with its plate ``plate`` subsampled to ``size`` points (HMCECS's Gibbs sites)."""
    return _plate_subsampler()(model, plate, size)


# ---------------------------------------------------------------- checks against the model (prepare)

def _trace(model, data: dict):
    from numpyro import handlers
    from numpyro.infer.initialization import init_to_uniform

    return handlers.trace(handlers.substitute(handlers.seed(model, 0), substitute_fn=init_to_uniform)).get_trace(
        **data)


def _first_line(e: Exception) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:160]}"


def find_plate(trace, name: str, given: str | None) -> tuple[str, int]:
    """The data plate to subsample and its size, or a one-line error naming the model."""
    plates = {n: s["args"][0] for n, s in trace.items() if s["type"] == "plate"}
    sites = [s for s in trace.values() if s["type"] == "sample"]
    observed = [s for s in sites if s["is_observed"]]
    inside = {p: [s["name"] for s in sites if any(f.name == p for f in s["cond_indep_stack"])] for p in plates}
    latent = {s["name"] for s in sites if not s["is_observed"]}
    how = ("write its likelihood inside `with numpyro.plate('data', N):`, taking the data through "
           "`numpyro.subsample(x, event_dim=...)`")
    if given is not None:
        if given not in plates:
            raise ValueError(f"method 'hmcecs': model {name!r} has no plate {given!r} (its plates: "
                             f"{sorted(plates) or 'none'}); {how}")
        candidates = [given]
    else:
        candidates = [p for p in plates if any(o["name"] in inside[p] for o in observed)
                      and not latent & set(inside[p]) and plates[p] > 1]
    if not candidates:
        outside = [o["name"] for o in observed if not o["cond_indep_stack"]]
        local = {p: sorted(latent & set(inside[p])) for p in plates if any(o["name"] in inside[p] for o in observed)}
        why = (f"observed site(s) {outside} lie in no plate" if outside else
               "latent site(s) inside every plate around its observed sites, "
               + ", ".join(f"{v} in {p!r}" for p, v in local.items() if v)
               + " (local latents: HMCECS subsamples the likelihood only)" if observed else "it observes no data")
        raise ValueError(f"method 'hmcecs' needs a data plate to subsample, and model {name!r} has none ({why}): "
                         f"{how}")
    if len(candidates) > 1:
        raise ValueError(f"method 'hmcecs': model {name!r} has several plates around its data ({candidates}): pass "
                         "plate= to say which to subsample")
    plate = candidates[0]
    local = sorted(latent & set(inside[plate]))
    if local:
        raise ValueError(f"method 'hmcecs' subsamples the likelihood only, but model {name!r} has latent site(s) "
                         f"{local} inside its data plate {plate!r} (local latents)")
    if not any(o["name"] in inside[plate] for o in observed):
        raise ValueError(f"method 'hmcecs': plate {plate!r} of model {name!r} holds no observed site; {how}")
    return plate, int(plates[plate])


def check_subsampled(model, data: dict, name: str, plate: str, size: int) -> None:
    """The model runs with ``plate`` subsampled to ``size`` and observes ``size`` points in it."""
    hint = (f"inside plate {plate!r}, take the data through numpyro.subsample(x, event_dim=...) and compute "
            "everything per point from the subsampled data")
    try:
        trace = _trace(subsampled(model, plate, size), data)
    except Exception as e:  # noqa: BLE001 - any failure here is the model's, named in one line
        raise ValueError(f"method 'hmcecs': model {name!r} fails with its plate {plate!r} subsampled to {size} "
                         f"points ({_first_line(e)}); {hint}") from None
    for site in trace.values():
        if site["type"] != "sample" or not site["is_observed"]:
            continue
        frame = next((f for f in site["cond_indep_stack"] if f.name == plate), None)
        if frame is None:
            continue
        shape = tuple(site["value"].shape)
        dim = frame.dim - len(site["fn"].event_shape)
        if len(shape) < -dim or shape[dim] != size:
            raise ValueError(f"method 'hmcecs': model {name!r} observes site {site['name']!r} of shape {shape} in "
                             f"plate {plate!r} subsampled to {size} points; {hint}")


def _valid_reference(v) -> bool:
    return v is None or (isinstance(v, Mapping) and len(v) > 0 and all(isinstance(k, str) for k in v))


def check(backend: str, options: dict) -> None:
    check_chain_method(backend, options)
    if options["chain_method"] == "vectorized":
        raise ValueError("method 'hmcecs' cannot run its chains vectorized: NumPyro's HMCECS draws one subsample "
                         "from one key at init, not a batch; use chain_method='parallel' or 'sequential'")
    if options["proxy"] is None and options["reference"] is not None:
        raise ValueError("method 'hmcecs': reference= is the Taylor proxy's expansion point; with proxy=None there "
                         "is none")
    size, blocks = options["subsample_size"], options["num_blocks"]
    if size is not None and blocks > size:
        raise ValueError(f"method 'hmcecs': num_blocks={blocks} is above subsample_size={size} (each block holds "
                         "at least one point)")


def prepare(spec, backend: str, options: dict) -> None:
    """Find the data plate, default the subsample size from its size, and check that the model
    runs subsampled: on the CPU, before anything is sampled."""
    from inference.backends.numpyro_common import backend_context, to_backend, with_networks

    dtype = options.get("dtype") or spec.dtype
    with backend_context("cpu", dtype):
        (model,) = with_networks(spec, 0, dtype, spec.model_fn("numpyro"))
        data = to_backend(spec.data, dtype)
        trace = _trace(model, data)
        plate, num_data = find_plate(trace, spec.name, options["plate"])
        size = options["subsample_size"]
        if size is None:
            size = min(num_data - 1, max(DEFAULT_MIN, math.ceil(DEFAULT_FRACTION * num_data)))
        if size >= num_data:
            raise ValueError(f"method 'hmcecs': subsample_size={size} is not below the {num_data} points of plate "
                             f"{plate!r} of model {spec.name!r}; there is nothing to subsample")
        if options["num_blocks"] > size:
            raise ValueError(f"method 'hmcecs': num_blocks={options['num_blocks']} is above the subsample size {size} "
                             f"of model {spec.name!r} (each block holds at least one point)")
        check_subsampled(model, data, spec.name, plate, size)
        if options["reference"] is not None:
            latent = {n for n, s in trace.items() if s["type"] == "sample" and not s["is_observed"]}
            unknown = sorted(set(options["reference"]) - latent)
            missing = sorted(latent - set(options["reference"]))
            if unknown or missing:
                raise ValueError(f"method 'hmcecs': reference= must give every latent site of model {spec.name!r} "
                                 f"({sorted(latent)}); unknown {unknown}, missing {missing}")
    options["plate"], options["subsample_size"] = plate, size


# ---------------------------------------------------------------- the run

def map_point(model, data: dict, key, num_steps: int) -> dict:
    """The MAP of ``model`` on all of ``data``: constrained values by latent site, from NumPyro's own
    machinery as in NumPyro's HMCECS example (SVI with ``AutoDelta``), here with Adam's step size
    decaying from 0.1 to 0.001 over ``num_steps`` (the layer's SVI schedule). Not BFGS
    (``numpyro.optim.Minimize``): on this layer's 20000-point regression it stepped out to a noise
    variance of 0 and coefficients in the thousands, and compiled for 10 s. The expansion point need
    not be the exact MAP, only near the posterior's bulk."""
    import jax
    import numpy as np
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoDelta
    from numpyro.optim import Adam

    guide = AutoDelta(model)
    svi = SVI(model, guide, Adam(lambda i: 0.1 * 0.01 ** (i / num_steps)), Trace_ELBO())
    fit = svi.run(key, num_steps, progress_bar=False, **data)
    point = {k: jax.device_get(v) for k, v in guide.median(fit.params).items()}
    bad = [k for k, v in point.items() if not np.isfinite(np.asarray(v)).all()]
    if bad or not np.isfinite(np.asarray(fit.losses[-1])):
        raise ValueError(f"method 'hmcecs': the MAP fit for the Taylor proxy's reference ended at a non-finite point "
                         f"(sites {bad or sorted(point)}); give reference= yourself")
    return point


def _taylor_two_state(*fields):
    from numpyro.contrib.ecs_proxies import TaylorTwoProxyState

    return TaylorTwoProxyState(*fields)


@functools.cache
def _picklable_proxy_state() -> None:
    """NumPyro 0.22 names the class ``TaylorTwoProxyState`` "TaylorProxyState", so pickle cannot find
    it by name and a checkpoint (a pickled sampler state) of a degree-2 proxy fails; a reducer of its
    own, registered with ``copyreg``, rebuilds it by the right name."""
    import copyreg

    from numpyro.contrib.ecs_proxies import TaylorTwoProxyState

    copyreg.pickle(TaylorTwoProxyState, lambda state: (_taylor_two_state, tuple(state)))


def kernel(model, opts: dict, *, reference: dict | None):
    from numpyro.infer import HMCECS, NUTS

    _picklable_proxy_state()

    inner = subsampled(model, opts["plate"], opts["subsample_size"])
    sampler = NUTS(inner, target_accept_prob=opts["target_accept_prob"], max_tree_depth=opts["max_tree_depth"],
                   dense_mass=opts["dense_mass"])
    proxy = None if reference is None else HMCECS.taylor_proxy(reference, degree=opts["taylor_degree"])
    return HMCECS(sampler, num_blocks=opts["num_blocks"], proxy=proxy)


def run(spec, model, *, backend: str = "numpyro", method: str, seed: int, device: str, dtype: str, **opts):
    import jax

    from inference.backends.numpyro_common import backend_context, to_backend, with_networks
    from inference.backends.numpyro_mcmc import default_chain_method
    from inference.backends.numpyro_mcmc import run as run_mcmc

    if opts["chain_method"] is None and default_chain_method(opts["num_chains"], device) == "vectorized":
        opts["chain_method"] = "sequential"  # on a GPU: NumPyro's HMCECS does not vectorize (see check)
    reference, elapsed = None, 0.0
    if opts["proxy"] == "taylor":
        with backend_context(device, dtype):
            if opts["reference"] is not None:
                reference = {k: jax.numpy.asarray(v, dtype=dtype) for k, v in opts["reference"].items()}
            else:
                t0 = time.perf_counter()
                (fn,) = with_networks(spec, seed, dtype, model)
                reference = map_point(fn, to_backend(spec.data, dtype),
                                      jax.random.fold_in(jax.random.PRNGKey(seed), 1), opts["map_steps"])
                elapsed = time.perf_counter() - t0
    result = run_mcmc(spec, model, kernel=functools.partial(kernel, reference=reference), stats=STATS,
                      derive=tree_depth, method=method, seed=seed, device=device, dtype=dtype, **opts)
    result.timing["reference_map"] = elapsed
    result.info.update(plate=opts["plate"], subsample_size=opts["subsample_size"],
                       reference="given" if opts["reference"] is not None else "MAP" if reference is not None
                       else "none")
    return result


register_method(
    "hmcecs", family="mcmc", backends=NUMPYRO, takes="model", doc=__doc__, check=check, prepare=prepare,
    options={**BASE_OPTIONS,
             **{k: MCMC_OPTIONS[k] for k in ("target_accept_prob", "dense_mass")},
             "max_tree_depth": opt(10, "maximum NUTS tree depth", integer(1), NUMPYRO),
             "subsample_size": opt(None, f"data points per subsample (default: {DEFAULT_FRACTION:.0%} of the data "
                                         f"plate, at least {DEFAULT_MIN})", or_none(integer(1)), NUMPYRO),
             "num_blocks": opt(100, "blocks of the subsample, one renewed per iteration (the paper's G)",
                               integer(1), NUMPYRO),
             "proxy": opt("taylor", "the log-likelihood estimator: taylor (difference estimator with a Taylor "
                                    "control variate) or None (naive subsampling)", one_of("taylor", None), NUMPYRO),
             "taylor_degree": opt(2, "order of the Taylor proxy's expansion", one_of(1, 2), NUMPYRO),
             "reference": opt(None, "the Taylor proxy's expansion point, a dict of every latent site to its "
                                    "constrained value (default: the MAP on all the data)",
                              (_valid_reference, "None or a dict of site names to values"), NUMPYRO),
             "map_steps": opt(2000, "Adam steps of the MAP fit that gives the Taylor proxy's reference (when "
                                    "reference is None)", integer(1), NUMPYRO),
             "plate": opt(None, "name of the data plate to subsample (default: the one plate around the observed "
                                "sites that holds no latent site)",
                          (lambda v: v is None or isinstance(v, str), "None or a plate name"), NUMPYRO)},
)(run)
