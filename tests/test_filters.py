"""The ARMA and GARCH recursion x_t = c_t + a x_{t-1}: both backends' forms against Stan's loop."""
import numpy as np
import pytest

from ppl_models.generic import use_backend
from ppl_models.time_series.filters import lag_data, recursion


def stan_loop(a, c):
    x = [c[0]]
    for c_t in c[1:]:
        x.append(c_t + a * x[-1])
    return np.array(x)


@pytest.mark.parametrize("a", [0.5, -0.9, 1.05])
@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_recursion_is_stans_loop(backend, a):
    c = np.random.default_rng(0).normal(size=120)
    lag, causal = lag_data(len(c)).values()
    if backend == "numpyro":
        import jax.numpy as xp
        to = xp.asarray
    else:
        import torch
        to = lambda v: torch.as_tensor(v, dtype=torch.float64)  # noqa: E731
    with use_backend(backend):
        x = recursion(to(a), to(c[0]), to(c[1:]), to(lag), to(causal))
    tol = 1e-5 if np.asarray(x).dtype == np.float32 else 1e-10  # JAX without x64 computes in float32
    np.testing.assert_allclose(np.asarray(x), stan_loop(a, c), rtol=tol, atol=tol)


def test_numpyro_recursion_batches_without_a_square_matrix():
    """Under vmap (Pathfinder's draws, ChEES's chains) the scan holds one length-T vector per point:
    its jaxpr has no T x T intermediate."""
    import jax
    import jax.numpy as jnp

    T = 150
    lag, causal = lag_data(T).values()

    def one(a):
        with use_backend("numpyro"):
            return recursion(a, 1.0, jnp.ones(T - 1), lag, causal)

    jaxpr = jax.make_jaxpr(jax.vmap(one))(jnp.linspace(-0.5, 0.5, 7))
    shapes = [v.aval.shape for eqn in jaxpr.eqns for v in eqn.outvars]
    assert max(int(np.prod(s)) for s in shapes) <= 7 * T, shapes
