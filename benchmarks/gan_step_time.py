"""Step time of adversarial training through the layer against hand-written PyTorch and JAX GAN
steps on the same networks, in one process.

``ring8-implicit``: generator 2-128-128-2, discriminator 2-128-128-1 (ReLU), batch 256, Adam
(betas 0.5, 0.999), one discriminator update then one non-saturating generator update per step,
each on a fresh minibatch of the 20000 points. Four trainers take turns, round after round:

- ``inference.run(method="adversarial")`` on NumPyro (compiled scans of 500 steps) and on Pyro
  (the model traced through ``poutine.uncondition`` at each update; NaN guard and parameter
  snapshot included);
- hand-written JAX: one jitted ``lax.scan`` over the steps, minibatches gathered inside;
- hand-written PyTorch: ``nn.Sequential`` networks and ``torch.optim.Adam``, a Python loop.

Per step time of a run through the layer is (t(n2) - t(n1)) / (n2 - n1) of its
``timing["optimization"]``, which cancels compilation and setup; the hand-written ones are timed
after a warm-up. Reported: ms per step (median over rounds) and the median per-round ratio
layer / hand-written. torch runs on one thread (on a shared 2-core machine two threads spin).

    python -m benchmarks.gan_step_time --rounds 5
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from jax.example_libraries import optimizers

import inference
from benchmarks.entry import run_benchmark
from ppl_models import get_model

BATCH, LR, HIDDEN = 256, 1e-3, 128


def layer_step_ms(backend: str, n1: int, n2: int) -> float:
    times = [inference.run("ring8-implicit", method="adversarial", backend=backend, seed=0, num_steps=n,
                           batch_size=BATCH, learning_rate=LR, num_samples=0).timing["optimization"] for n in (n1, n2)]
    return 1000 * (times[1] - times[0]) / (n2 - n1)


def torch_trainer(data: np.ndarray):
    torch.manual_seed(0)

    def mlp(n_in, n_out):
        return torch.nn.Sequential(torch.nn.Linear(n_in, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                                   torch.nn.ReLU(), torch.nn.Linear(HIDDEN, n_out))

    gen, disc, x = mlp(2, 2), mlp(2, 1), torch.as_tensor(data)
    g_opt = torch.optim.Adam(gen.parameters(), lr=LR, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(disc.parameters(), lr=LR, betas=(0.5, 0.999))
    softplus = torch.nn.functional.softplus

    def steps(n: int) -> None:
        for _ in range(n):
            real = x[torch.randint(len(x), (BATCH,))]
            fake = gen(torch.randn(BATCH, 2)).detach()
            d_loss = softplus(-disc(real)).mean() + softplus(disc(fake)).mean()
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            g_loss = softplus(-disc(gen(torch.randn(BATCH, 2)))).mean()
            g_opt.zero_grad()
            g_loss.backward()
            g_opt.step()

    return steps


def jax_trainer(data: np.ndarray):
    def mlp_init(key, n_in, n_out):
        sizes = (n_in, HIDDEN, HIDDEN, n_out)
        keys = jax.random.split(key, 3)
        return [(jax.random.normal(k, (b, a)) / np.sqrt(a), jnp.zeros(b))
                for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]

    def mlp(params, h):
        for w, b in params[:-1]:
            h = jax.nn.relu(h @ w.T + b)
        w, b = params[-1]
        return h @ w.T + b

    x = jnp.asarray(data)
    init, update, get = optimizers.adam(LR, b1=0.5)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    state = (init(mlp_init(k1, 2, 2)), init(mlp_init(k2, 2, 1)))

    def step(carry, key):
        (g_state, d_state), i = carry
        k_real, k_fake, k_gen = jax.random.split(key, 3)
        g, d = get(g_state), get(d_state)
        real = x[jax.random.randint(k_real, (BATCH,), 0, len(x))]
        fake = jax.lax.stop_gradient(mlp(g, jax.random.normal(k_fake, (BATCH, 2))))

        def d_loss(d):
            return jax.nn.softplus(-mlp(d, real)).mean() + jax.nn.softplus(mlp(d, fake)).mean()

        d_state = update(i, jax.grad(d_loss)(d), d_state)
        d = get(d_state)

        def g_loss(g):
            return jax.nn.softplus(-mlp(d, mlp(g, jax.random.normal(k_gen, (BATCH, 2))))).mean()

        g_state = update(i, jax.grad(g_loss)(g), g_state)
        return ((g_state, d_state), i + 1), None

    run = jax.jit(lambda carry, keys: jax.lax.scan(step, carry, keys)[0])
    carry, calls = (state, 0), 0

    def steps(n: int) -> None:
        nonlocal carry, calls
        calls += 1
        carry = run(carry, jax.random.split(jax.random.PRNGKey(calls), n))
        jax.block_until_ready(carry)

    return steps


def timed_ms(steps, n: int) -> float:
    t0 = time.perf_counter()
    steps(n)
    return 1000 * (time.perf_counter() - t0) / n


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, nargs=2, default=[500, 1500], help="n1 n2 for the layer's runs")
    parser.add_argument("--torch-steps", type=int, default=300)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = get_model("ring8-implicit").data["x"]
    raw_torch, raw_jax = torch_trainer(data), jax_trainer(data)
    raw_torch(20)
    raw_jax(args.steps[1] - args.steps[0])  # compiles for this length
    rows = {k: [] for k in ("numpyro layer", "jax hand-written", "pyro layer", "torch hand-written")}
    for r in range(args.rounds):
        rows["numpyro layer"].append(layer_step_ms("numpyro", *args.steps))
        rows["jax hand-written"].append(timed_ms(raw_jax, args.steps[1] - args.steps[0]))
        rows["pyro layer"].append(layer_step_ms("pyro", args.torch_steps, 2 * args.torch_steps))
        rows["torch hand-written"].append(timed_ms(raw_torch, args.torch_steps))
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.3f} ms" for k, v in rows.items()), flush=True)
    for k, v in rows.items():
        print(f"{k:20s} {np.median(v):.3f} ms/step")
    for layer, raw in (("numpyro layer", "jax hand-written"), ("pyro layer", "torch hand-written")):
        print(f"{layer} / {raw}: {np.median(np.array(rows[layer]) / np.array(rows[raw])):.2f}")


if __name__ == "__main__":
    run_benchmark(main)
