r"""Implicit models against their ground truth: mode coverage on the ring of eight Gaussians, the
covariance error of a linear generator against the number of steps, and generators of MNIST.

- ``ring``: ``ring8-implicit`` fitted by each loss (adversarial with the non-saturating and the
  minimax generator loss, with and without a gradient penalty, MMD with Gaussian kernels of
  several bandwidths, the energy distance), seeds 0-4 (``--seeds``), NumPyro. ``--fits`` picks
  fits of ``RING_FITS`` by label, ``--fit backend:method:key=value,...`` adds any other (its
  label: the method and its options). Each row is one run: the modes covered by 10000 generated
  points (a mode counts when at least 1% of them lie within 3 sd of it) and the share of points
  within 3 sd of some mode. Rows are not averaged, so a collapse shows.
- ``linear``: ``linear_gaussian-implicit``: the Frobenius error of the generator's covariance
  W Wᵀ against the truth A Aᵀ + sigma² I after each number of steps, for MMD (energy) and the
  adversarial loss, with the error of the sample covariance of one minibatch for scale.
- ``avb_toy``: AVB's toy, ``onehot4-vae`` fitted by SVI with the Gaussian guide and
  ``onehot4-vae_implicit`` by AVB (one or five discriminator updates per step), seeds 0-2. For
  each of the four images, the fitted guide against the exact posterior of the fitted decoder
  (``avb_toy.grid_posterior``), averaged over the images: the 1-Wasserstein distance between 1000
  draws of each, next to the same between two sets of exact draws; and the total variation
  distance at the resolution of 40 x 40 bins over [-4, 4]², from 200000 guide draws, next to what
  sampling alone adds. A figure per guide shows its draws over the posterior's contours.
- ``avb_quadrants``: the same with the decoder fixed (``onehot4-quadrants``), so the posterior
  is the same for every fit: quarters of a Gaussian.
- ``mnist``: ``mnist-implicit`` fitted adversarially and by MMD (``--fits`` picks by label); a
  grid of generated images (``docs/figures/``) and MMD² (Gaussian kernel, median bandwidth)
  between 2000 generated and 2000 test images (the first of a fixed shuffle; also the file's first
  2000, as earlier rows were scored: ``mnist_test_subsets``), next to the same between 2000
  training and those test images; and the share of each digit among 10000 generated images, as labelled by
  an MLP classifier trained here on the training labels (its test accuracy is recorded too).

Rows are appended to ``benchmarks/implicit_models.csv``; a restarted run skips what is there.

    python -m benchmarks.implicit_models ring linear avb_toy avb_quadrants mnist
    python -m benchmarks.implicit_models ring --seeds 0 1 2 3 4 5 6 7 8 9 \
        --fits "adversarial non_saturating, r1 0.1, average 0.999"
    python -m benchmarks.implicit_models ring --seeds 4 --fit numpyro:adversarial:penalty_weight=10
    python -m benchmarks.implicit_models mnist --mnist-steps 10000 \
        --fits "adversarial non_saturating, r1 10, average 0.999"
    python -m benchmarks.implicit_models --summary
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

import inference
from benchmarks.csv_rows import append_rows, backend_column
from benchmarks.entry import run_benchmark
from benchmarks.image_grid import image_grid
from inference.backends import check_device
from inference.discrepancies import median_bandwidth, mmd2
from ppl_models.atomic import save_figure
from ppl_models.data.mnist import test_order
from ppl_models.errors import TrainingError
from ppl_models.implicit.generators import LINEAR, RING, mnist_images
from ppl_models.nets import params_of

OUT = Path(__file__).with_name("implicit_models.csv")
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
FIELDS = ("experiment", "model", "method", "options", "backend", "seed", "num_steps", "metric", "value", "wall_s",
          "error")
RING_FITS = {  # label: (method, options); the fits before the moving average became the default: without one
    "adversarial non_saturating, r1 0.1, average 0.999": ("adversarial", {
        "generator_loss": "non_saturating", "gradient_penalty": "r1", "penalty_weight": 0.1,
        "generator_average": 0.999}),
    "adversarial non_saturating, no penalty, average 0.999": ("adversarial", {
        "generator_loss": "non_saturating", "gradient_penalty": None, "generator_average": 0.999}),
    "adversarial wasserstein, wgan_gp 10, average 0.999": ("adversarial", {
        "generator_loss": "wasserstein", "gradient_penalty": "wgan_gp", "penalty_weight": 10.0,
        "generator_average": 0.999}),
    "adversarial non_saturating, r1 0.1": ("adversarial", {
        "generator_loss": "non_saturating", "gradient_penalty": "r1", "penalty_weight": 0.1, "generator_average": 0}),
    "adversarial non_saturating, r1 0.1, discriminator lr 4e-3": ("adversarial", {
        "generator_loss": "non_saturating", "gradient_penalty": "r1", "penalty_weight": 0.1,
        "discriminator_learning_rate": 4e-3, "generator_average": 0}),
    "adversarial non_saturating, r1 0.01": ("adversarial", {
        "generator_loss": "non_saturating", "gradient_penalty": "r1", "penalty_weight": 0.01, "generator_average": 0}),
    "adversarial non_saturating, r1 1": ("adversarial", {
        "generator_loss": "non_saturating", "gradient_penalty": "r1", "penalty_weight": 1.0, "generator_average": 0}),
    "adversarial non_saturating, no penalty": ("adversarial", {
        "generator_loss": "non_saturating", "gradient_penalty": None, "generator_average": 0}),
    "adversarial minimax, no penalty": ("adversarial", {
        "generator_loss": "minimax", "gradient_penalty": None, "generator_average": 0}),
    "mmd gaussian (0.05, 0.2, 1, 4)": ("mmd", {"kernel": "gaussian", "bandwidth": (0.05, 0.2, 1.0, 4.0)}),
    "mmd energy": ("mmd", {"kernel": "energy"}),
}
LINEAR_FITS = {"mmd energy": ("mmd", {"kernel": "energy", "learning_rate": 0.01}),
               "adversarial non_saturating": ("adversarial", {"learning_rate": 0.003, "gradient_penalty": None,
                                                              "generator_average": 0})}
# the adversarial fits recorded before the gradient penalty and the average became defaults: without them
MNIST_FITS = {"adversarial non_saturating": ("adversarial", {"learning_rate": 2e-4, "batch_size": 64,
                                                             "gradient_penalty": None, "generator_average": 0}),
              "adversarial minimax, smoothing 0.1": ("adversarial", {"learning_rate": 2e-4, "batch_size": 64,
                                                                     "generator_loss": "minimax",
                                                                     "label_smoothing": 0.1,
                                                                     "gradient_penalty": None,
                                                                     "generator_average": 0}),
              "mmd gaussian (median)": ("mmd", {"kernel": "gaussian", "learning_rate": 1e-3, "batch_size": 256}),
              "adversarial non_saturating, r1 0.1, average 0.999": ("adversarial", {
                  "learning_rate": 2e-4, "batch_size": 64, "gradient_penalty": "r1", "penalty_weight": 0.1,
                  "generator_average": 0.999}),
              "adversarial non_saturating, r1 1, average 0.999": ("adversarial", {
                  "learning_rate": 2e-4, "batch_size": 64, "gradient_penalty": "r1", "penalty_weight": 1.0,
                  "generator_average": 0.999}),
              "adversarial non_saturating, r1 10, average 0.999": ("adversarial", {
                  "learning_rate": 2e-4, "batch_size": 64, "gradient_penalty": "r1", "penalty_weight": 10.0,
                  "generator_average": 0.999})}
DIGIT_SHARE_MIN = 0.05  # every digit should be at least this share of the generated images


def figure_path(experiment: str, label: str) -> Path:
    """``docs/figures/<experiment>_<label, alphanumerics only>.png``."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    return FIGURES / f"{experiment}_{''.join(c if c.isalnum() else '_' for c in label).strip('_')}.png"


