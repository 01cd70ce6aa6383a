"""A NumPyro model lowered once to its log density on the unconstrained space: what a JAX
sampler or optimizer needs, and nothing of the spec, its networks or the device.

``Potential.of(model, data, seed)`` runs NumPyro's ``initialize_model`` once. The result holds

* ``dim``: the length of the flat unconstrained vector ``x``;
* ``logdensity(x)``: log p(x, data) on the unconstrained space, Jacobians included (the negative
  of NumPyro's potential energy), for one flat vector; jittable and differentiable;
* ``init(rng_key, n)``: ``(n, dim)`` initial points, drawn as NumPyro's NUTS draws its own
  (uniform on (-2, 2) in the unconstrained space, where the density is finite);
* ``constrain(x)``: the model's latent and deterministic sites at a flat vector, constrained,
  and ``constrain_draws(xs)`` for ``(chain, draw, dim)`` arrays of them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model


@dataclass(frozen=True)
class Potential:
    dim: int
    logdensity: Callable[[jax.Array], jax.Array]
    unravel: Callable[[jax.Array], dict]
    _initial: Callable[[jax.Array, int], jax.Array]
    _postprocess: Callable[[dict], dict]

    @classmethod
    def of(cls, model, data: dict, seed: int = 0) -> Potential:
        """``model`` (a NumPyro model function) conditioned on ``data`` (its keyword arguments)."""
        info = initialize_model(jax.random.PRNGKey(seed), model, model_kwargs=data, dynamic_args=False)
        flat, unravel = ravel_pytree(info.param_info.z)
        potential_fn, postprocess = info.potential_fn, info.postprocess_fn

        def logdensity(x):
            return -potential_fn(unravel(x))

        def initial(rng_key, n):
            keys = jax.random.split(rng_key, n)
            z = initialize_model(keys, model, model_kwargs=data, dynamic_args=False).param_info.z
            return jax.vmap(lambda zi: ravel_pytree(zi)[0])(z)

        return cls(dim=int(flat.shape[0]), logdensity=logdensity, unravel=unravel, _initial=initial,
                   _postprocess=postprocess)

    def init(self, rng_key, num_chains: int) -> jax.Array:
        """``(num_chains, dim)`` initial points on the unconstrained space."""
        return self._initial(rng_key, num_chains)

    def constrain(self, x) -> dict:
        """The model's latent and deterministic sites at the flat unconstrained vector ``x``."""
        return self._postprocess(self.unravel(x))

    def constrain_draws(self, draws) -> dict[str, np.ndarray]:
        """``constrain`` over ``(chain, draw, dim)`` draws: ``{site: (chain, draw, *shape)}``."""
        draws = jnp.asarray(draws)
        chains, num = draws.shape[:2]
        flat = draws.reshape(chains * num, self.dim)
        sites = jax.jit(jax.vmap(self.constrain))(flat)
        return {k: np.asarray(v).reshape(chains, num, *v.shape[1:]) for k, v in sites.items()}
