"""Importance-weighted training objectives, per data point: IWAE, IWAE with DReG, RWS, VIMCO.

With K proposals z_kb ~ q(z | x_b) for each data point b of a minibatch of B out of N,
and log weights log w_kb = log p(x_b, z_kb) - log q(z_kb | x_b):

- the bound IWAE_K = (N / B) sum_b log (1/K sum_k w_kb) (Burda et al. 2016); K = 1 is the ELBO;
- ``"iwae"``: its reparameterized gradient;
- ``"dreg"``: the doubly reparameterized gradient (Tucker et al. 2019): the same model
  gradient, sum_k wt_kb grad_theta log w_kb; for the guide, sum_k wt_kb^2 dlog w_kb/dz_kb dz_kb/dphi,
  with q's parameters held fixed inside log q (wt: normalized weights);
- ``"rws"``: reweighted wake-sleep (Bornschein & Bengio 2015), wake-theta and wake-phi:
  sum_k wt_kb grad_theta log p(x_b, z_kb) and sum_k wt_kb grad_phi log q(z_kb | x_b), z held fixed;
- ``"vimco"``: the bound's gradient for latents without a reparameterization (Bernoulli units, say;
  Mnih & Rezende 2016): sum_k wt_kb grad log w_kb plus the score-function term
  sum_k (L_b - L_b^-k) grad_phi log q(z_kb | x_b) over the guide's non-reparameterized sites, where
  L_b^-k is the bound with w_kb replaced by the geometric mean of the other K - 1 weights: a baseline
  for sample k that does not depend on it, so the estimator stays unbiased (K >= 2).

Every estimator reports the bound's value as its loss (negated), so loss curves compare.

Why not the libraries' own: Pyro's ``RenyiELBO`` applies a subsampled plate's scale N/B to
the log weights inside the log-sum-exp, so its bound is wrong on minibatches
(tests/test_objectives.py shows it), and Pyro's ``ReweightedWakeSleep`` weighs the whole
minibatch jointly rather than per data point. NumPyro has neither DReG nor RWS. The
backends implement the estimators in ``*_objectives.py`` on the helpers below.
"""
from __future__ import annotations

from inference.importance import data_plate

ESTIMATORS = ("iwae", "dreg", "rws", "vimco")


def check_particles(estimator: str, num_particles: int) -> None:
    """VIMCO builds each sample's baseline from the others: it needs two samples or more."""
    if estimator == "vimco" and num_particles < 2:
        raise ValueError(f"elbo='vimco' needs num_particles >= 2 (each sample's baseline is built from the "
                         f"others), not num_particles={num_particles}")


def vimco_signals(log_w, eye, logsumexp):
    """VIMCO's learning signal L - L^-k of each sample k (the first axis of ``log_w``, (K, ...)),
    written once for both backends: ``eye(K)`` the identity matrix, ``logsumexp(a)`` the log-sum-exp
    of ``a`` over its second axis (in the backend's array library)."""
    num = log_w.shape[0]
    others = (log_w.sum(0) - log_w) / (num - 1)  # log of the geometric mean of the other weights
    mask = eye(num).reshape(num, num, *([1] * (log_w.ndim - 1)))
    # row k: the log weights with the k-th replaced by the others' geometric mean
    replaced = log_w[None] + mask * (others[:, None] - log_w[None])
    return logsumexp(log_w[None])[0] - logsumexp(replaced)


def plate_and_scale(latent: dict, observed: dict, scales: dict, model_name: str = "the model"):
    """The data plate (name, dim) holding every latent and observed site, and the scale N/B its
    subsampling puts on each data point's log density.

    ``latent`` and ``observed`` map site names to their plate frames ``((name, dim), ...)``;
    ``scales`` maps every site to its scale. Without a common plate the weights are joint
    (one per particle), which needs unscaled sites.
    """
    plate = data_plate(latent, observed)
    distinct = set(scales.values())
    if len(distinct) > 1:
        raise ValueError(f"sites of {model_name} carry different scales {scales}; importance-weighted objectives "
                         "need one scale (that of the subsampled data plate)")
    scale = distinct.pop() if distinct else 1.0
    if plate is None and scale != 1.0:
        raise ValueError(f"{model_name} subsamples data but its latent sites are not all inside one data plate, so "
                         "per-data-point importance weights are not defined; train on the full data instead")
    return plate, scale
