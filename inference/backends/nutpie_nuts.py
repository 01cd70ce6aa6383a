"""NUTS as nutpie writes it, on a model's ``Potential``: nutpie's sampler (Rust, the ``nuts-rs``
crate) calling the model's JAX log density and gradient, jitted once, from Python.

nutpie (Seyboldt et al., https://github.com/pymc-devs/nutpie) runs the No-U-Turn Sampler with
multinomial sampling along the trajectory, as Stan, NumPyro and BlackJAX do, but adapts
differently during warmup: its diagonal mass matrix is estimated from the variances of both the
draws and the gradients (``use_grad_based_mass_matrix``), over windows that switch every 10 draws
early in warmup and every 80 later (nutpie 0.16's defaults), and its step size by dual averaging
towards ``target_accept_prob``, then jittered draw by draw (``step_size_jitter`` = 0.1).
``max_tree_depth`` is nutpie's ``maxdepth``: at most 2**max_tree_depth - 1 leapfrog steps a draw,
as NumPyro's ``max_tree_depth`` (checked in tests/test_nutpie_nested.py); a transition whose energy
error exceeds 1000 is divergent, as in NumPyro and Stan.

How the model reaches nutpie: ``nutpie.compiled_pyfunc.from_pyfunc`` (nutpie's API for a log
density written in Python; ``nutpie.compile_pymc_model(..., backend="jax")`` builds the same thing
from a PyMC model) takes a function ``x -> (logp, gradient)`` on the flat unconstrained vector,
here ``jax.value_and_grad`` of ``potential.logdensity``, jitted. No compiler is needed (nutpie's
Stan and numba paths need one; this path does not). nutpie calls the function from its own
threads, one per chain; two details keep that correct:

* the jitted functions are compiled in the calling thread before sampling, and called under the
  calling thread's JAX device and precision (``jax.default_device`` and ``jax.enable_x64`` are
  thread-local: without them a chain's thread would trace the function again), and
* tracing holds a lock, since NumPyro's effect handlers live on one global stack.

A non-finite log density (outside the support, an overflow) is a divergent transition to nutpie,
as to NumPyro. Initial points are ``potential.init``'s (NumPyro's: uniform on (-2, 2) in the
unconstrained space, where the density is finite), drawn from ``rng_key`` and the seed nutpie
gives each chain, so a run is reproducible from its key.

The mass matrix: diagonal by default; ``dense_mass=True`` takes nutpie's nearest, its low-rank
modified mass matrix (``low_rank_modified_mass_matrix``, "experimental" in nutpie 0.16): the
diagonal one with a low-rank correction estimated from the draws and gradients of warmup, which,
in nutpie's words, ignores eigenvalues between 1/cutoff and cutoff (``mass_matrix_eigval_cutoff``,
default 100), so it fits strong correlations and leaves weak ones. Measured here: on kidiq's
``kidscore_momiq`` (intercept and slope correlated near -1; 4 chains of 1000 draws, seed 0) it took
2.9 leapfrog steps a draw to the diagonal's 13.5, and on the conjugate regression 2.6 to 5.6.

This module only wraps the library; the layer exposes it as ``method="nuts", engine="nutpie"``.
"""
from __future__ import annotations

import os
import threading

import jax
import jax.numpy as jnp
import numpy as np

# nutpie's sample statistics -> ArviZ's names (InferenceResult.sample_stats)
STAT_NAMES = {"diverging": "diverging", "mean_tree_accept": "acceptance_rate", "n_steps": "n_steps",
              "energy": "energy", "step_size": "step_size", "depth": "tree_depth", "logp": "lp"}


def _compiled_model(potential, init_key):
    """nutpie's model of ``potential``: its log density and gradient, jitted, and initial points."""
    from nutpie.compiled_pyfunc import from_pyfunc

    trace_lock = threading.Lock()
    device, x64 = jax.config.jax_default_device, bool(jax.config.jax_enable_x64)  # this thread's

    def logdensity(x):
        with trace_lock:  # runs only while JAX traces it: NumPyro's handler stack is global
            return potential.logdensity(x)

    def initial(seed):
        with trace_lock:
            return potential.init(jax.random.fold_in(init_key, seed), 1)[0]

    value_and_grad = jax.jit(jax.value_and_grad(logdensity))
    initial_point = jax.jit(initial)
    # compile both here, in the caller's thread, for the argument types nutpie's threads pass
    value_and_grad(np.zeros(potential.dim))
    initial_point(np.uint32(0))

    def in_context(fn, *args):
        with jax.default_device(device), jax.enable_x64(x64):  # the caller's, so no thread traces again
            return fn(*args)

    def make_logp_fn():
        def logp(x):
            value, grad = in_context(value_and_grad, x)
            return float(value), np.asarray(grad, dtype=np.float64)

        return logp

    def make_expand_fn(seed1, seed2, chain):
        def expand(x):  # the draw itself, the flat unconstrained vector: the layer constrains it
            return {"x": np.array(x, dtype=np.float64)}

        return expand

    def make_initial_point(seed):
        return np.asarray(in_context(initial_point, np.uint32(seed % 2**32)), dtype=np.float64)

    return from_pyfunc(potential.dim, make_logp_fn, make_expand_fn, [np.dtype("float64")], [(potential.dim,)],
                       ["x"], make_initial_point_fn=make_initial_point)


def nuts(potential, *, rng_key, num_warmup: int, num_samples: int, num_chains: int, target_accept_prob: float,
         max_tree_depth: int, dense_mass: bool = False, progress_bar: bool = False):
    """nutpie's NUTS on ``potential`` (an ``inference.potential.Potential``), with nutpie's own warmup.

    Returns ``(draws, stats)``: draws ``(num_chains, num_samples, potential.dim)`` on the unconstrained
    space, and per-draw statistics under ArviZ's names, ``(num_chains, num_samples)`` each:
    ``diverging``, ``acceptance_rate`` (the mean acceptance probability over the trajectory),
    ``n_steps`` (leapfrog steps, one gradient each), ``tree_depth``, ``energy`` (the Hamiltonian at
    the draw), ``step_size`` (nutpie jitters the adapted one draw by draw) and ``lp`` (the log
    density at the draw, on the unconstrained space).
    """
    try:
        import nutpie
    except ImportError as e:
        raise ImportError(f"NUTS engine='nutpie' needs nutpie (pip install nutpie, or the package's 'nutpie' "
                          f"extra): {e}") from None
    init_key, seed_key = jax.random.split(rng_key)
    seed = int(jax.random.bits(seed_key, dtype=jnp.uint32))
    model = _compiled_model(potential, init_key)
    trace = nutpie.sample(model, draws=num_samples, tune=num_warmup, chains=num_chains,
                          cores=min(num_chains, os.cpu_count() or 1), seed=seed, save_warmup=False,
                          progress_bar=progress_bar, target_accept=target_accept_prob, maxdepth=max_tree_depth,
                          low_rank_modified_mass_matrix=dense_mass)
    draws = np.asarray(trace.posterior["x"].values)
    if draws.shape[1] < num_samples:
        # nutpie catches Ctrl-C itself and returns the draws it has: the run was interrupted
        raise KeyboardInterrupt(f"nutpie stopped after {draws.shape[1]} of {num_samples} draws")
    stats = {name: np.asarray(trace.sample_stats[key].values) for key, name in STAT_NAMES.items()}
    return draws, stats
