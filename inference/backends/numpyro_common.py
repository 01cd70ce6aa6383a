"""NumPyro plumbing shared by the NumPyro backends: device, precision, data, site tracing."""
from __future__ import annotations

import contextlib
import os

import numpyro

# Host devices let chains run in parallel on the CPU. This only takes effect if
# JAX has not started its CPU backend yet, which is why it runs at import.
numpyro.set_host_device_count(max(os.cpu_count() or 1, 4))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from numpyro import handlers  # noqa: E402
from numpyro.distributions.transforms import biject_to  # noqa: E402
from numpyro.infer.initialization import init_to_sample, init_to_uniform  # noqa: E402
from numpyro.infer.util import potential_energy  # noqa: E402

from inference.sites import SiteInfo  # noqa: E402
from ppl_models.errors import DeviceError, PPLError  # noqa: E402
from ppl_models.nets import network_seed, params_of  # noqa: E402
from ppl_models.spec import (  # noqa: E402
    bind_networks,
    check_left_at_none,
    check_observed,
    diagnose_trace_error,
)


def jax_device(device: str):
    platform = {"cpu": "cpu", "cuda": "gpu"}[device]
    try:
        return jax.devices(platform)[0]
    except RuntimeError:
        # JAX's own message ("Unknown backend: 'gpu' requested, but no platforms that are instances of gpu
        # are present ...") doubles the line's length and names its internals; the platforms it has say as much.
        here = ", ".join(sorted({d.platform for d in jax.devices()}))
        raise DeviceError(f"device={device!r} was asked for, but JAX {jax.__version__} finds no {platform.upper()} "
                          f"(only {here}): use device='cpu', or install a CUDA jaxlib") from None


@contextlib.contextmanager
def backend_context(device: str, dtype: str):
    """Run JAX on ``device`` in ``dtype`` precision inside the block, leaving global config as it was.

    ``jax.enable_x64`` is thread-local, but host callbacks (NumPyro's progress bar, an
    ``io_callback``) run on XLA's threads, which see only the global flag: with the bar on, a
    float64 run of parallel chains ended in "CpuCallback error ... Expected: int64, Actual: int32"
    when the callback's Python int was canonicalized to 32 bits. So the global flag is set to the
    run's precision too, and restored after.
    """
    dev = jax_device(device)
    x64 = dtype == "float64"
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", x64)
    try:
        with jax.enable_x64(x64), jax.default_device(dev):
            yield dev
    finally:
        jax.config.update("jax_enable_x64", previous)


def to_backend(data: dict, dtype: str) -> dict:
    """numpy arrays to JAX arrays (floats in ``dtype``); Python scalars stay as they are."""
    return {k: jnp.asarray(v, dtype=dtype if v.dtype.kind == "f" else None) if isinstance(v, np.ndarray) else v
            for k, v in data.items()}


def with_networks(spec, seed: int, dtype: str, *fns, params: dict | None = None) -> list:
    """``fns`` with the spec's networks, built afresh from ``seed``, bound to those that take them.
    ``params`` named ``<network>$$$<parameter>`` are loaded into the networks."""
    from ppl_models.nets.equinox_nets import with_parameters

    nets = {}
    for name, factory in spec.networks.items():
        net = factory.build("numpyro", network_seed(seed, name), dtype)
        given = {k: jnp.asarray(v, dtype=dtype) for k, v in params_of(params or {}, name).items()}
        nets[name] = with_parameters(net, given) if given else net
    return [bind_networks(fn, nets) for fn in fns]


def frames(site) -> tuple:
    return tuple((f.name, f.dim) for f in site["cond_indep_stack"])


def reduce_log_prob(site, plate) -> jnp.ndarray:
    """A site's log density, unscaled, summed to a scalar or to one value per element of ``plate``."""
    lp = site["fn"].log_prob(site["value"])
    if plate is None:
        return jnp.sum(lp)
    lp = jnp.moveaxis(lp, lp.ndim + plate[1], 0)
    return lp.reshape(lp.shape[0], -1).sum(-1)


def to_numpy(tree: dict) -> dict:
    """``name -> array`` as numpy. A nested entry (an autoguide's network, such as AutoIAFNormal's
    list of layer weights) becomes one entry per leaf, ``name[0][1]``, as ``jax.tree_util.keystr``
    names the leaf's path."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, (list, tuple, dict)):
            out |= {k + jax.tree_util.keystr(path): np.asarray(leaf)
                    for path, leaf in jax.tree_util.tree_flatten_with_path(v)[0]}
        else:
            out[k] = np.asarray(v)
    return out


def _prior_value(site):
    """A prior draw (``init_to_sample``: uniform in unconstrained space for improper priors), or where
    the prior cannot be sampled here (an optional package missing), ``init_to_uniform``'s point."""
    try:
        return init_to_sample(site)
    except Exception:  # noqa: BLE001 - ImportError for TensorFlow Probability's special functions, ...
        return init_to_uniform(site)


def _prior_trace(fn, data: dict, seed: int):
    """One run of ``fn`` with latent values drawn from the prior (``_prior_value``)."""
    return handlers.trace(handlers.substitute(handlers.seed(fn, seed), substitute_fn=_prior_value)).get_trace(**data)


