"""NUTS as BlackJAX writes it, on a model's ``Potential``: BlackJAX's window adaptation of the step
size and the inverse mass matrix (diagonal, or dense with ``dense_mass``; Stan's schedule), then
BlackJAX's NUTS kernel.

BlackJAX's NUTS (``blackjax.mcmc.nuts``) is the No-U-Turn Sampler of Hoffman & Gelman (2014, "The
No-U-Turn Sampler: Adaptively Setting Path Lengths in Hamiltonian Monte Carlo", JMLR 15) in its
iterative form with multinomial sampling of the proposal along the trajectory (Betancourt 2017, "A
Conceptual Introduction to Hamiltonian Monte Carlo"), the same algorithm as NumPyro's and Stan's.
``max_tree_depth`` is BlackJAX's ``max_num_doublings``: at most 2**max_tree_depth - 1 leapfrog steps
per draw, as NumPyro's ``max_tree_depth``.

This module only wraps the library: each chain runs its own ``blackjax.window_adaptation`` (chains
vmapped), then ``num_samples`` NUTS steps in a ``jax.lax.scan``, the whole run one jitted program.
It is not registered as a method here; the layer exposes it (``method="nuts", engine="blackjax"``).
"""
from __future__ import annotations

import blackjax
import jax
import jax.numpy as jnp
from blackjax.adaptation.base import get_filter_adapt_info_fn


def nuts(potential, *, rng_key, num_warmup: int, num_samples: int, num_chains: int, target_accept_prob: float,
         max_tree_depth: int, dense_mass: bool = False):
    """BlackJAX NUTS with BlackJAX's window adaptation on ``potential`` (an ``inference.potential.Potential``).

    Returns ``(draws, stats)``: draws ``(num_chains, num_samples, potential.dim)`` on the unconstrained
    space, and per-draw statistics under ArviZ's names, ``(num_chains, num_samples)`` each:
    ``diverging``, ``acceptance_rate``, ``n_steps`` (leapfrog steps, one gradient each), ``energy``
    (the Hamiltonian at the draw) and ``step_size`` (the adapted one, constant per chain).
    """
    logdensity = potential.logdensity
    warmup = blackjax.window_adaptation(
        blackjax.nuts, logdensity, is_mass_matrix_diagonal=not dense_mass, target_acceptance_rate=target_accept_prob,
        adaptation_info_fn=get_filter_adapt_info_fn(),  # keep none of the warmup's per-step states
        max_num_doublings=max_tree_depth,  # passed to the kernel during warmup, and returned in the parameters
    )

    def chain(warm_key, sample_key, position):
        (state, parameters), _ = warmup.run(warm_key, position, num_steps=num_warmup)
        sampler = blackjax.nuts(logdensity, **parameters)

        def step(state, key):
            state, info = sampler.step(key, state)
            return state, (state.position, info.is_divergent, info.acceptance_rate, info.num_integration_steps,
                           info.energy)

        _, (draws, diverging, acceptance, n_steps, energy) = jax.lax.scan(
            step, state, jax.random.split(sample_key, num_samples))
        step_size = jnp.broadcast_to(parameters["step_size"], (num_samples,))
        return draws, {"diverging": diverging, "acceptance_rate": acceptance, "n_steps": n_steps,
                       "energy": energy, "step_size": step_size}

    init_key, warm_key, sample_key = jax.random.split(rng_key, 3)
    positions = potential.init(init_key, num_chains)
    return jax.jit(jax.vmap(chain))(jax.random.split(warm_key, num_chains), jax.random.split(sample_key, num_chains),
                                    positions)
