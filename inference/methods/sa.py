"""SA, sample adaptive MCMC (Zhu 2019, "Sample Adaptive MCMC", NeurIPS 32): NumPyro's ``numpyro.infer.SA``.

Each chain keeps a set of ``adapt_state_size`` points (NumPyro's default: twice the latent
dimension), proposes a point from the Gaussian fitted to them, and drops one of the set's points,
the proposal included, with probabilities that keep the set's stationary distribution; the draw
is a point of the set picked at random. Gradient free: it evaluates the log density once a draw
and records no ``n_steps``.

Per-draw statistics: ``acceptance_rate`` (the probability that the proposal entered the set) and
``lp`` (the log density on the unconstrained space, Jacobians included). NumPyro's ``diverging``
for SA (a proposal whose potential energy is 1000 above the current point's) is dropped: such a
proposal is merely rejected, not a sign of bias as an HMC divergence is.

``dense_mass`` defaults to False here (NumPyro's SA: True). A full-covariance proposal needs the
Cholesky factor of each leave-one-out set's covariance, which NumPyro gets by rank-one updates
(``numpyro.distributions.util.cholesky_update``); in NumPyro 0.22 that function keeps its scalar
``b`` constant (``b = gamma / Dj_new``, which is ``b``, where Krause & Igel's algorithm has
``gamma / Dj``), so the factors are wrong and the draws biased: eight schools' tau came out at a mean
of 4.2 to 4.5 against posteriordb's 3.60 in 5 runs of 4 chains, 10000 to 40000 draws each, where the
diagonal proposal gives 3.5 to 3.6. ``dense_mass=True`` is refused while NumPyro's update is wrong.

It mixes far more slowly than NUTS, and it needs a posterior close to Gaussian with little
correlation: its defaults are 10 times NUTS's warmup and draws. On kidiq's regressions (intercept
and slope correlated, their scales 100 apart) its chains stay where they started."""
from __future__ import annotations

from inference.methods._mcmc import check_chain_method, kernel_class
from inference.methods._numpyro_kernels import BASE_OPTIONS, NUMPYRO, library_keywords, negated, numpyro_runner
from inference.options import boolean, integer, opt
from inference.registry import register_method

STATS = {"accept_prob": "acceptance_rate", "potential_energy": "potential_energy"}


def cholesky_update_is_exact() -> bool:
    """Whether NumPyro's rank-one Cholesky update, which SA's dense proposal needs, computes what it should."""
    import numpy as np
    from numpyro.distributions.util import cholesky_update

    factor = np.asarray(cholesky_update(np.eye(2), np.ones(2), 1.0))
    return bool(np.allclose(factor @ factor.T, [[2.0, 1.0], [1.0, 2.0]], atol=1e-5))


def check(backend: str, options: dict) -> None:
    check_chain_method(backend, options)
    if options["dense_mass"] and not cholesky_update_is_exact():
        raise ValueError("method 'sa' refuses dense_mass=True: this NumPyro's cholesky_update, which SA's dense "
                         "proposal needs, returns wrong factors and the draws are biased; use dense_mass=False")


def kernel(model, opts: dict):
    from numpyro.infer import SA

    return SA(model, dense_mass=opts["dense_mass"], **library_keywords(opts))


register_method(
    "sa", family="mcmc", backends=NUMPYRO, takes="model", doc=__doc__, check=check, library=kernel_class("SA"),
    options={**BASE_OPTIONS,
             "num_warmup": opt(10000, "warmup (burn-in) iterations per chain", integer(1), NUMPYRO),
             "num_samples": opt(10000, "draws kept per chain", integer(1), NUMPYRO),
             "dense_mass": opt(False, "propose from a Gaussian with the adaptive set's full covariance, not a "
                                      "diagonal one (refused while NumPyro's Cholesky update is wrong)", boolean(),
                               NUMPYRO)},
)(numpyro_runner(kernel, STATS, derive=negated("potential_energy", "lp")))