def done_rows() -> set:
    if not OUT.exists():
        return set()
    with OUT.open() as f:
        return {(r["experiment"], r["method"], r["options"], r["seed"], r["num_steps"], r["backend"])
                for r in csv.DictReader(f)}


def append(rows: list[dict]) -> None:
    append_rows(OUT, FIELDS, rows)


def fit(experiment, model, label, method, options, seed, num_steps, backend="numpyro", device="cpu", **extra):
    row = dict(experiment=experiment, model=model, method=method, options=label,
               backend=backend_column(backend, device), seed=seed, num_steps=num_steps, error="")
    t0 = time.perf_counter()
    try:
        result = inference.run(model, method=method, backend=backend, seed=seed, num_steps=num_steps,
                               device=device, **{**options, **extra})
    except TrainingError as e:
        return row | {"metric": "", "value": "", "wall_s": time.perf_counter() - t0, "error": str(e)}, None
    return row | {"wall_s": round(time.perf_counter() - t0, 1)}, result


def ring_fits(labels, texts) -> dict[str, tuple[str, dict, str]]:
    """The fits of the ring: ``RING_FITS`` by label (all of them if neither ``labels`` nor ``texts``
    are given), and one per ``backend:method:key=value,...`` text, labelled by its method and options."""
    from inference.cli import parse_method

    unknown = set(labels or ()) - set(RING_FITS)
    if unknown:
        raise SystemExit(f"unknown ring fit(s) {sorted(unknown)}; choose from {', '.join(map(repr, RING_FITS))}")
    chosen = labels or ([] if texts else list(RING_FITS))
    fits = {label: (*RING_FITS[label], "numpyro") for label in chosen}
    for text in texts or ():
        backend, method, options = parse_method(text)
        fits[" ".join([method, *text.split(":", 2)[2:]])] = (method, options, backend)
    return fits


