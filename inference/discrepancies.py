"""Objectives of likelihood-free inference, written once for torch, jax.numpy and numpy.

Each function takes its arrays and ``xp``, the array module they belong to (``torch``,
``jax.numpy`` or ``numpy``), and uses only what the three spell alike.

Density ratio by classification (Goodfellow et al. 2014): a discriminator with logit
l(x) is trained to tell data (label 1) from generated points (label 0). At its optimum
l(x) = log p_data(x) - log p_model(x), the log density ratio the generator is trained on.

Kernel two-sample discrepancies (Gretton et al. 2012; Li, Swersky & Zemel 2015; Dziugaite,
Roy & Ghahramani 2015) need no discriminator: MMD² with a Gaussian kernel, or the energy
distance (Székely & Rizzo), which is MMD² with the kernel -||x - y||.
"""
from __future__ import annotations

GENERATOR_LOSSES = ("non_saturating", "minimax")
KERNELS = ("gaussian", "energy")


def _softplus(a, xp):
    return xp.logaddexp(a * 0, a)


def discriminator_loss(real_logits, fake_logits, xp, label_smoothing: float = 0.0):
    """Binary cross-entropy of the discriminator, data labelled ``1 - label_smoothing`` (one-sided
    smoothing, Salimans et al. 2016: generated points keep label 0), averaged over each batch."""
    real_label = 1.0 - label_smoothing
    real = real_label * _softplus(-real_logits, xp) + (1.0 - real_label) * _softplus(real_logits, xp)
    return real.mean() + _softplus(fake_logits, xp).mean()


def generator_loss(fake_logits, kind: str, xp):
    """The generator's loss on the discriminator's logits of generated points.

    ``minimax``: E log(1 - D(G(z))) = -E softplus(l), the game's own value; its gradient
    vanishes while the discriminator rejects the generator with confidence.
    ``non_saturating``: -E log D(G(z)) = E softplus(-l), same fixed point, strong early gradients.
    """
    if kind == "minimax":
        return -_softplus(fake_logits, xp).mean()
    if kind == "non_saturating":
        return _softplus(-fake_logits, xp).mean()
    raise ValueError(f"unknown generator loss {kind!r}; valid choices: {', '.join(GENERATOR_LOSSES)}")


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
