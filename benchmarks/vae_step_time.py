"""Step time of VAE training through the layer against hand-written PyTorch and JAX, in one process.

The IWAE paper's 784-200-200-50 tanh VAE on dynamically binarized MNIST (60k images),
batch 20, Adam, K particles. Four trainers take turns, round after round:

- NumPyro through the layer: ``inference.backends.numpyro_svi`` (minibatches gathered and
  binarized inside one compiled scan per chunk of steps), the loop ``inference.run`` runs;
- hand-written JAX (``benchmarks.vae_reference.jax_step_fn``): one jitted scan over
  pre-binarized batches, so it is spared the gather and the binarization;
- Pyro through the layer: ``inference.backends.pyro_svi.train``, the loop ``inference.run`` runs
  (NaN guard and parameter snapshot included);
- hand-written PyTorch (``torch_step_fn``), batches binarized by ``make_batch`` in the timed loop;
  one ``torch.optim.Adam`` over all parameters, torch's default implementation, or its fused one
  with ``--fused-reference`` (the layer's Pyro path uses one fused Adam over all its tensors,
  ``inference.backends.pyro_optim.JointAdam``).

With ``--raw-numpyro`` (K=1 only), a fifth trainer: raw NumPyro, the same model and guide
written with ``numpyro.param`` and ``Trace_ELBO``, one jitted scan of ``SVI.update`` over
pre-binarized batches. It separates NumPyro's own cost from the layer's.

``--device cuda`` runs all of them on the GPU (the layer through its ``device`` option).

Each round times ``--steps`` steps of each after a warm-up (compilation excluded). Reported:
ms per step (median over rounds) and the median over rounds of the per-round ratio layer /
hand-written. torch runs on one thread: on a shared 2-core machine its default two threads
spin against other processes and a step can take 50x longer.

    python -m benchmarks.vae_step_time --rounds 5 --steps 300 --k 1,5
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import torch
from numpyro.infer import SVI, Trace_ELBO
from numpyro.optim import Adam

from benchmarks import vae_reference as ref
from benchmarks.entry import run_benchmark
from inference.backends import numpyro_svi, pyro_svi
from inference.backends.numpyro_common import backend_context as jax_context
from inference.backends.numpyro_common import jax_device
from inference.backends.pyro_common import backend_context as torch_context
from inference.backends.pyro_common import torch_device
from inference.options import resolve_options
from ppl_models.latent_gaussian.vae import LATENT_DIM, vae_spec

BATCH, LR = 20, 1e-3


def layer_options(backend: str, k: int, dreg: bool, jit: bool = False) -> dict:
    objective = dict(elbo="iwae", num_particles=k, dreg=dreg) if k > 1 or dreg else {}
    if jit:  # Pyro's JIT ELBO: Trace_ELBO only
        objective = dict(jit_compile=True)
    return resolve_options("svi", backend, dict(guide="spec", batch_size=BATCH, learning_rate=LR, lr_decay=1.0,
                                                **objective))


def numpyro_layer(spec, opts: dict, dtype: str = "float32", device: str = "cpu"):
    """``steps(n)``: n more minibatch steps of the layer's NumPyro SVI with resolved ``opts``."""
    with jax_context(device, dtype):
        svi, data, _ = numpyro_svi.prepare(spec, spec.model_fn("numpyro"), "svi", 0, dtype, opts)
        loop = numpyro_svi.MinibatchLoop(svi, spec, data, opts["batch_size"], jax.random.PRNGKey(1), dtype)
        state = loop.init(jax.random.PRNGKey(0))
    done = 0

    def steps(n: int) -> None:
        nonlocal state, done
        with jax_context(device, dtype):
            state, _ = loop.run(state, done, done + n)  # returns numpy losses: synchronized
        done += n

    return steps


def jax_reference(grey: np.ndarray, k: int, dreg: bool):
    run_epoch, state = ref.jax_step_fn(num_particles=k, dreg=dreg, learning_rate=LR)
    return scan_trainer(run_epoch, state, grey)


def scan_trainer(run, state, grey: np.ndarray):
    """``steps(n)``: n more steps of ``run(state, batches) -> (state, losses)`` (a compiled scan) from
    ``state``, on batches drawn and binarized afresh by numpy in the timed call."""
    rng = np.random.default_rng(0)

    def steps(n: int) -> None:
        nonlocal state
        state, losses = run(state, binarized_batches(grey, rng, n))
        losses.block_until_ready()

    return steps


def raw_numpyro(grey: np.ndarray):
    """``steps(n)`` of NumPyro SVI on the VAE written directly (K=1), batches binarized as ``jax_reference``'s."""
    init = ref.jax_init(jax.random.PRNGKey(0))

    def net_params(net):
        return {k: numpyro.param(k, v) for k, v in init.items() if k.startswith(net)}

    def model(x):
        decoder = net_params("decoder")
        with numpyro.plate("data", len(grey), subsample_size=x.shape[0]):
            z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([LATENT_DIM]).to_event(1))
            numpyro.sample("x", dist.Bernoulli(logits=ref.mlp_jax(decoder, "decoder", z)).to_event(1), obs=x)

    def guide(x):
        encoder = net_params("encoder")
        with numpyro.plate("data", len(grey), subsample_size=x.shape[0]):
            loc, raw = jnp.split(ref.mlp_jax(encoder, "encoder", x), 2, axis=-1)
            numpyro.sample("z", dist.Normal(loc, jax.nn.softplus(raw)).to_event(1))

    svi = SVI(model, guide, Adam(LR), Trace_ELBO())
    state = svi.init(jax.random.PRNGKey(0), jnp.zeros((BATCH, grey.shape[1])))
    run = jax.jit(lambda state, xs: jax.lax.scan(lambda s, x: svi.update(s, x), state, xs))
    return scan_trainer(run, state, grey)


