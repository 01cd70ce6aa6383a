"""Overhead of the layer against the same work written by hand, in one process, interleaved.

    python benchmarks/overhead.py [--rounds 5]

1. NUTS on eight schools (non-centered), 4 chains x (1000 warmup + 1000 draws), float64:
   ``inference.run(..., backend="numpyro")`` against a hand-written ``numpyro.infer.MCMC`` call
   with the same chain method. Wall time of the whole call, compilation included, both sides.
2. One SVI step (AutoNormal, Trace_ELBO, Adam), eight schools, float64, against hand-written
   NumPyro (``SVI.run``) and Pyro (a ``svi.step`` loop). The per-step time is the difference
   between a long and a short run divided by the difference in steps, so compilation and
   setup cancel out.

Rounds alternate layer and hand-written runs with the same seeds; medians are reported,
with the ratio layer / hand-written (1.00 = no overhead).
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

import inference
import ppl_models
from inference.backends import numpyro_common  # noqa: F401  (sets the host device count before JAX starts)

MODEL = "eight_schools-eight_schools_noncentered"
NUTS = dict(num_warmup=1000, num_samples=1000, num_chains=4)
SHORT, LONG = 1000, 6000
PYRO_SHORT, PYRO_LONG = 100, 600


def numpyro_model():
    import numpyro
    import numpyro.distributions as dist

    def eight_schools(J, sigma, y=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
        with numpyro.plate("school", J):
            theta_trans = numpyro.sample("theta_trans", dist.Normal(0.0, 1.0))
            theta = numpyro.deterministic("theta", mu + tau * theta_trans)
            numpyro.sample("y", dist.Normal(theta, sigma), obs=y)

    return eight_schools


def pyro_model():
    import pyro
    import pyro.distributions as dist

    def eight_schools(J, sigma, y=None):
        mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = pyro.sample("tau", dist.HalfCauchy(5.0))
        with pyro.plate("school", J):
            theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
            theta = pyro.deterministic("theta", mu + tau * theta_trans)
            pyro.sample("y", dist.Normal(theta, sigma), obs=y)

    return eight_schools


def data():
    return ppl_models.get_model(MODEL).data


def hand_nuts(seed: int, chain_method: str) -> float:
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS as NUTSKernel

    t0 = time.perf_counter()
    with jax.enable_x64(True):
        d = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in data().items()}
        mcmc = MCMC(NUTSKernel(numpyro_model()), num_warmup=NUTS["num_warmup"], num_samples=NUTS["num_samples"],
                    num_chains=NUTS["num_chains"], chain_method=chain_method, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(seed), **d)
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    assert samples["theta"].shape == (4, 1000, 8)
    return time.perf_counter() - t0


def layer_nuts(seed: int) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = inference.run(MODEL, method="nuts", backend="numpyro", seed=seed, **NUTS)
    return time.perf_counter() - t0, r.info["chain_method"]


def hand_numpyro_svi(seed: int, steps: int) -> float:
    import jax
    import jax.numpy as jnp
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.optim import Adam

    with jax.enable_x64(True):
        d = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in data().items()}
        model = numpyro_model()
        svi = SVI(model, AutoNormal(model), Adam(0.01), Trace_ELBO())
        t0 = time.perf_counter()
        result = svi.run(jax.random.PRNGKey(seed), steps, progress_bar=False, **d)
        result.losses.block_until_ready()
    return time.perf_counter() - t0


def layer_svi(backend: str, seed: int, steps: int) -> float:
    r = inference.run(MODEL, method="svi", backend=backend, seed=seed, guide="normal", num_steps=steps,
                      learning_rate=0.01, num_samples=1)
    return r.timing["optimization"]


def hand_pyro_svi(seed: int, steps: int) -> float:
    import pyro
    import torch
    from pyro.infer import SVI, Trace_ELBO
    from pyro.infer.autoguide import AutoNormal

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        pyro.clear_param_store()
        pyro.set_rng_seed(seed)
        d = {k: torch.as_tensor(v, dtype=torch.float64) if isinstance(v, np.ndarray) else v for k, v in data().items()}
        model = pyro_model()
        svi = SVI(model, AutoNormal(model), pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
        t0 = time.perf_counter()
        for _ in range(steps):
            svi.step(**d)
        return time.perf_counter() - t0
    finally:
        torch.set_default_dtype(old)


def per_step(f, short: int, long: int, seed: int) -> float:
    return (f(seed, long) - f(seed, short)) / (long - short)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    times = {k: [] for k in ("nuts_layer", "nuts_hand", "np_svi_layer", "np_svi_hand", "py_svi_layer", "py_svi_hand")}
    for seed in range(args.rounds):
        t_layer, chain_method = layer_nuts(seed)
        times["nuts_layer"].append(t_layer)
        times["nuts_hand"].append(hand_nuts(seed, chain_method))
        times["np_svi_layer"].append(per_step(lambda s, n: layer_svi("numpyro", s, n), SHORT, LONG, seed))
        times["np_svi_hand"].append(per_step(hand_numpyro_svi, SHORT, LONG, seed))
        times["py_svi_layer"].append(per_step(lambda s, n: layer_svi("pyro", s, n), PYRO_SHORT, PYRO_LONG, seed))
        times["py_svi_hand"].append(per_step(hand_pyro_svi, PYRO_SHORT, PYRO_LONG, seed))
        print(f"round {seed + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.4g}" for k, v in times.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nchain_method: {chain_method}; medians over {args.rounds} rounds\n")
    print("| what | layer | hand-written | ratio |\n|---|---|---|---|")
    rows = [("NUTS eight schools, NumPyro, whole call (s)", "nuts"),
            ("SVI step, NumPyro (ms)", "np_svi"), ("SVI step, Pyro (ms)", "py_svi")]
    for label, key in rows:
        scale = 1.0 if key == "nuts" else 1000.0
        layer, hand = med[f"{key}_layer"] * scale, med[f"{key}_hand"] * scale
        print(f"| {label} | {layer:.4g} | {hand:.4g} | {layer / hand:.3f} |")


if __name__ == "__main__":
    main()
