"""Pathfinder (Zhang, Carpenter, Gelman & Vehtari 2022, JMLR 23(306)): variational inference along
an L-BFGS optimization path. Each iterate of L-BFGS gives a Gaussian whose covariance is its
inverse-Hessian estimate; Pathfinder keeps the one with the highest ELBO (estimated from
``num_elbo_draws`` of its draws) and draws from it. BlackJAX's implementation
(``blackjax.vi.pathfinder.approximate`` and ``sample``) on the model lowered to a Potential.

Multi-path Pathfinder (the paper's Algorithm 2): ``num_paths`` independent paths, each started at
its own initial point (uniform on (-2, 2) on the unconstrained space, as NUTS starts), each drawing
``num_samples``. With ``importance_resampling`` (the default, as the paper and Stan's
``pathfinder`` do) the pooled draws are weighted by p(x) / q_path(x), the weights Pareto-smoothed
(PSIS), and ``num_paths * num_samples`` draws resampled with replacement: paths stuck at a poor
optimum get little weight. The draws are then split into ``num_paths`` equal "chains" that are
*not* the paths (sample statistic ``path`` says which path each draw came from). Without it,
chain ``i`` holds path ``i``'s own draws, so that paths that disagree can be seen.

A Gaussian approximation: a posterior that is skewed, heavy-tailed or a funnel is not matched (its
sds, in particular, come out too small); PSIS k-hat of the pooled draws above 0.7 is warned about.
"""
from __future__ import annotations

from inference.options import boolean, integer, opt, positive
from inference.registry import register_method

KHAT_MAX = 0.7  # as inference.importance: above it the importance weights are unreliable (Vehtari et al. 2024)
_NUMPYRO = ("numpyro",)


@register_method(
    "pathfinder", family="vi", backends=_NUMPYRO, doc=__doc__,
    options={
        "num_samples": opt(1000, "draws kept per path (the draws come back as num_paths chains of num_samples)",
                           integer(1), _NUMPYRO),
        "num_paths": opt(4, "independent Pathfinder runs, each from its own initial point", integer(1), _NUMPYRO),
        "maxiter": opt(100, "maximum L-BFGS iterations per path (BlackJAX's default is 30)", integer(1), _NUMPYRO),
        "maxcor": opt(10, "L-BFGS history size: the rank of the inverse-Hessian update", integer(1), _NUMPYRO),
        "num_elbo_draws": opt(100, "draws per L-BFGS iterate to estimate its approximation's ELBO", integer(1),
                              _NUMPYRO),
        "ftol": opt(1e-5, "L-BFGS stops when the decrease of -log p between iterates is below ftol", positive(),
                    _NUMPYRO),
        "gtol": opt(1e-8, "L-BFGS stops when the gradient's norm is below gtol", positive(), _NUMPYRO),
        "importance_resampling": opt(True, "resample the pooled draws of all paths by their PSIS-smoothed "
                                           "importance weights (multi-path Pathfinder)", boolean(), _NUMPYRO),
    },
)
def pathfinder(potential, *, rng_key, num_samples, num_paths, maxiter, maxcor, num_elbo_draws, ftol, gtol,
               importance_resampling):
    """Multi-path Pathfinder with BlackJAX: draws ``(num_paths, num_samples, dim)`` and per-draw
    statistics ``lp`` (log density on the unconstrained space) and ``path``."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from blackjax.diagnostics import psis_weights
    from blackjax.vi import pathfinder as bj_pathfinder

    init_key, path_key, resample_key = jax.random.split(rng_key, 3)
    x0 = potential.init(init_key, num_paths)

    def one_path(key, x):
        fit_key, draw_key = jax.random.split(key)
        state, _ = bj_pathfinder.approximate(fit_key, potential.logdensity, x, num_elbo_draws, maxiter=maxiter,
                                             maxcor=maxcor, ftol=ftol, gtol=gtol)
        draws, logq = bj_pathfinder.sample(draw_key, state, num_samples)
        return draws, logq, jax.vmap(potential.logdensity)(draws), state.elbo

    @jax.jit
    def run(keys, x0, resample_key):
        draws, logq, logp, elbo = jax.vmap(one_path)(keys, x0)
        path = jnp.broadcast_to(jnp.arange(num_paths)[:, None], logp.shape)
        log_ratio = jnp.where(jnp.isfinite(logp) & jnp.isfinite(logq), logp - logq, -jnp.inf)
        log_w, khat = psis_weights(log_ratio.ravel())
        if importance_resampling:  # with replacement, as the paper's Algorithm 2 and Stan do
            index = jax.random.choice(resample_key, log_w.size, (log_w.size,), p=jnp.exp(log_w))
            draws = draws.reshape(log_w.size, -1)[index].reshape(draws.shape)
            logp, path = (a.ravel()[index].reshape(logp.shape) for a in (logp, path))
        return draws, logp, path, elbo, khat

    draws, logp, path, elbo, khat = run(jax.random.split(path_key, num_paths), x0, resample_key)
    elbo, khat = np.asarray(elbo), float(khat)
    failed = ~np.isfinite(elbo)
    if failed.all():
        raise RuntimeError(f"pathfinder: all {num_paths} path(s) failed (no L-BFGS iterate had a finite ELBO); "
                           "the log density may be non-finite or its gradient undefined near the initial points")
    found = []
    if failed.any() and not importance_resampling:
        found.append(f"{int(failed.sum())} of {num_paths} path(s) failed (no finite ELBO) and their draws are kept "
                     "as they are; importance_resampling=True would weigh them down")
    if np.isfinite(khat) and khat > KHAT_MAX:
        found.append(f"PSIS k-hat of the pooled draws is {khat:.2f} > {KHAT_MAX}: the Gaussian approximations miss "
                     "posterior mass, and the draws misrepresent its tails")
    diagnostics = {"khat": np.asarray(khat), "path_elbo": elbo}  # each path's best ELBO
    return draws, {"lp": logp, "path": path}, {"warnings": found, "diagnostics": diagnostics}
