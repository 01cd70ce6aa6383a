"""Pyro plumbing shared by the Pyro backends: device, precision, data, site tracing, seeding."""
from __future__ import annotations

import contextlib

import numpy as np
import pyro
import pyro.util
import torch
from pyro import poutine
from pyro.distributions.transforms import biject_to
from pyro.infer.autoguide.initialization import InitMessenger
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from torch.distributions.transforms import identity_transform

from inference.sites import SiteInfo
from ppl_models.errors import DataError, DeviceError, PPLError
from ppl_models.nets import network_seed, params_of
from ppl_models.spec import bind_networks, check_left_at_none, check_observed, diagnose_trace_error


def torch_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        build = "" if torch.version.cuda else " (a CPU-only build)"
        raise DeviceError(f"device='cuda' was asked for, but torch {torch.__version__} finds no CUDA GPU{build}: "
                          "use device='cpu', or install a CUDA torch")
    return torch.device(device)


@contextlib.contextmanager
def backend_context(device: str, dtype: str, small: bool = False):
    """Make ``device`` and ``dtype`` torch's defaults inside the block, so that model
    code that writes ``dist.Normal(0.0, 5.0)`` builds tensors in the right place.

    ``small``: the model's tensors are small (``is_small``), so torch computes on one thread
    inside the block. Splitting a 10 x 10 operation over threads gains nothing, and on a busy
    machine the threads' waiting for each other made Pyro SVI on eight schools 4x slower (1000
    steps of a full-rank guide: 3.9 s on one thread, 15.8 s on two, with a load of 3 on two cores)."""
    dev = torch_device(device)
    old, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(getattr(torch, dtype))
    if small:
        torch.set_num_threads(1)
    try:
        # A default-device context intercepts every torch call (a TorchFunctionMode), which
        # costs Pyro's Python-heavy steps 20-50% on small models: enter it only off the CPU.
        with torch.device(dev) if dev.type != "cpu" else contextlib.nullcontext():
            yield dev
    finally:
        torch.set_default_dtype(old)
        torch.set_num_threads(threads)


SMALL_DATA = 100_000  # data elements below which a model without networks computes on one thread


def is_small(spec) -> bool:
    """Whether ``spec``'s tensors are small: no networks, and fewer than SMALL_DATA data elements."""
    return not spec.networks and sum(int(np.size(v)) for v in spec.data.values()) < SMALL_DATA


def gradients_finite(params) -> bool:
    """Whether every gradient of ``params`` is finite: one reduction, their total norm, which is
    finite unless an entry is not (or the sum overflows)."""
    grads = [p.grad for p in params if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))


def start(seed: int) -> None:
    """A clean state for a run: an empty parameter store, every RNG seeded."""
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)


