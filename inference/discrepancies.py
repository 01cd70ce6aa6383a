"""Objectives of likelihood-free inference, written once for torch, jax.numpy and numpy.

Each function takes its arrays and ``xp``, the array module they belong to (``torch``,
``jax.numpy`` or ``numpy``), and uses only what the three spell alike.

Density ratio by classification (Goodfellow et al. 2014): a discriminator with logit
l(x) is trained to tell data (label 1) from generated points (label 0). At its optimum
l(x) = log p_data(x) - log p_model(x), the log density ratio the generator is trained on.
With ``wasserstein`` the discriminator is a critic instead (Arjovsky et al. 2017): it maximizes
E l(data) - E l(generated), which a 1-Lipschitz l turns into the Wasserstein-1 distance; the
gradient penalty of Gulrajani et al. (2017) keeps it near that class.

Gradient penalties regularize the discriminator through its gradient in the data space, given
here as ``grads`` (n, d) at the points the backend took them: R1 (Mescheder, Geiger & Nowozin
2018) penalizes gamma/2 E_data ||grad l(x)||², which makes the game locally convergent and keeps
the discriminator from sharpening around the modes the generator has reached; WGAN-GP penalizes
lambda E (||grad l(x^)|| - 1)² at x^ = u x + (1 - u) G(z), u ~ Uniform(0, 1) per point.

Kernel two-sample discrepancies (Gretton et al. 2012; Li, Swersky & Zemel 2015; Dziugaite,
Roy & Ghahramani 2015) need no discriminator: MMD² with a Gaussian kernel, or the energy
distance (Székely & Rizzo), which is MMD² with the kernel -||x - y||.
"""
from __future__ import annotations

GENERATOR_LOSSES = ("non_saturating", "minimax", "wasserstein")
CROSS_ENTROPY_LOSSES = ("non_saturating", "minimax")  # the losses of a classifier, with labels
GRADIENT_PENALTIES = ("r1", "wgan_gp")
# each penalty's weight unless one is given: WGAN-GP's lambda = 10 (Gulrajani et al. 2017); R1's gamma
# = 0.1 from the ring of eight, whose modes (sd 0.02) need a sharp discriminator: gamma = 1 kept too few
# generated points near them, and 5, 6 or 7 modes of 8 were covered on seeds 2, 3, 6 and 8
# (benchmarks/implicit_models.py ring; benchmarks/RESULTS.md). Images want more: on MNIST gamma = 10 (as
# Mescheder et al. used on images) gave every digit 6-14% of the samples, gamma = 0.1 left 0s at 2%.
PENALTY_WEIGHTS = {"r1": 0.1, "wgan_gp": 10.0}
KERNELS = ("gaussian", "energy")


def _softplus(a, xp):
    return xp.logaddexp(a * 0, a)


def discriminator_loss(real_logits, fake_logits, xp, label_smoothing: float = 0.0, kind: str = "non_saturating"):
    """The discriminator's loss in the game of generator loss ``kind``: for the cross-entropy
    losses, binary cross-entropy, data labelled ``1 - label_smoothing`` (one-sided smoothing,
    Salimans et al. 2016: generated points keep label 0), averaged over each batch; for
    ``wasserstein``, the critic's E l(generated) - E l(data) (no labels, so no smoothing)."""
    if kind == "wasserstein":
        return fake_logits.mean() - real_logits.mean()
    real_label = 1.0 - label_smoothing
    real = real_label * _softplus(-real_logits, xp) + (1.0 - real_label) * _softplus(real_logits, xp)
    return real.mean() + _softplus(fake_logits, xp).mean()


def generator_loss(fake_logits, kind: str, xp):
    """The generator's loss on the discriminator's logits of generated points.

    ``minimax``: E log(1 - D(G(z))) = -E softplus(l), the game's own value; its gradient
    vanishes while the discriminator rejects the generator with confidence.
    ``non_saturating``: -E log D(G(z)) = E softplus(-l), same fixed point, strong early gradients.
    ``wasserstein``: -E l(G(z)), the generator's side of the critic's estimate of W1.
    """
    if kind == "wasserstein":
        return -fake_logits.mean()
    if kind == "minimax":
        return -_softplus(fake_logits, xp).mean()
    if kind == "non_saturating":
        return _softplus(-fake_logits, xp).mean()
    raise ValueError(f"unknown generator loss {kind!r}; valid choices: {', '.join(GENERATOR_LOSSES)}")


