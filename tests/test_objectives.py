"""The importance-weighted objectives (IWAE, DReG, RWS) against exact answers on a conjugate model.

Model: z_n ~ Normal(0, 1), x_n | z_n ~ Normal(z_n, 1) for N = 10 points, trained on a
minibatch of B = 3 (scale N / B); guide q(z_n) = Normal(m_n, s). The posterior is
Normal(x_n / 2, 1/2). Reference values of the bound come from 400k independent
replicates in numpy; every tolerance is 4 Monte Carlo standard errors.
"""
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

from ppl_models.generic import dist, for_backends, pyro

X = np.array([1.0, -0.5, 2.0])
N, K, M0, S0 = 10, 5, np.array([0.2, 0.1, 0.5]), 0.9
REPS = 400


def reference_bound(k: int) -> tuple[float, float]:
    """(N / B) sum_b E[log 1/k sum_i w_ib], and its Monte Carlo standard error."""
    rng = np.random.default_rng(0)
    z = rng.normal(M0, S0, size=(400_000, k, len(X)))
    log_w = norm.logpdf(z) + norm.logpdf(X, z) - norm.logpdf(z, M0, S0)
    per_rep = (logsumexp(log_w, axis=1) - np.log(k)).sum(-1) * N / len(X)
    return per_rep.mean(), per_rep.std() / np.sqrt(len(per_rep))


def model(x):
    with pyro.plate("data", N, subsample_size=len(x)):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=x)


def guide(x):
    m, s = pyro.param("m", M0), pyro.param("s", S0)
    with pyro.plate("data", N, subsample_size=len(x)):
        pyro.sample("z", dist.Normal(m, s))


MODEL, GUIDE = for_backends(model), for_backends(guide)


def numpyro_samples(estimator: str, k: int, reps: int = REPS):
    """Losses and gradients (d/dm, d/ds) of the objective, one per replicate."""
    import jax
    import jax.numpy as jnp

    from inference.backends.numpyro_objectives import ImportanceWeightedELBO

    model, guide = MODEL["numpyro"], GUIDE["numpyro"]
    with jax.enable_x64(True):
        elbo = ImportanceWeightedELBO(k, estimator)
        params = {"m": jnp.asarray(M0), "s": jnp.asarray(S0)}
        f = jax.jit(jax.vmap(jax.value_and_grad(lambda p, key: elbo.loss(key, p, model, guide, jnp.asarray(X))),
                             in_axes=(None, 0)))
        loss, grads = f(params, jax.random.split(jax.random.PRNGKey(0), reps))
        return np.asarray(loss), np.asarray(grads["m"]), np.asarray(grads["s"])


def pyro_samples(estimator: str, k: int, reps: int = REPS):
    import pyro as raw_pyro
    import torch

    from inference.backends.pyro_objectives import ImportanceWeightedELBO

    model, guide = MODEL["pyro"], GUIDE["pyro"]
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        raw_pyro.clear_param_store()
        raw_pyro.set_rng_seed(0)
        elbo, x = ImportanceWeightedELBO(k, estimator, max_plate_nesting=1), torch.tensor(X)
        out = []
        for _ in range(reps):
            loss = elbo.loss_and_grads(model, guide, x)
            m, s = (raw_pyro.param(n).unconstrained() for n in ("m", "s"))
            out.append((loss, m.grad.numpy().copy(), float(s.grad)))
            m.grad, s.grad = None, None
        return tuple(np.array(v) for v in zip(*out, strict=True))
    finally:
        torch.set_default_dtype(old)


SAMPLERS = {"numpyro": numpyro_samples, "pyro": pyro_samples}


def within(a: np.ndarray, b: np.ndarray, se: np.ndarray) -> bool:
    return bool(np.all(np.abs(a - b) <= 4 * se))


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
@pytest.mark.parametrize("estimator", ["iwae", "dreg", "rws"])
def test_loss_is_the_per_point_bound_scaled_by_n_over_b(backend, estimator):
    losses = SAMPLERS[backend](estimator, K)[0]
    ref, ref_se = reference_bound(K)
    se = np.hypot(losses.std() / np.sqrt(len(losses)), ref_se)
    assert abs(-losses.mean() - ref) <= 4 * se, (-losses.mean(), ref, se)


