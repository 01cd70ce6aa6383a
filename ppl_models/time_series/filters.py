"""The first-order linear recursion the ARMA and GARCH programs run.

Stan's loops ``x_1 = c_1;  x_t = c_t + a x_{t-1}`` (the ARMA(1, 1) errors, with a = -theta; the
GARCH(1, 1) variances, with a = beta1) have the solution x_t = sum_{s <= t} a^(t-s) c_s.

- On NumPyro it is ``jax.lax.associative_scan`` over the pairs (a, c_t), composed as affine maps:
  O(T) memory per evaluation, so a sampler that evaluates thousands of points at once (Pathfinder's
  draws, ChEES's chains) holds thousands of length-T vectors.
- On Pyro it is one matrix-vector product with the lower triangular matrix a^(t-s), with no Python
  loop over t: the powers come from the data binding as ``lag`` (t - s, 0 above the diagonal) and
  ``causal`` (1 where s <= t, else 0). It costs T x T per evaluation, which was also the NumPyro
  form until batched samplers turned it into allocations of 26 and 51 GB on arma11.
"""
from __future__ import annotations

import numpy as np

from ppl_models.generic import active_backend


def lag_data(T: int) -> dict[str, np.ndarray]:
    """``lag`` and ``causal``, T x T, for :func:`recursion` on Pyro."""
    t = np.arange(T)
    lag = t[:, None] - t[None, :]
    return {"lag": np.maximum(lag, 0).astype(float), "causal": (lag >= 0).astype(float)}


def recursion(a, c_1, c_rest, lag, causal):
    """x with x_1 = c_1 and x_t = c_t + a x_{t-1} (t = 2..T, ``c_rest`` = c_2..c_T)."""
    if active_backend() == "numpyro":
        return _affine_scan(a, c_1, c_rest)
    weights = causal * a**lag  # c split at t = 1: c_1 and c_rest are computed apart, no concatenation
    return weights[:, 0] * c_1 + weights[:, 1:] @ c_rest


def _affine_scan(a, c_1, c_rest):
    """The recursion as a parallel prefix of the maps x -> a_t x + c_t: applying (a1, c1) and then
    (a2, c2) is (a2 a1, a2 c1 + c2), and the first map's slope is irrelevant (x_0 = 0)."""
    import jax
    import jax.numpy as jnp

    c = jnp.concatenate([jnp.reshape(c_1, (1,)), c_rest])
    slopes = jnp.broadcast_to(a, c.shape)

    def compose(first, then):
        return then[0] * first[0], then[0] * first[1] + then[1]

    return jax.lax.associative_scan(compose, (slopes, c))[1]