def _init_value(site):
    """A latent's value for tracing, drawn as NUTS starts (``init_to_uniform``: uniform on (-2, 2) in
    unconstrained space), not from its prior, which may need an optional package to sample (a
    truncated StudentT needs TensorFlow Probability); discrete sites (None here) are drawn by the
    seed handler, and a support with no bijection to the reals falls back to a prior draw."""
    try:
        return init_to_uniform(site)
    except Exception:  # noqa: BLE001 - e.g. a support biject_to does not know
        return init_to_sample(site)


def _init_trace(fn, data: dict, seed: int, role: str = "model"):
    """One run of ``fn`` with latent values from ``_init_value``. A failure is diagnosed: data left
    out (arguments at None) or shaped to fit none of the plates is named (``diagnose_trace_error``)."""
    tracer = handlers.trace(handlers.substitute(handlers.seed(fn, seed), substitute_fn=_init_value))
    try:
        return tracer.get_trace(**data)
    except PPLError:
        raise
    except Exception as e:
        partial = getattr(tracer, "trace", None) or {}
        plates = {n: s["args"][0] for n, s in partial.items() if s["type"] == "plate"}
        error = diagnose_trace_error(e, fn, data, plates, role)
        if error is None:
            raise
        raise error from e


def _check_observed(trace, fn, data: dict) -> None:
    """The data at each observed site fits its distribution's shape and support."""
    for name, site in trace.items():
        if site["type"] != "sample" or not site["is_observed"]:
            continue
        d = site["fn"]
        try:
            inside = np.asarray(d.support.check(site["value"]))
        except Exception:  # noqa: BLE001 - a dependent support, or one that cannot check this value
            inside = None
        frames_ = {f.name: f.size for f in site["cond_indep_stack"]}
        check_observed(name, site["value"], tuple(d.batch_shape) + tuple(d.event_shape), frames_, inside,
                       d.support, data)


def trace_sites(fn, data: dict, seed: int = 0) -> SiteInfo:
    """Sites of one run of ``fn`` (model or guide), latent values drawn as NUTS initializes them
    (no prior draws). Data that does not fit the model is named: an array whose shape fits no plate,
    an observed value outside its distribution's support, a data key missing (argument left at None)."""
    trace = _init_trace(fn, data, seed)
    samples = {n: s for n, s in trace.items() if s["type"] == "sample"}
    auxiliary = {n for n, s in samples.items() if (s.get("infer") or {}).get("is_auxiliary")}
    latent = {n: tuple(s["value"].shape) for n, s in samples.items() if not s["is_observed"] and n not in auxiliary}
    check_left_at_none(latent, fn, data)
    _check_observed(trace, fn, data)
    return SiteInfo(
        latent=latent,
        observed={n: np.asarray(s["value"]) for n, s in trace.items() if s["type"] == "sample" and s["is_observed"]},
        deterministic={n: tuple(jnp.shape(s["value"])) for n, s in trace.items() if s["type"] == "deterministic"},
        auxiliary={n: tuple(samples[n]["value"].shape) for n in auxiliary},
    )


def prior_point(model, data: dict, seed: int) -> dict[str, np.ndarray]:
    """A prior draw of every latent site, mapped to unconstrained space."""
    trace = _prior_trace(model, data, seed)
    return {n: np.asarray(s["value"] if s["fn"].support.is_discrete else biject_to(s["fn"].support).inv(s["value"]))
            for n, s in trace.items()
            if s["type"] == "sample" and not s["is_observed"]}


def log_density(model, data: dict, point: dict[str, np.ndarray]) -> float:
    """Log joint density at an unconstrained point, Jacobians of the transforms included.

    Seeded so that subsampled plates can draw their indices; sites keep their subsampling
    scale, as in training."""
    point = {k: jnp.asarray(v) for k, v in point.items()}
    # discrete latents have no unconstrained space: their values stand as they are, conditioned on
    discrete = {n: point.pop(n) for n, s in _prior_trace(model, data, 0).items()
                if n in point and s["fn"].support.is_discrete}
    return -float(potential_energy(handlers.seed(handlers.condition(model, data=discrete), 0), (), data, point))


def generated_data(model, data: dict, point: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The observed sites drawn afresh (``handlers.uncondition``) with the latents at ``point``
    (unconstrained): what an implicit model generates from that noise."""
    supports = {n: s["fn"].support for n, s in _prior_trace(model, data, 0).items() if n in point}
    values = {n: biject_to(supports[n])(jnp.asarray(u)) for n, u in point.items()}
    model = handlers.substitute(handlers.uncondition(handlers.seed(model, 0)), data=values)
    return {n: np.asarray(s["value"]) for n, s in handlers.trace(model).get_trace(**data).items()
            if s["type"] == "sample" and s["infer"].get("was_observed")}


def prior_predictive(model, data: dict, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One draw of the joint prior predictive: every latent and deterministic site's value, and
    the observed sites drawn afresh given them (``handlers.uncondition``)."""
    trace = handlers.trace(handlers.uncondition(handlers.seed(model, seed))).get_trace(**data)
    params, observed = {}, {}
    for name, site in trace.items():
        if site["type"] == "deterministic":
            params[name] = np.asarray(site["value"])
        elif site["type"] == "sample":
            (observed if site["infer"].get("was_observed") else params)[name] = np.asarray(site["value"])
    return params, observed


def versions() -> dict:
    return {"numpyro": numpyro.__version__, "jax": jax.__version__}