def test_pyro_renyi_elbo_scales_inside_the_log_sum_exp():
    """Why elbo='iwae' is ours on Pyro: RenyiELBO(alpha=0) misses the bound on a subsampled plate."""
    import pyro as raw_pyro
    import torch
    from pyro.infer import RenyiELBO

    raw_pyro.clear_param_store()
    raw_pyro.set_rng_seed(0)
    x, elbo = torch.tensor(X, dtype=torch.float32), RenyiELBO(alpha=0, num_particles=K)
    values = np.array([-elbo.loss(MODEL["pyro"], GUIDE["pyro"], x) for _ in range(REPS)])
    ref, ref_se = reference_bound(K)
    se = np.hypot(values.std() / np.sqrt(REPS), ref_se)
    assert abs(values.mean() - ref) > 8 * se, "Pyro's RenyiELBO now scales correctly: use it for elbo='iwae'"


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_dreg_is_unbiased_for_the_iwae_gradient_with_less_variance(backend):
    _, m_iwae, s_iwae = SAMPLERS[backend]("iwae", K)
    _, m_dreg, s_dreg = SAMPLERS[backend]("dreg", K)
    for iwae, dreg in ((m_iwae, m_dreg), (s_iwae, s_dreg)):
        se = np.sqrt(iwae.var(0) / len(iwae) + dreg.var(0) / len(dreg))
        assert within(iwae.mean(0), dreg.mean(0), se), (iwae.mean(0), dreg.mean(0), se)
    assert np.all(m_dreg.std(0) < m_iwae.std(0)) and s_dreg.std() < s_iwae.std()


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_rws_wake_phi_gradient_approaches_the_inclusive_kl_gradient(backend):
    """With many particles, wake-phi's update of m_n is E_posterior[d/dm log q(z_n)] = (x_n/2 - m_n)/s^2,
    times N/B; the self-normalized bias at K = 2000 is far below the Monte Carlo error here."""
    _, m_grad, _ = SAMPLERS[backend]("rws", 2000, reps=40)
    expected = -(X / 2 - M0) / S0**2 * N / len(X)
    assert within(m_grad.mean(0), expected, m_grad.std(0) / np.sqrt(len(m_grad))), (m_grad.mean(0), expected)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
@pytest.mark.parametrize("method,options", [("rws", {}), ("svi", dict(elbo="iwae", num_particles=5))])
def test_autoguides_work_with_the_importance_weighted_objectives(backend, method, options):
    """An autoguide's auxiliary sites count in log q, not in locating the data plate (PPCA, exact log p(x))."""
    import inference
    import ppl_models

    ppca = ppl_models.get_model("mnist-ppca")
    r = inference.run(ppca, method=method, backend=backend, guide="normal", num_steps=300, learning_rate=0.02,
                      num_samples=10, **options)
    exact = float(ppca.reference.extra["log_evidence"])
    last = r.losses[-50:]
    assert r.losses[:10].min() > last.max()  # training improves the bound
    assert -last.mean() < exact + 4 * last.std() / np.sqrt(len(last))  # which stays below log p(x)


def test_numpyro_dreg_gradient_is_the_stop_gradient_formula_at_the_same_draws():
    """NumPyro's DReG pulls one forward pass back twice (``_dreg_bound``). At the same draws its gradient
    is the textbook surrogate's, written with stop-gradients: sum_k wt_k log w_k for the model's
    parameters (here ``b``, a shift of the likelihood), sum_k wt_k^2 log w_k through z alone for the
    guide's (``m``, ``s``), with q's parameters held inside log q. Exact, up to float64 rounding."""
    import jax
    import jax.numpy as jnp
    from jax.lax import stop_gradient
    from jax.scipy.special import logsumexp as jlogsumexp

    from inference.backends.numpyro_objectives import ImportanceWeightedELBO

    def shifted_model(x):
        b = pyro.param("b", 0.3)
        with pyro.plate("data", N, subsample_size=len(x)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z + b, 1.0), obs=x)

    model, guide = for_backends(shifted_model)["numpyro"], GUIDE["numpyro"]
    guide_names = {"m", "s"}
    with jax.enable_x64(True):
        elbo, x = ImportanceWeightedELBO(K, "dreg"), jnp.asarray(X)
        params = {"m": jnp.asarray(M0), "s": jnp.asarray(S0), "b": jnp.asarray(0.3)}

        def textbook(p, key):
            keys = jax.random.split(key, K)
            held = {k: stop_gradient(v) if k in guide_names else v for k, v in p.items()}  # the model's group
            log_p, log_q, _, scale = elbo._log_densities(keys, held, model, guide, (x,), {})
            log_w = log_p - log_q
            w = stop_gradient(jax.nn.softmax(log_w, axis=0))
            path = {k: v if k in guide_names else stop_gradient(v) for k, v in p.items()}  # the guide's, via z
            path_p, path_q, _, _ = elbo._log_densities(keys, path, model, guide, (x,), {}, hold_q=True)
            return -scale * jnp.sum(w * log_w + w**2 * (path_p - path_q))

        ours_of = jax.jit(jax.grad(lambda p, key: elbo.loss(key, p, model, guide, x)))
        expected_of = jax.jit(jax.grad(textbook))
        for seed in range(3):
            key = jax.random.PRNGKey(seed)
            ours, expected = ours_of(params, key), expected_of(params, key)
            for name in params:
                assert np.allclose(ours[name], expected[name], rtol=1e-10, atol=1e-12), (name, ours, expected)
            assert float(jnp.abs(ours["b"])) > 0  # the model's group is exercised
        key = jax.random.PRNGKey(0)
        bound = -elbo.loss(key, params, model, guide, x)
        log_p, log_q, _, scale = elbo._log_densities(jax.random.split(key, K), params, model, guide, (x,), {})
        assert np.isclose(bound, scale * jnp.sum(jlogsumexp(log_p - log_q, axis=0) - np.log(K)), rtol=1e-12)