def penalty_points(real, fake, uniform, kind: str):
    """Where penalty ``kind`` takes the discriminator's gradient: the data for R1; for WGAN-GP,
    u x + (1 - u) G(z), one ``uniform`` draw u (n, 1) per pair of a data point and a generated one."""
    if kind == "r1":
        return real
    if kind == "wgan_gp":
        return uniform * real + (1.0 - uniform) * fake
    raise ValueError(f"unknown gradient penalty {kind!r}; valid choices: {', '.join(GRADIENT_PENALTIES)}")


def penalty_weight(kind: str, weight: float | None) -> float:
    """``weight``, or penalty ``kind``'s default (``PENALTY_WEIGHTS``) when it is None."""
    return PENALTY_WEIGHTS[kind] if weight is None else float(weight)


def gradient_penalty(grads, kind: str, weight: float, xp):
    """The penalty added to the discriminator's loss, from ``grads`` (n, d), the gradients of its
    logit at ``penalty_points``: R1's weight/2 E ||g||², or WGAN-GP's weight E (||g|| - 1)²."""
    squared_norms = (grads * grads).sum(-1)
    if kind == "r1":
        return 0.5 * weight * squared_norms.mean()
    if kind == "wgan_gp":
        # sqrt has an infinite slope at 0: a gradient that vanishes exactly
        return weight * ((xp.sqrt(squared_norms + 1e-12) - 1.0) ** 2).mean()
    raise ValueError(f"unknown gradient penalty {kind!r}; valid choices: {', '.join(GRADIENT_PENALTIES)}")


def _squared_distances(x, y, xp):
    d = (x * x).sum(-1)[:, None] + (y * y).sum(-1)[None, :] - 2.0 * (x @ y.T)
    return xp.maximum(d, d * 0)  # rounding can make a distance slightly negative


def _kernel(d2, kind: str, bandwidths, xp):
    if kind == "energy":
        # sqrt has an infinite slope at 0: the diagonal, and any two equal points
        return -xp.sqrt(d2 + 1e-12)
    k = 0.0
    for h in bandwidths:
        k = k + xp.exp(-d2 / (2.0 * h * h))
    return k


def median_bandwidth(x, y, xp):
    """The median heuristic: the median distance between points of ``x`` and of ``y``, a
    bandwidth that neither saturates nor vanishes the Gaussian kernel at the data's own scale.
    Callers treat it as a constant (no gradient flows through it)."""
    return xp.sqrt(xp.median(_squared_distances(x, y, xp)))


def mmd_loss(real, fake, fake_constant, xp, kernel: str = "gaussian", bandwidth=None):
    """The generator's MMD² loss between data ``real`` and generated points ``fake``.

    ``bandwidth``: a number or a tuple of them; None takes the median heuristic on ``real`` and
    ``fake_constant`` (``fake`` cut from the gradient), so the bandwidth is not itself optimized."""
    if kernel == "energy":
        return mmd2(real, fake, xp, kernel)
    if bandwidth is None:
        bandwidth = median_bandwidth(real, fake_constant, xp)
    return mmd2(real, fake, xp, kernel, bandwidth if isinstance(bandwidth, tuple) else (bandwidth,))


def mmd2(x, y, xp, kernel: str = "gaussian", bandwidths=(1.0,)):
    """The unbiased estimate of MMD²(P, Q) from draws ``x`` ~ P (n, d) and ``y`` ~ Q (m, d):
    mean k(x, x') + mean k(y, y') - 2 mean k(x, y), the first two over distinct pairs.

    ``kernel="gaussian"`` sums Gaussian kernels exp(-||x - y||² / 2h²) over ``bandwidths``;
    ``kernel="energy"`` gives the energy distance (bandwidths unused)."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; valid choices: {', '.join(KERNELS)}")
    n, m = x.shape[0], y.shape[0]
    kxx = _kernel(_squared_distances(x, x, xp), kernel, bandwidths, xp)
    kyy = _kernel(_squared_distances(y, y, xp), kernel, bandwidths, xp)
    kxy = _kernel(_squared_distances(x, y, xp), kernel, bandwidths, xp)
    off_xx = (kxx.sum() - xp.diagonal(kxx).sum()) / (n * (n - 1))
    off_yy = (kyy.sum() - xp.diagonal(kyy).sum()) / (m * (m - 1))
    return off_xx + off_yy - 2.0 * kxy.mean()