def binarized_batches(grey: np.ndarray, rng, n: int) -> np.ndarray:
    """``n`` batches of ``BATCH`` images drawn at random and binarized afresh: (n, BATCH, pixels) float32."""
    idx = rng.integers(0, len(grey), size=(n, BATCH))
    return (rng.random((n, BATCH, grey.shape[1])) * 255 < grey[idx]).astype(np.float32)


def pyro_layer(spec, opts: dict, dtype: str = "float32", device: str = "cpu"):
    """``steps(n)``: n more minibatch steps of the layer's Pyro SVI with resolved ``opts``."""
    with torch_context(device, dtype) as dev:
        svi, batches, _, _ = pyro_svi.prepare(spec, spec.model_fn("pyro"), "svi", 0, dev, opts)
    done = 0

    def steps(n: int) -> None:
        nonlocal done
        with torch_context(device, dtype):
            pyro_svi.train(svi, batches, n, first=done)
        done += n

    return steps


def torch_reference(grey: np.ndarray, k: int, dreg: bool, fused: bool = False, device: str = "cpu"):
    step, make_batch = ref.torch_step_fn(num_particles=k, dreg=dreg, learning_rate=LR, fused=fused, device=device)
    rng = np.random.default_rng(0)

    def steps(n: int) -> None:
        for _ in range(n):
            step(make_batch(grey[rng.integers(0, len(grey), size=BATCH)]))
        if device == "cuda":  # the steps return unsynchronized losses: wait for the GPU's queue
            torch.cuda.synchronize()

    return steps


def timed(steps, n: int) -> float:
    t0 = time.perf_counter()
    steps(n)
    return (time.perf_counter() - t0) / n


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--k", default="1,5", help="particle counts, comma-separated")
    parser.add_argument("--dreg", action="store_true", help="DReG gradients (for K > 1)")
    parser.add_argument("--pyro-jit", action="store_true", help="the Pyro layer with Pyro's JIT ELBO (K=1 only)")
    parser.add_argument("--raw-numpyro", action="store_true", help="also time raw NumPyro SVI (K=1 only)")
    parser.add_argument("--fused-reference", action="store_true",
                        help="hand-written PyTorch with torch's fused Adam instead of its default")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    torch_device(args.device)  # a DeviceError now, if there is no GPU
    jax_dev = jax_device(args.device)
    torch.set_num_threads(1)
    spec = vae_spec("mnist")
    grey = spec.minibatch.binarize["x"]
    print(f"# torch {torch.__version__} ({torch.get_num_threads()} thread), jax {jax.__version__}, "
          f"batch {BATCH}, {args.rounds} rounds x {args.steps} steps, "
          f"hand-written torch Adam: {'fused' if args.fused_reference else 'default'}; device {args.device}")
    print("| K | DReG | NumPyro layer ms | hand-written JAX ms | ratio "
          "| Pyro layer ms | hand-written torch ms | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    ks = [int(v) for v in args.k.split(",")]
    if args.pyro_jit and ks != [1]:
        parser.error("--pyro-jit applies to K=1 (Trace_ELBO) only")
    if args.raw_numpyro and ks != [1]:
        parser.error("--raw-numpyro applies to K=1 (Trace_ELBO) only")
    for k in ks:
        with jax.default_device(jax_dev):  # the hand-written JAX and raw NumPyro trainers
            trainers = {"numpyro": numpyro_layer(spec, layer_options("numpyro", k, args.dreg), device=args.device),
                        "jax": jax_reference(grey, k, args.dreg),
                        "pyro": pyro_layer(spec, layer_options("pyro", k, args.dreg, args.pyro_jit),
                                           device=args.device),
                        "torch": torch_reference(grey, k, args.dreg, args.fused_reference, args.device)}
            if args.raw_numpyro:
                trainers["raw numpyro"] = raw_numpyro(grey)
            for steps in trainers.values():  # warm-up: compilation, first allocations
                timed(steps, args.steps)
            times = {name: [] for name in trainers}
            for _ in range(args.rounds):
                for name, steps in trainers.items():
                    times[name].append(timed(steps, args.steps))
        t = {name: np.array(v) * 1e3 for name, v in times.items()}
        jax_ratio, torch_ratio = np.median(t["numpyro"] / t["jax"]), np.median(t["pyro"] / t["torch"])
        print(f"| {k} | {args.dreg} | {np.median(t['numpyro']):.2f} | {np.median(t['jax']):.2f} | {jax_ratio:.2f} "
              f"| {np.median(t['pyro']):.2f} | {np.median(t['torch']):.2f} | {torch_ratio:.2f} |", flush=True)
        if args.raw_numpyro:
            print(f"raw NumPyro: {np.median(t['raw numpyro']):.2f} ms; ratio raw NumPyro / hand-written JAX "
                  f"{np.median(t['raw numpyro'] / t['jax']):.2f}, NumPyro layer / raw NumPyro "
                  f"{np.median(t['numpyro'] / t['raw numpyro']):.2f}", flush=True)


if __name__ == "__main__":
    run_benchmark(main)
