"""A method written outside the package, as a user would write one: random-walk Metropolis on the
model's unconstrained space, registered with ``inference.register_method``.

Warmup adapts the proposal (Haario et al. 2001, diagonal): the per-coordinate variance of the chain
so far, times a global scale tuned by Robbins-Monro towards an acceptance rate of 0.234.
"""
import jax
import jax.numpy as jnp

import inference


@inference.register_method("rwm", family="mcmc", backends=("numpyro",),
                           options={"num_warmup": 2000, "num_samples": 2000, "num_chains": 4, "scale": 0.1})
def rwm(potential, *, rng_key, num_warmup, num_samples, num_chains, scale):
    """Random-walk Metropolis with a diagonal proposal adapted during warmup."""
    dim = potential.dim

    def step(state, key, log_scale, sd):
        x, logp = state
        k1, k2 = jax.random.split(key)
        y = x + jnp.exp(log_scale) * sd * jax.random.normal(k1, (dim,))
        logq = potential.logdensity(y)
        accept_prob = jnp.minimum(1.0, jnp.exp(jnp.where(jnp.isfinite(logq), logq - logp, -jnp.inf)))
        accept = jax.random.uniform(k2) < accept_prob
        return (jnp.where(accept, y, x), jnp.where(accept, logq, logp)), accept_prob

    def chain(key, x0):
        warm_key, draw_key = jax.random.split(key)

        def adapt(carry, inputs):
            state, log_scale, mean, m2 = carry
            key, t = inputs
            sd = jnp.where(t > 100, jnp.sqrt(m2 / jnp.maximum(t, 1.0) + 1e-6), 1.0)
            state, accept_prob = step(state, key, log_scale, sd)
            log_scale = log_scale + (accept_prob - 0.234) / jnp.sqrt(t + 1.0)
            delta = state[0] - mean
            mean = mean + delta / (t + 1.0)
            m2 = m2 + delta * (state[0] - mean)
            return (state, log_scale, mean, m2), None

        start = (x0, potential.logdensity(x0))
        carry = (start, jnp.log(scale), jnp.zeros(dim), jnp.zeros(dim))
        steps = jnp.arange(num_warmup, dtype=jnp.result_type(float))
        (state, log_scale, _, m2), _ = jax.lax.scan(adapt, carry, (jax.random.split(warm_key, num_warmup), steps))
        sd = jnp.sqrt(m2 / num_warmup + 1e-6)

        def sample(state, key):
            state, accept_prob = step(state, key, log_scale, sd)
            return state, (state[0], accept_prob)

        _, (draws, accept_prob) = jax.lax.scan(sample, state, jax.random.split(draw_key, num_samples))
        return draws, accept_prob

    init_key, run_key = jax.random.split(rng_key)
    x0 = potential.init(init_key, num_chains)
    draws, accept_prob = jax.jit(jax.vmap(chain))(jax.random.split(run_key, num_chains), x0)
    return draws, {"acceptance_rate": accept_prob}
