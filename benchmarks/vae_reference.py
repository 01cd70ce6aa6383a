"""Hand-written PyTorch and JAX baselines of the IWAE paper's one-stochastic-layer MNIST VAE / IWAE.

    PPL_DATA_DIR=../shared/data python -m benchmarks.vae_reference [--epochs 1] [--num-train 5000] [--k 1] [--dreg]

Generative story (the one-stochastic-layer model of Burda, Grosse & Salakhutdinov 2016):

    z ~ Normal(0, I_L)                                  L = latent_dim (50 in the paper)
    x | z ~ Bernoulli(logits = decoder(z))              decoder: L -> 200 -> 200 -> 784, tanh hidden
    q(z | x) = Normal(loc, softplus(raw))               encoder: 784 -> 200 -> 200 -> 2L = [loc, raw], tanh hidden

Objective per minibatch (B, 784), K particles: log w_kb = log p(x_b | z_kb) + log p(z_kb) - log q(z_kb | x_b),
loss = -mean_b [logsumexp_k log w_kb - log K] (K = 1 is the ELBO). With ``dreg=True`` the encoder gets the
doubly reparameterized gradient of Tucker et al. 2019 and the decoder the plain IWAE gradient.
Adam(b1=0.9, b2=0.999, eps=1e-4), lr_t = lr * lr_decay ** (t / num_steps); dynamic binarization each epoch.
Parameters are numpy dicts named like nn.Sequential(Linear, Tanh, Linear, Tanh, Linear): 'encoder.0.weight', ...
No Pyro / NumPyro here: this is the baseline a probabilistic-programming layer is compared against.
"""
from __future__ import annotations

import argparse
import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from jax.example_libraries import optimizers
from torch import nn
from torch.nn import functional as F

from benchmarks.entry import run_benchmark

HIDDEN, PIXELS, LAYERS = 200, 784, (0, 2, 4)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# ---------------------------------------------------------------- PyTorch
def torch_model(latent_dim: int = 50) -> nn.Module:
    """encoder/decoder as nn.Sequential(Linear, Tanh, Linear, Tanh, Linear), PyTorch's default init."""
    def mlp(d_in, d_out):
        return nn.Sequential(nn.Linear(d_in, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh(),
                             nn.Linear(HIDDEN, d_out))
    model = nn.Module()
    model.encoder, model.decoder = mlp(PIXELS, 2 * latent_dim), mlp(latent_dim, PIXELS)
    return model


def _log_weights_torch(model, x, eps, detach_q=False):
    """log w = log p(x|z) + log p(z) - log q(z|x), z = loc + scale * eps; eps is (K, B, L), result (K, B)."""
    loc, raw = model.encoder(x).chunk(2, dim=-1)
    scale = F.softplus(raw)
    z = loc + scale * eps
    logits = model.decoder(z)
    log_px = (x * logits - F.softplus(logits)).sum(-1)
    if detach_q:  # DReG: q's parameters enter log q only through z
        loc, scale = loc.detach(), scale.detach()
    log_pz = (-0.5 * z**2 - HALF_LOG_2PI).sum(-1)
    log_qz = (-0.5 * ((z - loc) / scale) ** 2 - scale.log() - HALF_LOG_2PI).sum(-1)
    return log_px + log_pz - log_qz


def _torch_trainer(latent_dim, num_particles, dreg, learning_rate, lr_decay, num_steps, seed, fused=False,
                   device="cpu"):
    torch.manual_seed(seed)
    model, gen = torch_model(latent_dim).to(device), torch.Generator(device).manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate, betas=(0.9, 0.999), eps=1e-4, fused=fused)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: lr_decay ** (t / num_steps))
    enc, dec = list(model.encoder.parameters()), list(model.decoder.parameters())

    def step(x):
        eps = torch.randn((num_particles, x.shape[0], latent_dim), generator=gen, device=device)
        log_w = _log_weights_torch(model, x, eps, detach_q=dreg)
        loss = -(torch.logsumexp(log_w, 0) - math.log(num_particles)).mean()
        opt.zero_grad()
        if dreg:  # decoder: IWAE gradient; encoder: sum_k wtilde_k^2 d log w_k / dz_k dz_k / dphi
            w_tilde = torch.softmax(log_w, 0).detach()
            enc_surrogate = -(w_tilde**2 * log_w).sum(0).mean()
            grads = (torch.autograd.grad(loss, dec, retain_graph=True) + torch.autograd.grad(enc_surrogate, enc))
            for p, g in zip(dec + enc, grads, strict=True):
                p.grad = g
        else:
            loss.backward()
        opt.step()
        sched.step()
        return loss.detach()

    def make_batch(grey_rows: np.ndarray) -> torch.Tensor:
        """Binarize uint8 rows (B, 784) afresh: x = (uniform < grey / 255) as float32."""
        probs = torch.tensor(np.asarray(grey_rows), dtype=torch.float32, device=device) / 255
        return (torch.rand(probs.shape, generator=gen, device=device) < probs).float()

    return model, gen, step, make_batch


