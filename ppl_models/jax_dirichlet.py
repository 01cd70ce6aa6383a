"""A NumPyro Dirichlet whose draws and reparameterized gradient are cheap on a CPU.

Draws: JAX's ``jax.random.gamma`` runs Marsaglia & Tsang's rejection sampler element by
element (a vectorized while loop that splits a key per element per try): 70-160 ms for a
20 x 3622 array on a CPU, where the uniforms and normals themselves take 8 ms.
``standard_gamma`` runs the same sampler over the whole array at once: every try draws a
normal and a uniform for each element still waiting, until all are accepted (about 5 tries
for 10^5 elements; each element's acceptance is the sampler's, so the draws are exact).
Concentrations below 1 take Marsaglia & Tsang's boost, Gamma(a) = Gamma(a + 1) U^(1/a).

Gradient: JAX differentiates a Gamma draw x ~ Gamma(alpha) implicitly, through the derivative of the
regularized incomplete gamma function; on a CPU that costs 10-25 microseconds per entry, so
a 20 x 3622 topic-word Dirichlet took 1-2 s a step. PyTorch uses instead the closed-form
approximations of Jankowiak & Obermeyer (2018, "Pathwise derivatives beyond the
reparameterization trick"): a Taylor series for small x, a saddle-point expansion for large
alpha, a bivariate rational fit elsewhere. ``standard_gamma_grad`` is a port of PyTorch's
``standard_gamma_grad_one`` (aten/src/ATen/native/Distributions.h), vectorized; the draws
themselves are JAX's.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import digamma

# PyTorch's coefficients of the rational approximation in u = log(x / alpha), v = log(alpha).
_COEF_UV = jnp.array([
    [0.16009398, -0.094634809, 0.025146376, -0.0030648343, 1, 0.32668115, 0.10406089, 0.0014179084],
    [0.53487893, 0.1298071, 0.065735949, -0.0015649758, 0.16639465, 0.020070113, -0.0035938915, -0.00058392623],
    [0.040121004, -0.0065914022, -0.0026286047, -0.0013441777, 0.017050642, -0.0021309326, 0.00085092367,
     -1.5247877e-07],
])


def _small_x(alpha, x):
    """-(d/dalpha CDF) / PDF from the Taylor series of the incomplete gamma function (x < 0.8)."""
    numer, denom = jnp.ones_like(x), alpha
    series1, series2 = numer / denom, numer / denom**2
    for i in range(1, 6):
        numer = numer * -x / i
        denom = denom + 1
        series1, series2 = series1 + numer / denom, series2 + numer / denom**2
    pow_x_alpha = x**alpha
    pdf = x ** (alpha - 1) * jnp.exp(-x)
    cdf_alpha = (jnp.log(x) - digamma(alpha)) * pow_x_alpha * series1 - pow_x_alpha * series2
    result = -cdf_alpha / pdf
    return jnp.where(jnp.isnan(result), 0.0, result)


def _large_alpha(alpha, x):
    """Rice's saddle-point expansion (alpha > 8)."""
    near = (1 + 24 * alpha * (1 + 12 * alpha)) * (
        1440 * alpha**2 + 6 * x * (53 - 120 * x) - 65 * x**2 / alpha + alpha * (107 + 3600 * x)
    ) / (1244160 * alpha**4)
    denom = jnp.sqrt(8 * alpha)
    term2 = denom / (alpha - x)
    term3 = (x - alpha - alpha * jnp.log(x / alpha)) ** -1.5
    term23 = jnp.where(x < alpha, term2 - term3, term2 + term3)
    term1 = jnp.log(x / alpha) * term23 - jnp.sqrt(2 / alpha) * (alpha + x) / (alpha - x) ** 2
    stirling = 1 + 1 / (12 * alpha) * (1 + 1 / (24 * alpha))
    far = -stirling * x * term1 / denom
    return jnp.where((0.9 * alpha <= x) & (x <= 1.1 * alpha), near, far)


def _rational(alpha, x):
    u, v = jnp.log(x / alpha), jnp.log(alpha)
    c = _COEF_UV.astype(x.dtype)
    coef = c[0] + u[..., None] * (c[1] + u[..., None] * c[2])
    p = coef[..., 0] + v * (coef[..., 1] + v * (coef[..., 2] + v * coef[..., 3]))
    q = coef[..., 4] + v * (coef[..., 5] + v * (coef[..., 6] + v * coef[..., 7]))
    return jnp.exp(p / q)


def standard_gamma_grad(alpha, x):
    """dx/dalpha of a draw x ~ Gamma(alpha, 1), holding its quantile fixed."""
    return jnp.where(x < 0.8, _small_x(alpha, x), jnp.where(alpha > 8, _large_alpha(alpha, x), _rational(alpha, x)))


def _marsaglia_tsang(key, alpha):
    """Gamma(alpha, 1) draws for alpha >= 1, every element's rejection loop run in lockstep."""
    d = alpha - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)

    def body(state):
        key, value, done = state
        key, k_normal, k_uniform = jax.random.split(key, 3)
        x = jax.random.normal(k_normal, alpha.shape, alpha.dtype)
        u = jax.random.uniform(k_uniform, alpha.shape, alpha.dtype)
        v = (1.0 + c * x) ** 3
        accept = (v > 0) & (jnp.log(u) < 0.5 * x**2 + d - d * v + d * jnp.log(jnp.where(v > 0, v, 1.0)))
        return key, jnp.where(accept & ~done, d * v, value), done | accept

    _, value, _ = jax.lax.while_loop(lambda state: ~state[2].all(), body,
                                     (key, jnp.zeros_like(alpha), jnp.zeros(alpha.shape, bool)))
    return value


def standard_gamma(key, alpha):
    """Exact draws of Gamma(alpha, 1), one per element of ``alpha`` (no gradient)."""
    k_gamma, k_boost = jax.random.split(key)
    small = alpha < 1
    x = _marsaglia_tsang(k_gamma, jnp.where(small, alpha + 1.0, alpha))
    boost = jax.random.uniform(k_boost, alpha.shape, alpha.dtype) ** (1.0 / alpha)
    return jnp.where(small, x * boost, x)


def gamma_rsample(key, alpha, shape):
    """Draws of Gamma(alpha, 1) of ``shape``, differentiable in ``alpha`` by ``standard_gamma_grad``."""
    alpha = jnp.broadcast_to(alpha, shape)
    fixed = jax.lax.stop_gradient(alpha)
    x = standard_gamma(key, fixed)
    return x + jax.lax.stop_gradient(standard_gamma_grad(fixed, x)) * (alpha - fixed)


class Dirichlet(dist.Dirichlet):
    """``numpyro.distributions.Dirichlet``, normalized Gamma draws with the cheap gradient."""

    def sample(self, key, sample_shape=()):
        shape = sample_shape + self.batch_shape + self.event_shape
        gammas = gamma_rsample(key, self.concentration, shape)
        samples = gammas / gammas.sum(-1, keepdims=True)
        return jnp.clip(samples, jnp.finfo(samples.dtype).tiny, 1 - jnp.finfo(samples.dtype).eps)