def rng_state() -> dict:
    """Every RNG state a Pyro run draws from: Python's, NumPy's, torch's and, once in use, CUDA's."""
    state = pyro.util.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore ``rng_state()``."""
    pyro.util.set_rng_state({k: v for k, v in state.items() if k != "cuda"})
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def to_backend(data: dict, device: torch.device) -> dict:
    """numpy arrays to tensors (floats in the default dtype, integers as long, booleans as bool);
    Python scalars unchanged."""
    dtypes = {"f": torch.get_default_dtype(), "i": torch.long, "u": torch.long, "b": torch.bool}
    return {k: torch.as_tensor(v, dtype=dtypes[v.dtype.kind], device=device) if isinstance(v, np.ndarray) else v
            for k, v in data.items()}


def with_networks(spec, seed: int, device: torch.device, *fns, params: dict | None = None) -> list:
    """``fns`` with the spec's networks, built afresh from ``seed`` in the default dtype on ``device``,
    bound to those that take them. ``params`` named ``<network>$$$<parameter>`` (as ``pyro.module``
    names them) are loaded into the networks: ``pyro.module`` would not take them from the param store."""
    dtype = str(torch.get_default_dtype()).removeprefix("torch.")
    nets = {name: factory.build("pyro", network_seed(seed, name), dtype).to(device)
            for name, factory in spec.networks.items()}
    for name, net in nets.items():
        given = params_of(params or {}, name)
        if given:
            net.load_state_dict({k: torch.as_tensor(v) for k, v in given.items()})
    return [bind_networks(fn, nets) for fn in fns]


def frames(site) -> tuple:
    return tuple((f.name, f.dim) for f in site["cond_indep_stack"])


def reduce_log_prob(site, plate, lead: int = 0) -> torch.Tensor:
    """A site's log density, unscaled, summed to ``lead`` leading dims (particles), plus one per
    element of ``plate`` if given."""
    lp = site["fn"].log_prob(site["value"])
    if plate is None:
        return lp.reshape(*lp.shape[:lead], -1).sum(-1)
    lp = lp.movedim(lp.dim() + plate[1], lead)
    return lp.reshape(*lp.shape[:lead + 1], -1).sum(-1)


def to_numpy(tree: dict) -> dict:
    return {k: v.detach().cpu().numpy() for k, v in tree.items()}


def init_to_uniform(site, radius: float = 2.0):
    """Initialize uniformly on (-radius, radius) in unconstrained space, as NumPyro does by default.

    Pyro's own ``init_to_uniform`` and ``init_to_feasible`` draw a sample to learn
    the site's shape, which an improper prior (``ImproperUniform``) cannot give;
    this one takes the shape from the distribution. Used by every Pyro backend
    for MCMC initialization and autoguide locations.
    """
    t = biject_to(site["fn"].support)
    value = t(torch.rand(t.inverse_shape(site["fn"].shape())) * (2 * radius) - radius).detach()
    value._pyro_custom_init = False
    return value


def _prior_draw(site):
    """A prior draw; for an improper prior, or one that cannot be sampled here (an optional package
    missing), uniform on (-2, 2) in unconstrained space (what NumPyro's ``init_to_sample`` does)."""
    try:
        value = site["fn"].sample().detach()
    except Exception:  # noqa: BLE001 - NotImplementedError for improper priors, ImportError, ...
        return init_to_uniform(site)
    value._pyro_custom_init = False
    return value


def _prior_trace(fn, data: dict):
    """One run of ``fn`` with latent values drawn from the prior."""
    with torch.no_grad():
        return poutine.trace(InitMessenger(_prior_draw)(fn)).get_trace(**data)


def _support_trace(fn, data: dict):
    """One run of ``fn`` to read its latent sites' supports: ``_prior_trace`` from a fixed seed, the
    caller's RNG state kept, as NumPyro's side reads them from seed 0. A point's log density then
    neither depends on what drew from the RNG before nor moves it (it did both: on
    ``one_comp_mm_elim_abs``, whose ODE gave a NaN at some prior draws, it failed for 6 of 200 torch seeds)."""
    state = pyro.util.get_rng_state()
    try:
        pyro.set_rng_seed(0)
        return _prior_trace(fn, data)
    finally:
        pyro.util.set_rng_state(state)


def _observed(trace) -> dict:
    return {n: s for n, s in trace.nodes.items() if s["type"] == "sample" and s["is_observed"]
            and not site_is_subsample(s) and not s["infer"].get("_deterministic")}


def _runs(fn, data: dict) -> Exception | None:
    """The error running ``fn`` on ``data`` raises (tracing it, and the log density of observed
    integer values), or None; the RNG state is left as it was."""
    state = pyro.util.get_rng_state()
    try:
        with torch.no_grad():
            trace = _prior_trace(fn, data)
            for site in _observed(trace).values():
                if torch.is_tensor(site["value"]) and not site["value"].is_floating_point():
                    site["fn"].log_prob(site["value"])
        return None
    except Exception as e:  # noqa: BLE001 - any failure counts
        return e
    finally:
        pyro.util.set_rng_state(state)


def settle_integers(fn, data: dict) -> dict:
    """``data`` with the integer arrays the model cannot take as integers cast to the float dtype.

    Integer arrays reach a model as ``torch.long`` so that they can index. Torch does not promote
    integers everywhere (``x.mean()``, ``X @ beta``, a Bernoulli's log density), so if ``fn`` fails on
    a Long tensor, the integer arrays are cast to floats: all of them, else all but one (an index),
    else one; the first choice that lets ``fn`` run is taken. ``data`` itself if none is needed."""
    longs = [k for k, v in data.items() if torch.is_tensor(v) and v.dtype in (torch.long, torch.int32)]
    if not longs:
        return data
    error = _runs(fn, data)
    if error is None or "long" not in str(error).lower():
        return data
    choices = [longs] + ([[k for k in longs if k != one] for one in longs] if len(longs) > 1 else [])
    choices += [[one] for one in longs] if len(longs) > 2 else []
    for keys in choices:
        cast = {**data, **{k: data[k].to(torch.get_default_dtype()) for k in keys}}
        if _runs(fn, cast) is None:
            return cast
    return data


def _diagnosed(error: Exception, fn, data: dict, partial, role: str) -> Exception | None:
    """A one-line error naming the data (or network precision) behind ``error``, or None."""
    dtype = torch.get_default_dtype()
    params = {n: s["value"].dtype for n, s in partial.nodes.items() if s["type"] == "param"
              and torch.is_tensor(s["value"]) and s["value"].is_floating_point() and s["value"].dtype != dtype}
    if params and "dtype" in str(error).lower():
        name, theirs = next(iter(params.items()))
        theirs, ours = str(theirs).removeprefix("torch."), str(dtype).removeprefix("torch.")
        return DataError(f"the {role}'s network parameters are {theirs} (parameter {name!r}), but this run is {ours}, "
                         f"the data cast to it: pass dtype={theirs!r} to inference.run (or set it in the ModelSpec), "
                         f"or give the data as {theirs} arrays ({type(error).__name__}: "
                         f"{(str(error).splitlines() or [''])[0][:120]})")
    plates = {n: s["fn"].size for n, s in partial.nodes.items() if site_is_subsample(s)}
    found = diagnose_trace_error(error, fn, data, plates, role)
    longs = [k for k, v in data.items() if torch.is_tensor(v) and not v.is_floating_point() and v.dtype != torch.bool]
    if found is None and longs and "long" in str(error).lower():
        found = DataError(f"the {role} fails on the integer array(s) {longs} as torch.long, and on every choice of "
                          f"them cast to floats: pass covariates as floats (x.astype(float)) and keep indices integer "
                          f"({type(error).__name__}: {(str(error).splitlines() or [''])[0][:120]})")
    return found


def _checked_trace(fn, data: dict, role: str = "model"):
    """``_prior_trace`` with a failure diagnosed (``_diagnosed``)."""
    handler = poutine.trace(InitMessenger(_prior_draw)(fn))
    try:
        with torch.no_grad():
            return handler.get_trace(**data)
    except PPLError:
        raise
    except Exception as e:
        error = _diagnosed(e, fn, data, handler.msngr.trace, role)
        if error is None:
            raise
        raise error from e


def trace_sites(fn, data: dict) -> SiteInfo:
    """Sites of one run of ``fn`` (model or guide), latent values drawn as initialization does.

    Pyro records ``pyro.deterministic`` as an observed sample site marked
    ``infer["_deterministic"]``; those count as deterministic here, not observed.

    Data that does not fit the model is named: an array whose shape fits no plate, an observed value
    outside its distribution's support, a data key missing (an argument left at None), network
    parameters in another precision than the run's. Integer arrays the model cannot take as integers
    are cast to floats in ``data`` itself, for the rest of the run (``settle_integers``).
    """
    data.update(settle_integers(fn, data))
    trace = _checked_trace(fn, data)
    nodes = {n: s for n, s in trace.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)}
    auxiliary = {n for n, s in nodes.items() if s["infer"].get("is_auxiliary")}
    latent = {n: tuple(s["value"].shape) for n, s in nodes.items() if not s["is_observed"] and n not in auxiliary}
    check_left_at_none(latent, fn, data)
    for name, site in _observed(trace).items():
        d = site["fn"]
        try:
            inside = d.support.check(site["value"]).cpu().numpy()
        except Exception:  # noqa: BLE001 - a dependent support, or one that cannot check this value
            inside = None
        check_observed(name, site["value"].cpu().numpy(), tuple(d.batch_shape) + tuple(d.event_shape),
                       {f.name: f.size for f in site["cond_indep_stack"]}, inside, d.support, data)
    return SiteInfo(
        latent=latent,
        observed={n: s["value"].detach().cpu().numpy() for n, s in _observed(trace).items()},
        deterministic={n: tuple(s["value"].shape) for n, s in nodes.items() if s["infer"].get("_deterministic")},
        max_plate_nesting=max((len(s["cond_indep_stack"]) for s in nodes.values()), default=0),
        auxiliary={n: tuple(nodes[n]["value"].shape) for n in auxiliary},
    )


