"""Held-out log-likelihood of a VAE fitted by adversarial variational Bayes, next to the
Gaussian-guide VAE (issue 5).

Both are the 784-200-200-50 tanh VAE of ``latent_gaussian.vae`` on dynamically binarized MNIST
(batch 20, Adam at ``--learning-rate``, ``--epochs`` epochs of 3000 steps, NumPyro):
``mnist-vae`` fitted by SVI (ELBO, Gaussian guide) and ``mnist-vae_implicit`` by AVB (implicit
guide z = encoder(x, e), discriminator T(x, z)), with adaptive contrast from ``--adaptive-contrast``
guide draws per image (0: plain AVB, T contrasting q with the prior).

The implicit guide has no density, so it cannot be the importance-sampling proposal itself.
For each test image, ``--proposal-draws`` draws of the fitted guide give a mean and a full
covariance; that Gaussian is the proposal for ``--num-samples`` importance samples, and
log p(x) = log mean_k p(x, z_k) / r(z_k). The Gaussian-guide VAE is scored both ways, with
its own guide as proposal (``inference.run(method="is")``, as in ``benchmarks.iwae_mnist``) and
with the fitted proposal: the two must agree within their standard errors, which checks the
estimator. Test images: the first ``--num-test``, binarized once (numpy seed 0).

    python -m benchmarks.avb_mnist --epochs 5 --num-test 500 --num-samples 5000 --adaptive-contrast 8
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import inference
from benchmarks.entry import run_benchmark
from benchmarks.iwae_mnist import test_nll
from inference.importance import estimate
from inference.networks import fitted_network
from ppl_models import get_model
from ppl_models.latent_gaussian.vae import LATENT_DIM, vae_spec

BATCH = 20
STEPS_PER_EPOCH = 60_000 // BATCH


def _log_normal(z: np.ndarray) -> np.ndarray:
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * np.log(2 * np.pi)


def fitted_proposal_log_weights(decode, guide_draws, x: np.ndarray, num_draws: int, num_samples: int,
                                rng: np.random.Generator, chunk: int = 5) -> np.ndarray:
    """(num_samples, N) log weights log p(x_n, z) - log r_n(z), z ~ r_n, where r_n is the Gaussian
    with the mean and covariance of ``num_draws`` draws ``guide_draws(x_n repeated, rng)``."""
    out = []
    for start in range(0, len(x), chunk):
        xs = x[start:start + chunk]
        draws = guide_draws(np.repeat(xs, num_draws, axis=0), rng).reshape(len(xs), num_draws, -1)
        mean = draws.mean(1)
        centred = draws - mean[:, None]
        cov = np.einsum("bmi,bmj->bij", centred, centred) / (num_draws - 1) + 1e-6 * np.eye(draws.shape[-1])
        chol = np.linalg.cholesky(cov)
        eps = rng.standard_normal((len(xs), num_samples, draws.shape[-1]))
        z = mean[:, None] + np.einsum("bij,bkj->bki", chol, eps)
        log_r = _log_normal(eps) - np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)[:, None]
        logits = np.asarray(decode(z.reshape(-1, z.shape[-1]).astype(np.float32)), dtype=float)
        logits = logits.reshape(len(xs), num_samples, -1)
        log_lik = (xs[:, None] * -np.logaddexp(0, -logits) + (1 - xs[:, None]) * -np.logaddexp(0, logits)).sum(-1)
        out.append(log_lik + _log_normal(z) - log_r)
    return np.concatenate(out).T


def gaussian_guide(encode):
    def draw(xs, rng):
        loc, scale = encode(xs)
        return loc + scale * rng.standard_normal(loc.shape)
    return draw


def implicit_guide(encode):
    def draw(xs, rng):
        return encode(xs, rng.standard_normal((len(xs), LATENT_DIM)).astype(np.float32))
    return draw


def report(label: str, log_weights: np.ndarray) -> None:
    est = estimate(log_weights)
    n = log_weights.shape[1]
    print(f"| {label} | {-est['log_evidence'] / n:.2f} ± {est['log_evidence_se'] / n:.2f} | "
          f"{np.median(est['ess']):.0f} | {np.mean(est['khat'] > 0.7):.2f} |", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=float, default=5)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--discriminator-steps", type=int, default=5)
    parser.add_argument("--adaptive-contrast", type=int, default=8, help="guide draws per image (0: plain AVB)")
    parser.add_argument("--num-test", type=int, default=500)
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--proposal-draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    test_spec = vae_spec("mnist", "test", num_images=args.num_test)
    x = test_spec.data["x"].astype(float)
    common = dict(backend="numpyro", seed=args.seed, batch_size=BATCH, num_steps=int(args.epochs * STEPS_PER_EPOCH),
                  learning_rate=args.learning_rate, progress_bar=False, device=args.device)
    t0 = time.perf_counter()
    gaussian = inference.run("mnist-vae", method="svi", guide="spec", num_samples=0, **common)
    t1 = time.perf_counter()
    avb = inference.run("mnist-vae_implicit", method="avb", discriminator_steps=args.discriminator_steps,
                        adaptive_contrast=args.adaptive_contrast, **common)
    t2 = time.perf_counter()
    print(f"# {args.epochs} epoch(s) of {STEPS_PER_EPOCH} steps, batch {BATCH}, lr {args.learning_rate}; "
          f"train s: SVI {t1 - t0:.0f}, AVB {t2 - t1:.0f}; test NLL (nats) on {args.num_test} test images, "
          f"k = {args.num_samples}; AVB's adaptive contrast: {args.adaptive_contrast or 'off'}")
    print("| model, proposal | test NLL ± se | median ESS | share k-hat > 0.7 |\n|---|---|---|---|")
    nll = test_nll(test_spec, gaussian.params, args.num_samples, args.device)
    print(f"| Gaussian guide (SVI), its own guide | {nll:.2f} | | |", flush=True)
    for label, model, result, guide in [
            ("Gaussian guide (SVI), Gaussian fitted to guide draws", "mnist-vae", gaussian, gaussian_guide),
            ("implicit guide (AVB), Gaussian fitted to guide draws", "mnist-vae_implicit", avb, implicit_guide)]:
        spec, rng = get_model(model), np.random.default_rng(args.seed + 1)
        decode, encode = fitted_network(spec, result, "decoder"), fitted_network(spec, result, "encoder")
        report(label, fitted_proposal_log_weights(decode, guide(encode), x, args.proposal_draws, args.num_samples,
                                                  rng))

if __name__ == "__main__":
    run_benchmark(main)
