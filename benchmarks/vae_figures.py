"""Figures of trained VAEs: samples, reconstructions, and the latent space of a 2-D VAE, as PNG.

Trains through ``inference.run`` (NumPyro, dynamically binarized MNIST, batch 100) a VAE
with ``--latent-dim`` latents and one with 2, then writes to ``--out``:

- ``vae_samples.png``: decoder means sigmoid(decoder(z)) for z ~ Normal(0, I);
- ``vae_reconstructions.png``: test images (odd rows) over sigmoid(decoder(encoder loc)) (even rows);
- ``vae_latent_2d.png``: encoder means of 5000 test images, coloured by digit.

    python -m benchmarks.vae_figures --epochs 10 --out docs/figures
"""
from __future__ import annotations

import argparse
from pathlib import Path

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import inference  # noqa: E402
from benchmarks.entry import run_benchmark
from benchmarks.image_grid import image_grid
from ppl_models.atomic import save_figure
from ppl_models.data.mnist import load_mnist  # noqa: E402
from ppl_models.latent_gaussian.vae import vae_spec  # noqa: E402
from ppl_models.nets import params_of  # noqa: E402
from ppl_models.nets.equinox_nets import with_parameters  # noqa: E402

BATCH = 100


def trained_networks(latent_dim: int, epochs: int, seed: int) -> tuple[dict, object]:
    """The spec's decoder and encoder (Equinox) with the weights SVI fitted."""
    spec = vae_spec("mnist", latent_dim=latent_dim)
    steps = epochs * spec.data["num_data"] // BATCH
    fit = inference.run(spec, method="svi", backend="numpyro", guide="spec", batch_size=BATCH, num_steps=steps,
                        learning_rate=1e-3, seed=seed, progress_bar=True)
    nets = {}
    for name, factory in spec.networks.items():
        nets[name] = with_parameters(factory.build("numpyro", 0, "float32"), params_of(fit.params, name))
    return nets, fit


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--latent-dim", type=int, default=50)
    parser.add_argument("--out", default="docs/figures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    test = vae_spec("mnist", "test").data["x"]
    _, labels = load_mnist("test")

    nets, fit = trained_networks(args.latent_dim, args.epochs, args.seed)
    z = jax.random.normal(jax.random.PRNGKey(args.seed), (64, args.latent_dim))
    image_grid(np.asarray(jax.nn.sigmoid(nets["decoder"](z))), out / "vae_samples.png", 8,
               f"VAE (L={args.latent_dim}, {args.epochs} epochs): decoder means for z ~ N(0, I)")
    loc, _ = nets["encoder"](test[:32])
    recon = np.asarray(jax.nn.sigmoid(nets["decoder"](loc)))
    pairs = np.concatenate([test[:32].reshape(4, 8, 784), recon.reshape(4, 8, 784)], axis=1).reshape(64, 784)
    image_grid(pairs, out / "vae_reconstructions.png", 8, "test images (rows 1, 3, 5, 7) and reconstructions")

    nets2, _ = trained_networks(2, args.epochs, args.seed)
    loc2, _ = nets2["encoder"](test[:5000])
    loc2 = np.asarray(loc2)
    fig, ax = plt.subplots(figsize=(6, 5))
    points = ax.scatter(loc2[:, 0], loc2[:, 1], c=labels[:5000], cmap="tab10", s=3)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set(xlabel="z1", ylabel="z2", title=f"2-D VAE: encoder means of 5000 test images ({args.epochs} epochs)")
    save_figure(fig, out / "vae_latent_2d.png")
    num_data = vae_spec("mnist", num_images=None).data["num_data"]  # minibatch losses are scaled to it
    print(f"negative ELBO per training image, last 100 steps: {fit.losses[-100:].mean() / num_data:.1f}")
    print("wrote", *sorted(p.name for p in out.glob("vae_*.png")))


if __name__ == "__main__":
    run_benchmark(main)