def ring(seeds, num_steps: int, fits: dict, device: str = "cpu") -> None:
    done = done_rows()
    for label, (method, options, backend) in fits.items():
        for seed in seeds:
            if ("ring", method, label, str(seed), str(num_steps), backend_column(backend, device)) in done:
                continue
            row, result = fit("ring", "ring8-implicit", label, method, options, seed, num_steps, backend, device,
                              num_samples=10000)
            if result is None:
                append([row])
                continue
            coverage = RING.coverage(result.posterior_predictive["x"][0])
            append([row | {"metric": "modes_covered", "value": coverage.covered},
                    row | {"metric": "high_quality", "value": round(coverage.high_quality, 4)}])
            print(label, backend, seed, coverage.covered, round(coverage.high_quality, 3), row["wall_s"], flush=True)


def linear(steps, seed: int = 0, device: str = "cpu") -> None:
    done = done_rows()
    for label, (method, options) in LINEAR_FITS.items():
        for num_steps in steps:
            if ("linear", method, label, str(seed), str(num_steps), backend_column("numpyro", device)) in done:
                continue
            row, result = fit("linear", "linear_gaussian-implicit", label, method, options, seed, num_steps,
                              device=device, num_samples=0)
            if result is not None:
                weight = params_of(result.params, "generator")["layers.0.weight"]
                row |= {"metric": "covariance_frobenius_error",
                        "value": round(float(np.linalg.norm(weight @ weight.T - LINEAR.covariance)), 4)}
            append([row])
            print(label, num_steps, row.get("value"), row["wall_s"], flush=True)


AVB_FITS = {"gaussian guide (svi)": ("svi", {"guide": "spec", "num_samples": 0}),
            "implicit guide (avb)": ("avb", {"discriminator_steps": 1}),
            "implicit guide (avb, 5 discriminator steps)": ("avb", {"discriminator_steps": 5})}