def predictive_draws(predictive, data: dict, shapes: dict, lead: tuple) -> dict:
    """``Predictive`` draws reshaped to ``(*lead, *site_shape)``.

    Pyro's ``Predictive`` pads every site with singleton plate dimensions; the
    site shapes recorded by :func:`trace_sites` undo that.
    """
    with torch.no_grad():
        values = to_numpy(predictive(**data))
    return {k: v.reshape(*lead, *shapes[k]) for k, v in values.items()}


def unconstrain(support):
    """The bijection from unconstrained space onto ``support``; the identity for a discrete support
    (a discrete latent, a Bernoulli unit say, has no unconstrained space: its values stand as they are)."""
    return identity_transform if support.is_discrete else biject_to(support)


def prior_point(model, data: dict, seed: int) -> dict[str, np.ndarray]:
    """A prior draw of every latent site, mapped to unconstrained space."""
    data = settle_integers(model, data)
    pyro.set_rng_seed(seed)
    trace = _prior_trace(model, data)
    return {n: unconstrain(s["fn"].support).inv(s["value"]).detach().cpu().numpy() for n, s in trace.nodes.items()
            if s["type"] == "sample" and not s["is_observed"] and not site_is_subsample(s)}


def log_density(model, data: dict, point: dict[str, np.ndarray]) -> float:
    """Log joint density at an unconstrained point, Jacobians of the transforms included.

    Written out rather than taken from ``initialize_model``'s potential function, which
    refuses models with subsampled plates; sites keep their subsampling scale, as in training,
    and so do their Jacobians (as in NumPyro: a minibatch's latents stand for all the data's).
    """
    data = settle_integers(model, data)
    supports = {n: s["fn"].support for n, s in _support_trace(model, data).nodes.items() if n in point}
    values, jacobians = {}, {}
    with torch.no_grad():
        for name, u in point.items():
            transform, u = unconstrain(supports[name]), torch.tensor(u, dtype=torch.get_default_dtype())
            values[name] = transform(u)
            jacobians[name] = transform.log_abs_det_jacobian(u, values[name]).sum()
        trace = poutine.trace(poutine.condition(model, data=values)).get_trace(**data)
        log_jacobian = sum(trace.nodes[name]["scale"] * jac for name, jac in jacobians.items())
        return float(trace.log_prob_sum() + log_jacobian)