def torch_step_fn(latent_dim=50, num_particles=1, dreg=False, learning_rate=1e-3, seed=0, fused=False, device="cpu"):
    """Returns (step, make_batch): ``step(x)`` does one Adam update on a float32 (B, 784) 0/1 tensor and returns
    the loss as a 0-d tensor (no .item() inside, so timing measures the step); ``make_batch(grey_rows)``
    binarizes uint8 rows (B, 784) into such a tensor. Constant learning rate; ``fused``: torch's fused Adam
    (one kernel per step for all tensors) instead of its default; ``device``: "cpu" or "cuda"."""
    _, _, step, make_batch = _torch_trainer(latent_dim, num_particles, dreg, learning_rate, 1.0, 1, seed, fused,
                                            device)
    return step, make_batch


def train_torch(grey: np.ndarray, *, latent_dim=50, num_particles=1, dreg=False, batch_size=20, num_epochs=1,
                learning_rate=1e-3, lr_decay=1.0, seed=0, device="cpu") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Returns (params as a numpy dict named like 'encoder.0.weight', per-step losses -IWAE_K). ``device``:
    "cpu" or "cuda" (the images stay on the host; each batch is copied over)."""
    n_batches = len(grey) // batch_size
    model, gen, step, make_batch = _torch_trainer(latent_dim, num_particles, dreg, learning_rate, lr_decay,
                                                  num_epochs * n_batches, seed, device=device)
    losses = []
    for _ in range(num_epochs):
        perm = torch.randperm(len(grey), generator=gen, device=device).cpu().numpy()
        losses += [step(make_batch(grey[perm[b * batch_size:(b + 1) * batch_size]])) for b in range(n_batches)]
    params = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    return params, torch.stack(losses).cpu().numpy()


@torch.no_grad()
def test_log_likelihood_torch(params, x_test_binary, *, latent_dim=50, num_samples=5000, chunk_size=500, seed=0,
                              image_batch=100) -> float:
    """Mean over test images of log p(x) ~= logsumexp_s log w_s - log S, z_s ~ q(z|x), S = num_samples drawn
    chunk_size at a time (running logsumexp) for image_batch images at a time. Nats; NLL = -result."""
    model, gen = torch_model(latent_dim), torch.Generator().manual_seed(seed)
    model.load_state_dict({k: torch.tensor(np.asarray(v), dtype=torch.float32) for k, v in params.items()})
    x_all, total = torch.tensor(np.asarray(x_test_binary), dtype=torch.float32), 0.0
    for x in x_all.split(image_batch):
        acc = torch.full((x.shape[0],), -math.inf)
        for s in range(0, num_samples, chunk_size):
            eps = torch.randn((min(chunk_size, num_samples - s), x.shape[0], latent_dim), generator=gen)
            acc = torch.logaddexp(acc, torch.logsumexp(_log_weights_torch(model, x, eps), 0))
        total += float((acc - math.log(num_samples)).sum())
    return total / len(x_all)


# ---------------------------------------------------------------- JAX
def jax_init(key, latent_dim: int = 50) -> dict[str, jax.Array]:
    """Same names and distribution as torch_model: weight (out, in), weight and bias ~ U(+-1/sqrt(fan_in))."""
    params = {}
    for net, sizes in (("encoder", (PIXELS, HIDDEN, HIDDEN, 2 * latent_dim)),
                       ("decoder", (latent_dim, HIDDEN, HIDDEN, PIXELS))):
        for i, d_in, d_out in zip(LAYERS, sizes[:-1], sizes[1:], strict=True):
            key, kw, kb = jax.random.split(key, 3)
            bound = 1 / math.sqrt(d_in)
            params[f"{net}.{i}.weight"] = jax.random.uniform(kw, (d_out, d_in), jnp.float32, -bound, bound)
            params[f"{net}.{i}.bias"] = jax.random.uniform(kb, (d_out,), jnp.float32, -bound, bound)
    return params


def mlp_jax(params, net, h):
    for i in LAYERS:
        h = h @ params[f"{net}.{i}.weight"].T + params[f"{net}.{i}.bias"]
        h = jnp.tanh(h) if i != LAYERS[-1] else h
    return h


def _log_weights_jax(params, x, eps, detach_q=False):
    """As _log_weights_torch: eps (K, B, L) -> log w (K, B)."""
    loc, raw = jnp.split(mlp_jax(params, "encoder", x), 2, axis=-1)
    scale = jax.nn.softplus(raw)
    z = loc + scale * eps
    logits = mlp_jax(params, "decoder", z)
    log_px = jnp.sum(x * logits - jax.nn.softplus(logits), -1)
    if detach_q:
        loc, scale = jax.lax.stop_gradient(loc), jax.lax.stop_gradient(scale)
    log_pz = jnp.sum(-0.5 * z**2 - HALF_LOG_2PI, -1)
    log_qz = jnp.sum(-0.5 * ((z - loc) / scale) ** 2 - jnp.log(scale) - HALF_LOG_2PI, -1)
    return log_px + log_pz - log_qz


def _jax_trainer(latent_dim, num_particles, dreg, learning_rate, lr_decay, num_steps, seed):
    """Returns (init state (step, opt_state, key), step(state, x) -> (state, loss), get_params)."""
    opt_init, opt_update, get_params = optimizers.adam(lambda t: learning_rate * lr_decay ** (t / num_steps),
                                                       b1=0.9, b2=0.999, eps=1e-4)

    def surrogates(params, x, eps):  # (-IWAE_K, DReG encoder surrogate); the latter is dead code unless dreg
        log_w = _log_weights_jax(params, x, eps, detach_q=dreg)
        w_tilde = jax.lax.stop_gradient(jax.nn.softmax(log_w, 0))
        loss = -jnp.mean(jax.nn.logsumexp(log_w, 0) - math.log(num_particles))
        return loss, -jnp.mean(jnp.sum(w_tilde**2 * log_w, 0))

    def step(state, x):
        t, opt_state, key = state
        key, k_eps = jax.random.split(key)
        params = get_params(opt_state)
        eps = jax.random.normal(k_eps, (num_particles, x.shape[0], latent_dim), jnp.float32)
        (loss, _), pullback = jax.vjp(lambda p: surrogates(p, x, eps), params)
        (grads,) = pullback((jnp.ones_like(loss), jnp.zeros_like(loss)))
        if dreg:  # decoder: IWAE gradient; encoder: gradient of the DReG surrogate (unused halves are DCE'd)
            (enc_grads,) = pullback((jnp.zeros_like(loss), jnp.ones_like(loss)))
            grads = {k: enc_grads[k] if k.startswith("encoder") else g for k, g in grads.items()}
        return (t + 1, opt_update(t, grads, opt_state), key), loss

    k_init, k_train = jax.random.split(jax.random.PRNGKey(seed))
    return (jnp.int32(0), opt_init(jax_init(k_init, latent_dim)), k_train), step, get_params


def jax_step_fn(latent_dim=50, num_particles=1, dreg=False, learning_rate=1e-3, seed=0):
    """Returns (run_epoch, state): ``run_epoch(state, xs) -> (state, losses)`` is one jax.jit'd lax.scan of Adam
    steps over xs, float32 (num_batches, B, 784) 0/1. To time: call once to compile, then
    ``t0 = time.perf_counter(); state, losses = run_epoch(state, xs); losses.block_until_ready()``,
    per step = elapsed / num_batches. Constant learning rate."""
    state, step, _ = _jax_trainer(latent_dim, num_particles, dreg, learning_rate, 1.0, 1, seed)
    return jax.jit(lambda state, xs: jax.lax.scan(step, state, xs)), state


def train_jax(grey: np.ndarray, *, latent_dim=50, num_particles=1, dreg=False, batch_size=20, num_epochs=1,
              learning_rate=1e-3, lr_decay=1.0, seed=0, device="cpu") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """As train_torch; each epoch (permutation, binarization, all steps) is one jitted lax.scan."""
    with jax.default_device(jax.devices({"cpu": "cpu", "cuda": "gpu"}[device])[0]):
        return _train_jax(grey, latent_dim, num_particles, dreg, batch_size, num_epochs, learning_rate, lr_decay,
                          seed)


def _train_jax(grey, latent_dim, num_particles, dreg, batch_size, num_epochs, learning_rate, lr_decay, seed):
    n_batches = len(grey) // batch_size
    state, step, get_params = _jax_trainer(latent_dim, num_particles, dreg, learning_rate, lr_decay,
                                           num_epochs * n_batches, seed)

    @jax.jit
    def epoch(state, grey):
        t, opt_state, key = state
        key, k_perm, k_bin = jax.random.split(key, 3)
        idx = jax.random.permutation(k_perm, grey.shape[0])[: n_batches * batch_size].reshape(n_batches, -1)

        def body(state, b):
            probs = grey[idx[b]].astype(jnp.float32) / 255
            return step(state, (jax.random.uniform(jax.random.fold_in(k_bin, b), probs.shape) < probs)
                        .astype(jnp.float32))
        return jax.lax.scan(body, (t, opt_state, key), jnp.arange(n_batches))

    grey, losses = jnp.asarray(grey, jnp.uint8), []
    for _ in range(num_epochs):
        state, epoch_losses = epoch(state, grey)
        losses.append(epoch_losses)
    params = {k: np.asarray(v) for k, v in get_params(state[1]).items()}
    return params, np.asarray(jnp.concatenate(losses))


@functools.partial(jax.jit, static_argnames=("n", "latent_dim"))
def _chunk_logsumexp_jax(params, x, key, acc, n, latent_dim):
    """acc <- logaddexp(acc, logsumexp over n fresh samples of log w), per image of x."""
    eps = jax.random.normal(key, (n, x.shape[0], latent_dim), jnp.float32)
    return jnp.logaddexp(acc, jax.nn.logsumexp(_log_weights_jax(params, x, eps), 0))


def test_log_likelihood_jax(params, x_test_binary, *, latent_dim=50, num_samples=5000, chunk_size=500, seed=0,
                            image_batch=100) -> float:
    """As test_log_likelihood_torch."""
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    x_all, key, total = np.asarray(x_test_binary, np.float32), jax.random.PRNGKey(seed), 0.0
    for i in range(0, len(x_all), image_batch):
        x = jnp.asarray(x_all[i:i + image_batch])
        acc = jnp.full((x.shape[0],), -jnp.inf, jnp.float32)
        for s in range(0, num_samples, chunk_size):
            key, k_eps = jax.random.split(key)
            acc = _chunk_logsumexp_jax(params, x, k_eps, acc, min(chunk_size, num_samples - s), latent_dim)
        total += float(jnp.sum(acc - math.log(num_samples)))
    return total / len(x_all)


# ---------------------------------------------------------------- smoke run
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--num-train", type=int, default=5000, help="use the first n training images")
    p.add_argument("--k", type=int, default=1, help="particles (1: VAE)")
    p.add_argument("--dreg", action="store_true")
    p.add_argument("--latent-dim", type=int, default=50)
    p.add_argument("--num-test", type=int, default=10000)
    p.add_argument("--num-samples", type=int, default=5000, help="importance samples per test image")
    args = p.parse_args()
    from ppl_models.data.mnist import load_mnist

    grey = load_mnist("train")[0][: args.num_train]
    grey_test = load_mnist("test")[0]  # binarized once, with a fixed seed
    x_test = (np.random.default_rng(0).uniform(size=grey_test.shape) < grey_test / 255)[: args.num_test]
    kw = dict(latent_dim=args.latent_dim, num_particles=args.k, dreg=args.dreg, num_epochs=args.epochs)
    for name, train, test_ll in (("torch", train_torch, test_log_likelihood_torch),
                                 ("jax", train_jax, test_log_likelihood_jax)):
        t0 = time.perf_counter()
        params, losses = train(grey, **kw)
        t_train = time.perf_counter() - t0
        ll = test_ll(params, x_test.astype(np.float32), latent_dim=args.latent_dim, num_samples=args.num_samples)
        print(f"{name}: {len(losses)} steps in {t_train:.1f} s ({1e3 * t_train / len(losses):.2f} ms/step, "
              f"compile included), loss first/last 100 = {losses[:100].mean():.1f}/{losses[-100:].mean():.1f}, "
              f"test NLL = {-ll:.2f} nats ({args.num_test} images, {args.num_samples} samples)")


if __name__ == "__main__":
    run_benchmark(main)