AVB_DECODERS = {"avb_toy": ("onehot4-vae", 1e-3), "avb_quadrants": ("onehot4-quadrants", 3e-4)}


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """The 1-Wasserstein distance between two equal-size samples: the optimal matching's mean distance."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    cost = cdist(a, b)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def guide_draws(spec, result, x: np.ndarray, num: int, rng) -> np.ndarray:
    """``num`` draws of z from the fitted guide for image ``x``."""
    from inference.networks import fitted_network

    encode, xs = fitted_network(spec, result, "encoder"), np.repeat(x[None], num, axis=0)
    if result.method == "avb":
        return encode(xs, rng.standard_normal((num, 2)).astype(np.float32))
    loc, scale = encode(xs)
    return loc + scale * rng.standard_normal(loc.shape)


def avb_toy(experiment: str, seeds, num_steps: int, num: int = 1000, num_tv: int = 200_000,
            device: str = "cpu") -> None:
    """Each guide fitted with the toy's learned decoder (``avb_toy``) or the fixed quadrant decoder
    (``avb_quadrants``), scored per image against the exact posterior of the decoder it ends with."""
    from inference.networks import fitted_network
    from ppl_models import get_model
    from ppl_models.implicit.avb_toy import (
        IMAGES,
        QuadrantDecoder,
        binned_posterior,
        grid_posterior,
        posterior_draws,
        total_variation,
        total_variation_floor,
    )

    done, (base, learning_rate) = done_rows(), AVB_DECODERS[experiment]
    for label, (method, options) in AVB_FITS.items():
        model = base + ("_implicit" if method == "avb" else "")
        for seed in seeds:
            if (experiment, method, label, str(seed), str(num_steps), backend_column("numpyro", device)) in done:
                continue
            row, result = fit(experiment, model, label, method, options, seed, num_steps, device=device,
                              batch_size=128, learning_rate=learning_rate)
            if result is None:
                append([row])
                continue
            spec, rng = get_model(model), np.random.default_rng(seed)
            decode = (QuadrantDecoder().numpy if experiment == "avb_quadrants"
                      else fitted_network(spec, result, "decoder"))
            scores = {"w1_guide_vs_exact": [], "w1_exact_vs_exact": [], "tv_guide_vs_exact": [],
                      "tv_sampling_floor": []}
            for x in IMAGES:
                points, probs = grid_posterior(decode, x)
                exact = posterior_draws(points, probs, num, seed=2 * seed)
                draws = guide_draws(spec, result, x, num_tv, rng)
                scores["w1_guide_vs_exact"].append(wasserstein1(draws[:num], exact))
                scores["w1_exact_vs_exact"].append(wasserstein1(posterior_draws(points, probs, num, 2 * seed + 1),
                                                                exact))
                edges, mass = binned_posterior(points, probs)
                scores["tv_guide_vs_exact"].append(total_variation(draws, edges, mass))
                scores["tv_sampling_floor"].append(total_variation_floor(mass, num_tv, seed))
            append([row | {"metric": k, "value": round(float(np.mean(v)), 4)} for k, v in scores.items()])
            print(experiment, label, seed, {k: np.round(v, 3).tolist() for k, v in scores.items()}, row["wall_s"],
                  flush=True)
            if seed == seeds[0]:
                posterior_figure(experiment, label, spec, result, decode, rng)


def posterior_figure(experiment: str, label: str, spec, result, decode, rng) -> None:
    """The exact posterior of each image (contours around 50%, 90% and 99% of its mass) under draws
    of the fitted guide (dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ppl_models.implicit.avb_toy import IMAGES, grid_posterior

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    for k, x in enumerate(IMAGES):
        points, probs = grid_posterior(decode, x)
        size = int(round(np.sqrt(len(points))))
        grid = points.reshape(size, size, 2)
        ordered = np.sort(probs)[::-1]  # the densities whose regions hold 50%, 90% and 99% of the mass
        levels = sorted(ordered[np.searchsorted(np.cumsum(ordered), mass)] for mass in (0.5, 0.9, 0.99))
        ax.contour(grid[..., 0], grid[..., 1], probs.reshape(size, size), levels=levels, colors=f"C{k}",
                   linewidths=0.8)
        draws = guide_draws(spec, result, x, 400, rng)
        ax.scatter(draws[:, 0], draws[:, 1], s=2, color=f"C{k}", alpha=0.5)
    ax.set(xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), aspect="equal", xlabel="z1", ylabel="z2",
           title=f"{label}\n(dots: guide; contours: exact posterior, 50/90/99%)")
    save_figure(fig, figure_path(experiment, label), dpi=100)


def heldout_mmd2(a: np.ndarray, b: np.ndarray) -> float:
    return float(mmd2(a, b, np, "gaussian", (float(median_bandwidth(a, b, np)),)))


def digit_classifier(seed: int = 0, num_epochs: int = 5, batch_size: int = 128):
    """An MLP (784-512-10, ReLU) trained by Adam on the MNIST training images and their labels:
    returns the classifier (images -> digits) and its accuracy on the 10000 test images."""
    import jax
    import jax.numpy as jnp
    import optax

    from ppl_models.data.mnist import load_mnist

    x, y = mnist_images("train"), np.concatenate([load_mnist(p)[1] for p in ("train", "valid")])
    keys = jax.random.split(jax.random.PRNGKey(seed), 2)
    params = {"w1": jax.random.normal(keys[0], (784, 512)) * np.sqrt(2 / 784), "b1": jnp.zeros(512),
              "w2": jax.random.normal(keys[1], (512, 10)) * np.sqrt(2 / 512), "b2": jnp.zeros(10)}

    def logits(p, images):
        return jax.nn.relu(images @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    optimizer = optax.adam(1e-3)

    @jax.jit
    def step(p, state, images, labels):
        loss = lambda q: optax.softmax_cross_entropy_with_integer_labels(logits(q, images), labels).mean()  # noqa
        updates, state = optimizer.update(jax.grad(loss)(p), state)
        return optax.apply_updates(p, updates), state

    state, rng = optimizer.init(params), np.random.default_rng(seed)
    for _ in range(num_epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x) - batch_size + 1, batch_size):
            params, state = step(params, state, x[order[i:i + batch_size]], y[order[i:i + batch_size]])
    predict = jax.jit(lambda images: jnp.argmax(logits(params, images), axis=-1))
    x_test, y_test = load_mnist("test")
    accuracy = float(np.mean(np.asarray(predict(x_test.astype(np.float32) / 255.0)) == y_test))
    return (lambda images: np.asarray(predict(images.reshape(len(images), 784).astype(np.float32)))), accuracy