def generated_data(model, data: dict, point: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The observed sites drawn afresh (``poutine.uncondition``) with the latents at ``point``
    (unconstrained): what an implicit model generates from that noise."""
    data = settle_integers(model, data)
    supports = {n: s["fn"].support for n, s in _support_trace(model, data).nodes.items() if n in point}
    values = {n: unconstrain(supports[n])(torch.tensor(u, dtype=torch.get_default_dtype())) for n, u in point.items()}
    with torch.no_grad():
        trace = poutine.trace(poutine.condition(poutine.uncondition(model), data=values)).get_trace(**data)
    return {n: s["value"].cpu().numpy() for n, s in trace.nodes.items()
            if s["type"] == "sample" and s["infer"].get("was_observed")}


class _UnconditionData(Messenger):
    """``poutine.uncondition`` for the data only. Pyro records ``pyro.deterministic`` as an
    observed ``Delta`` site, which ``uncondition`` would redraw, broadcasting it against its plate."""

    def _pyro_sample(self, msg):
        if msg["is_observed"] and not msg["infer"].get("_deterministic"):
            msg["is_observed"], msg["done"] = False, False
            msg["infer"]["was_observed"], msg["infer"]["obs"], msg["value"] = True, msg["value"], None


def prior_predictive(model, data: dict, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One draw of the joint prior predictive: every latent and deterministic site's value, and
    the observed sites drawn afresh given them."""
    data = settle_integers(model, data)
    pyro.set_rng_seed(seed)
    with torch.no_grad():
        trace = poutine.trace(_UnconditionData()(model)).get_trace(**data)
    params, observed = {}, {}
    for name, site in trace.nodes.items():
        if site["type"] == "sample" and not site_is_subsample(site):
            (observed if site["infer"].get("was_observed") else params)[name] = site["value"].cpu().numpy()
    return params, observed


def versions() -> dict:
    return {"pyro": pyro.__version__, "torch": torch.__version__}
