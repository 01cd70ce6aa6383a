"""Held-out log-likelihood of a VAE fitted by adversarial variational Bayes, next to the
Gaussian-guide VAE (issue 5).

Both are the 784-200-200-50 tanh VAE of ``latent_gaussian.vae`` on dynamically binarized MNIST
(batch 20, Adam at ``--learning-rate`` decaying by ``--lr-decay`` over the run, ``--epochs`` epochs of
3000 steps, NumPyro):
``mnist-vae`` fitted by SVI (ELBO, Gaussian guide) and ``mnist-vae_implicit`` by AVB (implicit
guide z = encoder(x, e), discriminator T(x, z)), with adaptive contrast from ``--adaptive-contrast``
guide draws per image (0: plain AVB, T contrasting q with the prior).

The implicit guide has no density, so it cannot be the importance-sampling proposal itself.
Each decoder is scored two ways, k = ``--num-samples`` importance samples per test image,
log p(x) = log mean_k p(x, z_k) / r(z_k):

* a Gaussian encoder refitted to the frozen decoder (``refitted_encoder``: ``--refit-epochs``
  epochs of the ``--refit-particles``-sample IWAE bound) is the proposal, through the layer's own
  importance sampling (``inference.run(method="is")``): the same estimator for both models, and
  the one the comparison rests on;
* for each test image, the Gaussian with the mean and full covariance of ``--proposal-draws``
  draws of the model's own guide: how well the fitted guide itself covers the posterior.

The Gaussian-guide VAE is also scored with its own guide as proposal (as in
``benchmarks.iwae_mnist``). Test images: the first ``--num-test`` of a fixed shuffle, binarized
once (numpy seed 0).

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
from ppl_models.nets import param_name, params_of

BATCH = 20
STEPS_PER_EPOCH = 60_000 // BATCH


def bernoulli_log_likelihood(x, logits, xp=np):
    """log Bernoulli(x | sigmoid(logits)), summed over pixels; ``xp``: numpy or jax.numpy."""
    return (x * -xp.logaddexp(0, -logits) + (1 - x) * -xp.logaddexp(0, logits)).sum(-1)


def _log_normal(z: np.ndarray) -> np.ndarray:
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * np.log(2 * np.pi)


def fitted_proposal_log_weights(decode, guide_draws, x: np.ndarray, num_draws: int, num_samples: int,
                                rng: np.random.Generator, chunk: int = 5) -> np.ndarray:
    """(num_samples, N) log weights log p(x_n, z) - log r_n(z), z ~ r_n, where r_n is the Gaussian
    with the mean and covariance of ``num_draws`` draws ``guide_draws(x_n repeated, rng)``."""
    out = []
    for start in range(0, len(x), chunk):
        xs = x[start:start + chunk]
        draws = np.asarray(guide_draws(np.repeat(xs, num_draws, axis=0), rng), dtype=float)
        draws = draws.reshape(len(xs), num_draws, -1)
        mean = draws.mean(1)
        centred = draws - mean[:, None]
        cov = np.einsum("bmi,bmj->bij", centred, centred) / (num_draws - 1)
        # An implicit guide can collapse onto a subspace (AVB at Adam 4e-3, seed 2): the jitter, relative to
        # the covariance's scale, keeps it positive definite through the rounding of its null directions.
        scale = np.trace(cov, axis1=1, axis2=2) / cov.shape[-1]
        cov += (1e-6 * scale + 1e-12)[:, None, None] * np.eye(cov.shape[-1])
        chol = np.linalg.cholesky(cov)
        eps = rng.standard_normal((len(xs), num_samples, draws.shape[-1]))
        z = mean[:, None] + np.einsum("bij,bkj->bki", chol, eps)
        log_r = _log_normal(eps) - np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)[:, None]
        logits = np.asarray(decode(z.reshape(-1, z.shape[-1]).astype(np.float32)), dtype=float)
        logits = logits.reshape(len(xs), num_samples, -1)
        out.append(bernoulli_log_likelihood(xs[:, None], logits) + _log_normal(z) - log_r)
    return np.concatenate(out).T


def refitted_encoder(spec, decoder_params: dict, epochs: float, num_particles: int, seed: int,
                     device: str = "cpu") -> dict:
    """A Gaussian encoder (``spec``'s, with fresh weights) fitted to a frozen decoder: Adam at 1e-3
    on the ``num_particles``-sample IWAE bound, batch 20 of dynamically binarized training images,
    for ``epochs`` epochs. Its weights, as ``encoder$$$...`` entries of a result's params.

    The proposal for scoring a decoder whose own guide has no density (AVB's) or a poor one: any
    proposal gives an estimate of log p(x) that is low in expectation, so a better one only tightens
    the bound on the test NLL; the AVB paper scores with annealed importance sampling for the same
    reason. Written here by hand because the layer's SVI cannot hold a network fixed."""
    import jax

    from inference.backends.numpyro_common import jax_device

    with jax.default_device(jax_device(device)):
        return _refit(spec, decoder_params, epochs, num_particles, seed)


def _refit(spec, decoder_params: dict, epochs: float, num_particles: int, seed: int) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from ppl_models.nets.equinox_nets import named_parameters, with_parameters

    decoder = with_parameters(spec.networks["decoder"].build("numpyro", 0, "float32"),
                              {k: jnp.asarray(v) for k, v in decoder_params.items()})
    encoder = spec.networks["encoder"].build("numpyro", seed, "float32")
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(eqx.filter(encoder, eqx.is_array))

    def negative_bound(encoder, x, key):
        loc, scale = encoder(x)
        eps = jax.random.normal(key, (num_particles, *loc.shape))
        z = loc + scale * eps
        # log p(x | z) + log N(z; 0, I) - log N(z; loc, scale)
        log_w = (bernoulli_log_likelihood(x, decoder(z), jnp) - 0.5 * (z**2).sum(-1) + 0.5 * (eps**2).sum(-1)
                 + jnp.log(scale).sum(-1))
        return -(jax.nn.logsumexp(log_w, 0) - jnp.log(num_particles)).mean()

    @eqx.filter_jit
    def step(encoder, opt_state, x, key):
        grads = eqx.filter_grad(negative_bound)(encoder, x, key)
        updates, opt_state = optimizer.update(grads, opt_state)
        return eqx.apply_updates(encoder, updates), opt_state

    grey = np.asarray(spec.minibatch.binarize["x"], dtype=np.float32)
    rng, key = np.random.default_rng(seed), jax.random.PRNGKey(seed)
    for i in range(int(epochs * STEPS_PER_EPOCH)):
        if i % STEPS_PER_EPOCH == 0:
            order = rng.permutation(len(grey))
        batch = grey[order[(i % STEPS_PER_EPOCH) * BATCH:(i % STEPS_PER_EPOCH + 1) * BATCH]]
        key, sub = jax.random.split(key)
        encoder, opt_state = step(encoder, opt_state, jnp.asarray(rng.random(batch.shape) < batch, jnp.float32), sub)
    return {param_name("encoder", k): np.asarray(v) for k, v in named_parameters(encoder).items()}


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
    parser.add_argument("--avb-learning-rate", type=float, default=None,
                        help="AVB's Adam step size (default: --learning-rate); AVB trains best at a larger step "
                        "than Gaussian-guide SVI (RESULTS)")
    parser.add_argument("--lr-decay", type=float, default=1.0, help="factor by which every step size decays, "
                        "exponentially, over the run, for SVI and AVB alike (1: constant)")
    parser.add_argument("--discriminator-steps", type=int, default=5)
    parser.add_argument("--discriminator-learning-rate", type=float, default=None,
                        help="T's Adam step size (default: --learning-rate)")
    parser.add_argument("--adaptive-contrast", type=int, default=8, help="guide draws per image (0: plain AVB)")
    parser.add_argument("--num-test", type=int, default=500)
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--proposal-draws", type=int, default=1000)
    parser.add_argument("--refit-epochs", type=float, default=2, help="epochs of the Gaussian encoder refitted to "
                        "each decoder, for scoring (0: none)")
    parser.add_argument("--refit-particles", type=int, default=5, help="samples of the refit's IWAE bound")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    test_spec = vae_spec("mnist", "test", num_images=args.num_test)
    x = test_spec.data["x"].astype(float)
    common = dict(backend="numpyro", seed=args.seed, batch_size=BATCH, num_steps=int(args.epochs * STEPS_PER_EPOCH),
                  learning_rate=args.learning_rate, lr_decay=args.lr_decay, progress_bar=False, device=args.device)
    t0 = time.perf_counter()
    gaussian = inference.run("mnist-vae", method="svi", guide="spec", num_samples=0, **common)
    t1 = time.perf_counter()
    avb = inference.run("mnist-vae_implicit", method="avb", discriminator_steps=args.discriminator_steps,
                        discriminator_learning_rate=args.discriminator_learning_rate,
                        adaptive_contrast=args.adaptive_contrast,
                        **common | dict(learning_rate=args.avb_learning_rate or args.learning_rate))
    t2 = time.perf_counter()
    # two lines of at most 100 columns
    lr = args.learning_rate if args.avb_learning_rate in (None, args.learning_rate) else \
        f"{args.learning_rate} (AVB {args.avb_learning_rate})"
    print(f"# {args.epochs} epoch(s) of {STEPS_PER_EPOCH} steps, batch {BATCH}, lr {lr}"
          f"{f' decaying by {args.lr_decay}' if args.lr_decay != 1 else ''}; "
          f"train s: SVI {t1 - t0:.0f}, AVB {t2 - t1:.0f}")
    print(f"# test NLL (nats) on {args.num_test} test images, k = {args.num_samples}; "
          f"AVB's adaptive contrast: {args.adaptive_contrast or 'off'}")
    print("| model, proposal | test NLL ± se | median ESS | share k-hat > 0.7 |\n|---|---|---|---|")
    nll = test_nll(test_spec, gaussian.params, args.num_samples, args.device)
    print(f"| Gaussian guide (SVI), its own guide | {nll:.2f} | | |", flush=True)
    train_spec = get_model("mnist-vae")
    for label, model, result, guide in [("Gaussian guide (SVI)", "mnist-vae", gaussian, gaussian_guide),
                                        ("implicit guide (AVB)", "mnist-vae_implicit", avb, implicit_guide)]:
        if args.refit_epochs:
            decoder = {k: v for k, v in result.params.items() if k.startswith(param_name("decoder", ""))}
            t = time.perf_counter()
            encoder = refitted_encoder(train_spec, params_of(decoder, "decoder"), args.refit_epochs,
                                       args.refit_particles, args.seed + 2, args.device)
            nll = test_nll(test_spec, decoder | encoder, args.num_samples, args.device)
            print(f"| {label}, Gaussian encoder refitted to its decoder ({time.perf_counter() - t:.0f} s) | "
                  f"{nll:.2f} | | |", flush=True)
        spec, rng = get_model(model), np.random.default_rng(args.seed + 1)
        decode, encode = fitted_network(spec, result, "decoder"), fitted_network(spec, result, "encoder")
        report(f"{label}, Gaussian fitted to guide draws",
               fitted_proposal_log_weights(decode, guide(encode), x, args.proposal_draws, args.num_samples, rng))


if __name__ == "__main__":
    run_benchmark(main)