def mnist_test_subsets(num: int = 2000) -> dict[str, np.ndarray]:
    """The test images a generator is scored against: ``random`` (the first ``num`` of a fixed shuffle,
    what the targets are judged on) and ``first`` (the first ``num`` in the file's order, as the rows
    before 2026-12-02 were scored). The classic test file is not in random order: its first half
    was written by one population of writers, its second by another, while the training images mix
    both, so training images are 30 times farther in MMD² from the first 2000 test images (0.0040)
    than from a random 2000 (0.00014)."""
    test = mnist_images("test")
    return {"random": test[test_order(len(test))[:num]], "first": test[:num]}


def mnist(seed: int, num_steps: int, labels=None, device: str = "cpu") -> None:
    done = done_rows()
    train = mnist_images("train")
    train = train[np.random.default_rng(0).choice(len(train), 2000, replace=False)].astype(float)
    tests = {name: images.astype(float) for name, images in mnist_test_subsets().items()}
    floors = {name: heldout_mmd2(train, test) for name, test in tests.items()}
    suffix = {"random": "", "first": "_first2000"}  # metric names: the random subset's are the plain ones
    classify, accuracy = None, None
    for label, (method, options) in MNIST_FITS.items():
        key = ("mnist", method, label, str(seed), str(num_steps), backend_column("numpyro", device))
        if key in done or (labels and label not in labels):
            continue
        if classify is None:
            classify, accuracy = digit_classifier()
            print(f"digit classifier: test accuracy {accuracy:.4f}", flush=True)
        row, result = fit("mnist", "mnist-implicit", label, method, options, seed, num_steps, device=device,
                          num_samples=10000)
        rows = [row]
        if result is not None:
            generated = result.posterior_predictive["x"][0]
            name = f"{label} {num_steps} steps" + (f" seed {seed}" if seed else "")
            image_grid(generated, figure_path("mnist", name))
            shares = np.bincount(classify(generated), minlength=10) / len(generated)
            rows = [*(row | {"metric": f"heldout_mmd2{suffix[k]}",
                             "value": round(heldout_mmd2(generated[:2000].astype(float), test), 5)}
                      for k, test in tests.items()),
                    *(row | {"metric": f"train_vs_test_mmd2{suffix[k]}", "value": round(floor, 5)}
                      for k, floor in floors.items()),
                    row | {"metric": "digit_share_min", "value": round(float(shares.min()), 4)},
                    row | {"metric": "digit_shares", "value": " ".join(f"{v:.3f}" for v in shares)},
                    row | {"metric": "classifier_test_accuracy", "value": round(accuracy, 4)}]
        append(rows)
        print(label, [r.get("value") for r in rows], row["wall_s"], flush=True)


def summary() -> None:
    import pandas as pd

    table = pd.read_csv(OUT)
    for experiment, part in table.groupby("experiment"):
        print(f"\n## {experiment}")
        print(part.pivot_table(index=["options", "backend", "seed", "num_steps"], columns="metric", values="value",
                               aggfunc="first").to_string())


EXPERIMENTS = ("ring", "linear", *AVB_DECODERS, "mnist")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="*", help=", ".join(EXPERIMENTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--ring-steps", type=int, default=5000)
    parser.add_argument("--fits", nargs="+", help="ring (or mnist) fits by label: "
                        + ", ".join(map(repr, RING_FITS)) + "; " + ", ".join(map(repr, MNIST_FITS)))
    parser.add_argument("--fit", action="append", help="another ring fit, backend:method:key=value,...")
    parser.add_argument("--linear-steps", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--mnist-steps", type=int, default=5000)
    parser.add_argument("--avb-steps", type=int, default=20000)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the fits run; a GPU run is recorded as a row of its own")
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args(argv)
    unknown = set(args.experiments) - set(EXPERIMENTS)
    if unknown:
        parser.error(f"unknown experiment(s) {sorted(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    fits = ring_fits(args.fits, args.fit) if "ring" in args.experiments else {}
    check_device({backend for _, _, backend in fits.values()} | {"numpyro"}, args.device)
    for experiment in args.experiments:
        if experiment == "ring":
            ring(args.seeds, args.ring_steps, fits, args.device)
        elif experiment == "linear":
            linear(args.linear_steps, device=args.device)
        elif experiment in AVB_DECODERS:
            avb_toy(experiment, args.seeds[:3], args.avb_steps, device=args.device)
        else:
            mnist(args.seeds[0], args.mnist_steps, args.fits, args.device)
    if args.summary:
        summary()


if __name__ == "__main__":
    run_benchmark(main)
