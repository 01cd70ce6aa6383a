"""Overhead of the layer against the same work written by hand, in one process, interleaved.

    python benchmarks/overhead.py [--rounds 5]

1. NUTS on eight schools (non-centered), 4 chains x (1000 warmup + 1000 draws), float64:
   ``inference.run(..., backend="numpyro")`` against a hand-written ``numpyro.infer.MCMC`` call
   with the same chain method. Wall time of the whole call, compilation included, both sides.
2. SVI (AutoNormal, Trace_ELBO, Adam), eight schools, float64.
   NumPyro: 20000 steps in one compiled ``SVI.run`` (a step costs about 25 us, so the
   compilation dominates and a per-step difference drowns in its noise); the layer's
   optimization time against the hand-written ``SVI.run`` call, and the layer's whole call
   (site tracing and posterior draws included) against the same.
   Pyro: one step, as the difference between a long and a short ``svi.step`` loop divided
   by the difference in steps, so that setup cancels out.

Each round runs the layer and the hand-written code with the same seed, in alternating order
(layer first in even rounds); a first warm-up round is discarded. Reported: the median over
rounds of each time, and the median of the per-round ratios layer / hand-written
(1.00 = no overhead), which cancels the machine's slow drifts better than a ratio of medians.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

import inference
import ppl_models
from benchmarks.entry import run_benchmark
from inference.backends import numpyro_common  # noqa: F401  (sets the host device count before JAX starts)

MODEL = "eight_schools-eight_schools_noncentered"
NUTS = dict(num_warmup=1000, num_samples=1000, num_chains=4)
NUMPYRO_STEPS = 20000
PYRO_SHORT, PYRO_LONG = 100, 600


def raw_model(library: str):
    """Eight schools written directly against ``pyro`` or ``numpyro``, without the layer."""
    import importlib

    ppl = importlib.import_module(library)
    dist = importlib.import_module(f"{library}.distributions")

    def eight_schools(J, sigma, y=None):
        mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
        tau = ppl.sample("tau", dist.HalfCauchy(5.0))
        with ppl.plate("school", J):
            theta_trans = ppl.sample("theta_trans", dist.Normal(0.0, 1.0))
            theta = ppl.deterministic("theta", mu + tau * theta_trans)
            ppl.sample("y", dist.Normal(theta, sigma), obs=y)

    return eight_schools


def data():
    return ppl_models.get_model(MODEL).data


def hand_nuts(seed: int, chain_method: str) -> float:
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC
    from numpyro.infer import NUTS as NUTSKernel

    t0 = time.perf_counter()
    with jax.enable_x64(True):
        d = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in data().items()}
        mcmc = MCMC(NUTSKernel(raw_model("numpyro")), num_warmup=NUTS["num_warmup"], num_samples=NUTS["num_samples"],
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
        model = raw_model("numpyro")
        svi = SVI(model, AutoNormal(model), Adam(0.01), Trace_ELBO())
        t0 = time.perf_counter()
        result = svi.run(jax.random.PRNGKey(seed), steps, progress_bar=False, **d)
        result.losses.block_until_ready()
    return time.perf_counter() - t0


def layer_svi(backend: str, seed: int, steps: int, whole_call: bool = False) -> float:
    t0 = time.perf_counter()
    r = inference.run(MODEL, method="svi", backend=backend, seed=seed, guide="normal", num_steps=steps,
                      learning_rate=0.01, num_samples=1)
    return time.perf_counter() - t0 if whole_call else r.timing["optimization"]


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
        model = raw_model("pyro")
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
    times = {f"{k}_{side}": [] for k in ("nuts", "np_svi", "np_call", "py_svi") for side in ("layer", "hand")}
    chain_method = layer_nuts(0)[1]
    pairs = {
        "nuts": (lambda s: layer_nuts(s)[0], lambda s: hand_nuts(s, chain_method)),
        "np_svi": (lambda s: layer_svi("numpyro", s, NUMPYRO_STEPS), lambda s: hand_numpyro_svi(s, NUMPYRO_STEPS)),
        "np_call": (lambda s: layer_svi("numpyro", s, NUMPYRO_STEPS, whole_call=True),
                    lambda s: hand_numpyro_svi(s, NUMPYRO_STEPS)),
        "py_svi": (lambda s: per_step(lambda t, n: layer_svi("pyro", t, n), PYRO_SHORT, PYRO_LONG, s),
                   lambda s: per_step(hand_pyro_svi, PYRO_SHORT, PYRO_LONG, s)),
    }
    for seed in range(args.rounds + 1):  # round 0 warms up caches and is discarded
        for key, (layer, hand) in pairs.items():
            first, second = (layer, hand) if seed % 2 == 0 else (hand, layer)
            a, b = first(seed), second(seed)
            if seed > 0:
                times[f"{key}_layer"].append(a if seed % 2 == 0 else b)
                times[f"{key}_hand"].append(b if seed % 2 == 0 else a)
        if seed > 0:
            print(f"round {seed}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.4g}" for k, v in times.items()),
                  flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nchain_method: {chain_method}; medians over {args.rounds} rounds after one warm-up round\n")
    print("| what | layer | hand-written | median ratio (per round) |\n|---|---|---|---|")
    rows = [("NUTS eight schools, NumPyro, whole call (s)", "nuts", 1.0),
            (f"SVI, NumPyro, {NUMPYRO_STEPS} steps in one compiled loop (s)", "np_svi", 1.0),
            (f"SVI, NumPyro, {NUMPYRO_STEPS} steps, layer's whole call (s)", "np_call", 1.0),
            ("SVI step, Pyro (ms)", "py_svi", 1000.0)]
    for label, key, scale in rows:
        ratio = statistics.median(a / b for a, b in zip(times[f"{key}_layer"], times[f"{key}_hand"], strict=True))
        print(f"| {label} | {med[f'{key}_layer'] * scale:.4g} | {med[f'{key}_hand'] * scale:.4g} | {ratio:.3f} |")


if __name__ == "__main__":
    run_benchmark(main)
