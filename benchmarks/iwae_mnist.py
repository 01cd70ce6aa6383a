"""The IWAE paper's MNIST table (1 stochastic layer), on a shortened schedule, four ways.

Burda, Grosse & Salakhutdinov (2016), table 1: 784-200-200-50 tanh encoder and decoder,
dynamically binarized MNIST (60k training images), batch 20, Adam, and 3^i epochs at
learning rate 1e-3 * 10^(-i/7) for i = 0..7 (3280 epochs). Test NLL (k = 5000):
VAE k=1 86.76, IWAE k=5 85.54, IWAE k=50 84.78.

On a CPU this runs the schedule's first ``--stages`` stages (stage 0: one epoch at 1e-3),
for each objective, with four trainers: NumPyro and Pyro through ``inference.run``, and
the hand-written JAX and PyTorch trainers of ``benchmarks.vae_reference``. Every trained
network is scored by the same estimator: ``inference.run(method="is")`` on NumPyro, with
``--num-samples`` proposals from the trained encoder per test image, on ``--num-test`` test
images (binarized once, numpy seed 0; the first of a fixed shuffle, so a random subset; all
10000 in batches: ``benchmarks.likelihood_table``). Note: the layer's Adam uses the
libraries' eps = 1e-8; the hand-written trainers use the paper's 1e-4.

    python -m benchmarks.iwae_mnist --stages 1 --num-test 500 --num-samples 5000

On a GPU: ``--device cuda`` trains and scores there; ``--trainers`` picks some of the four
(``numpyro,pyro,jax,torch``), for runs where device time is short.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import inference
from benchmarks import vae_reference as ref
from benchmarks.entry import run_benchmark
from inference.backends.numpyro_common import jax_device
from inference.backends.pyro_common import torch_device
from ppl_models.latent_gaussian.vae import vae_spec
from ppl_models.nets import param_name

BATCH = 20
TRAINERS = {"numpyro": "numpyro (layer)", "pyro": "pyro (layer)", "jax": "hand-written JAX",
            "torch": "hand-written PyTorch"}
PAPER = {"vae_k1": 86.76, "iwae_k5": 85.54, "iwae_k50": 84.78}
OBJECTIVES = {"vae_k1": dict(num_particles=1), "iwae_k5": dict(num_particles=5, elbo="iwae"),
              "iwae_k50": dict(num_particles=50, elbo="iwae"),
              "iwae_k50_dreg": dict(num_particles=50, elbo="iwae", dreg=True)}


def schedule(stages: int, steps_per_epoch: int) -> tuple[int, float]:
    """Steps and the exponential decay that best follows the paper's first ``stages`` stages:
    the learning rate falls by 10^(-1/7) per stage; one decay over all steps, to the last stage's rate."""
    epochs = sum(3**i for i in range(stages))
    return epochs * steps_per_epoch, 10 ** (-(stages - 1) / 7)


def layer_fit(backend: str, spec, objective: dict, num_steps: int, decay: float, seed: int, device: str, **extra):
    """The layer's SVI fit of the VAE with one objective on the paper's settings (batch 20, Adam from 1e-3
    decaying by ``decay`` over the run); ``extra`` options go to ``inference.run`` (e.g. ``checkpoint``)."""
    return inference.run(spec, method="svi", backend=backend, guide="spec", batch_size=BATCH, num_steps=num_steps,
                         learning_rate=1e-3, lr_decay=decay, seed=seed, device=device, **objective, **extra)


def layer_params(backend: str, spec, objective: dict, num_steps: int, decay: float, seed: int, device: str) -> dict:
    return layer_fit(backend, spec, objective, num_steps, decay, seed, device).params


def reference_params(trainer, grey, objective: dict, num_steps: int, decay: float, seed: int, device: str) -> dict:
    """A hand-written trainer's weights, renamed as the layer names them (Sequential 0/2/4 -> layers.0/1/2)."""
    epochs = num_steps // (len(grey) // BATCH)
    params, _ = trainer(grey, num_particles=objective["num_particles"], dreg=objective.get("dreg", False),
                        batch_size=BATCH, num_epochs=epochs, learning_rate=1e-3, lr_decay=decay, seed=seed,
                        device=device)
    out = {}
    for name, value in params.items():
        net, index, kind = name.split(".")
        out[param_name(net, f"layers.{int(index) // 2}.{kind}")] = np.asarray(value)
    return out


def test_nll(test_spec, params: dict, num_samples: int, device: str) -> float:
    r = inference.run(test_spec, method="is", backend="numpyro", params=params, num_samples=num_samples, seed=1,
                      device=device)
    return -r.log_evidence / test_spec.data["num_data"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", type=int, default=1)
    parser.add_argument("--num-test", type=int, default=500)
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--objectives", default="vae_k1,iwae_k5,iwae_k50")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--trainers", default=",".join(TRAINERS), help="some of " + ",".join(TRAINERS))
    args = parser.parse_args(argv)
    chosen = args.trainers.split(",")
    if unknown := sorted(set(chosen) - set(TRAINERS)):
        parser.error(f"unknown trainers {unknown}; valid choices: {', '.join(TRAINERS)}")
    if unknown := sorted(set(args.objectives.split(",")) - set(OBJECTIVES)):
        parser.error(f"unknown objectives {unknown}; valid choices: {', '.join(OBJECTIVES)}")
    jax_device(args.device)  # a DeviceError now, not after the first trainer
    torch_device(args.device)
    torch.set_num_threads(1)
    spec = vae_spec("mnist")
    test_spec = vae_spec("mnist", "test", num_images=args.num_test)
    grey = spec.minibatch.binarize["x"]
    num_steps, decay = schedule(args.stages, len(grey) // BATCH)
    fit = (num_steps, decay, args.seed, args.device)
    trainers = {
        "numpyro": lambda o: layer_params("numpyro", spec, o, *fit),
        "pyro": lambda o: layer_params("pyro", spec, o, *fit),
        "jax": lambda o: reference_params(ref.train_jax, grey, o, *fit),
        "torch": lambda o: reference_params(ref.train_torch, grey, o, *fit),
    }
    print(f"# {args.stages} stage(s): {num_steps} steps, lr 1e-3 decaying by {decay:.3f}; test NLL (nats) on "
          f"{args.num_test} test images, k = {args.num_samples}; device {args.device}")
    print("| objective | trainer | train s | test NLL | paper (full schedule) |")
    print("|---|---|---|---|---|")
    for name in args.objectives.split(","):
        for trainer in chosen:
            t0 = time.perf_counter()
            params = trainers[trainer](OBJECTIVES[name])
            seconds = time.perf_counter() - t0
            nll = test_nll(test_spec, params, args.num_samples, args.device)
            print(f"| {name} | {TRAINERS[trainer]} | {seconds:.0f} | {nll:.2f} "
                  f"| {PAPER.get(name.removesuffix('_dreg'))} |", flush=True)


if __name__ == "__main__":
    run_benchmark(main)
