"""Step time of LDA's SVI through the layer against the same model written by hand in raw
Pyro and raw NumPyro, in one process.

LDA (``ppl_models.lda.lda``) with K topics on the Reuters training documents, the mean-field
guide, minibatches of ``--batch`` documents, Adam. Trainers take turns, round after round:

- NumPyro through the layer: ``numpyro_svi.prepare`` and ``MinibatchLoop`` (one compiled scan per
  chunk of steps, batches gathered inside), the loop ``inference.run`` runs;
- raw NumPyro: model and guide written with ``numpyro`` directly, ``SVI.update`` in a jitted
  ``lax.scan`` over pre-gathered batches; once with NumPyro's own ``Dirichlet`` (JAX's Gamma
  sampler, element by element, and its exact, slow, implicit derivative), once with the layer's
  ``ppl_models.jax_dirichlet.Dirichlet`` (lockstep sampler, PyTorch's closed-form derivative),
  which isolates the layer's own overhead;
- Pyro through the layer: ``pyro_svi.prepare`` and ``train`` (NaN guard and parameter snapshot included);
- raw Pyro: model and guide written with ``pyro`` directly (PyTorch's Multinomial with
  ``validate_args=False``, which ignores the total count in ``log_prob``), ``SVI.step`` in a loop.

Each round times ``--steps`` steps of each after a warm-up (compilation excluded); reported are
the median ms per step and the median per-round ratio layer / raw. torch runs on one thread.

    python -m benchmarks.lda_step_time --rounds 5 --steps 100 --topics 20
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
import pyro
import pyro.distributions as pd
import torch
from numpyro.infer import SVI as NumPyroSVI
from numpyro.infer import Trace_ELBO as NumPyroTraceELBO
from numpyro.optim import Adam as NumPyroAdam

from benchmarks.entry import run_benchmark
from benchmarks.vae_step_time import numpyro_layer, pyro_layer, timed
from inference.options import resolve_options
from ppl_models.data.text import load_corpus
from ppl_models.jax_dirichlet import Dirichlet as CheapDirichlet
from ppl_models.lda.corpus import prepare_corpus
from ppl_models.lda.lda import lda_spec

LR = 0.05


def layer_steps(spec, backend: str, batch: int):
    opts = resolve_options("svi", backend, dict(guide="spec", batch_size=batch, learning_rate=LR, lr_decay=1.0))
    return (numpyro_layer if backend == "numpyro" else pyro_layer)(spec, opts, "float64")


def raw_numpyro_steps(counts: np.ndarray, k: int, batch: int, dirichlet):
    num_docs, vocab = counts.shape
    alpha, beta = jnp.full(k, 1.0 / k), jnp.full(vocab, 1.0 / k)

    def model(x, idx):
        with numpyro.plate("topics", k):
            phi = numpyro.sample("phi", dirichlet(beta))
        with numpyro.plate("documents", num_docs, subsample_size=batch):
            theta = numpyro.sample("theta", dirichlet(alpha))
            numpyro.sample("counts", nd.Multinomial(x.sum(-1), probs=theta @ phi), obs=x)

    def guide(x, idx):
        c = numpyro.param("topic_word_counts", 1.0 + x[:k], constraint=nd.constraints.positive)
        m = numpyro.param("doc_topic_counts", jnp.ones((num_docs, k)), constraint=nd.constraints.positive)
        with numpyro.plate("topics", k):
            numpyro.sample("phi", dirichlet(beta + c))
        with numpyro.plate("documents", num_docs, subsample_size=batch):
            numpyro.sample("theta", dirichlet(alpha + m[idx]))

    with jax.enable_x64(True):
        data = jnp.asarray(counts, dtype=jnp.float64)
        svi = NumPyroSVI(model, guide, NumPyroAdam(LR), NumPyroTraceELBO())
        state = svi.init(jax.random.PRNGKey(0), data[:batch], jnp.arange(batch))

        @jax.jit
        def run(state, idx):
            return jax.lax.scan(lambda s, i: svi.update(s, data[i], i), state, idx)

    rng = np.random.default_rng(0)

    def steps(n: int) -> None:
        nonlocal state
        with jax.enable_x64(True):
            idx = jnp.asarray(np.stack([rng.permutation(num_docs)[:batch] for _ in range(n)]))
            state, losses = run(state, idx)
            losses.block_until_ready()
    return steps


def raw_pyro_steps(counts: np.ndarray, k: int, batch: int):
    num_docs, vocab = counts.shape
    data = torch.as_tensor(counts, dtype=torch.float64)
    alpha, beta = torch.full((k,), 1.0 / k, dtype=torch.float64), torch.full((vocab,), 1.0 / k, dtype=torch.float64)

    def model(x, idx):
        with pyro.plate("topics", k):
            phi = pyro.sample("phi", pd.Dirichlet(beta))
        with pyro.plate("documents", num_docs, subsample=idx):
            theta = pyro.sample("theta", pd.Dirichlet(alpha))
            pyro.sample("counts", pd.Multinomial(probs=theta @ phi, validate_args=False), obs=x)

    def guide(x, idx):
        c = pyro.param("topic_word_counts", lambda: 1.0 + x[:k], constraint=pd.constraints.positive)
        m = pyro.param("doc_topic_counts", lambda: torch.ones(num_docs, k, dtype=torch.float64),
                       constraint=pd.constraints.positive)
        with pyro.plate("topics", k):
            pyro.sample("phi", pd.Dirichlet(beta + c))
        with pyro.plate("documents", num_docs, subsample=idx):
            pyro.sample("theta", pd.Dirichlet(alpha + m[idx]))

    store = pyro.get_param_store()
    with store.scope() as state:
        svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": LR}), pyro.infer.Trace_ELBO())
    rng = np.random.default_rng(0)

    def steps(n: int) -> None:
        nonlocal state
        with store.scope(state) as state:
            for _ in range(n):
                idx = torch.as_tensor(rng.permutation(num_docs)[:batch])
                svi.step(data[idx], idx)
    return steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    corpus = prepare_corpus(load_corpus("reuters"))
    spec = lda_spec(corpus.train, args.topics, name="reuters-lda")
    trainers = {"numpyro": layer_steps(spec, "numpyro", args.batch),
                "raw numpyro": raw_numpyro_steps(corpus.train, args.topics, args.batch, nd.Dirichlet),
                "raw numpyro, layer's Dirichlet": raw_numpyro_steps(corpus.train, args.topics, args.batch,
                                                                  CheapDirichlet),
                "pyro": layer_steps(spec, "pyro", args.batch),
                "raw pyro": raw_pyro_steps(corpus.train, args.topics, args.batch)}
    for steps in trainers.values():  # warm-up: compilation, first allocations
        timed(steps, max(5, args.steps // 10))
    times = {name: [] for name in trainers}
    for _ in range(args.rounds):
        for name, steps in trainers.items():
            times[name].append(timed(steps, args.steps))
    t = {name: np.array(v) * 1e3 for name, v in times.items()}
    print(f"# torch {torch.__version__} (1 thread), jax {jax.__version__}; reuters, K={args.topics}, "
          f"batch {args.batch}, {args.rounds} rounds x {args.steps} steps, float64")
    print("| trainer | ms per step | layer / raw (median of rounds) |")
    print("|---|---|---|")
    ratios = {"raw numpyro": "numpyro", "raw numpyro, layer's Dirichlet": "numpyro", "raw pyro": "pyro"}
    for name, v in t.items():
        ratio = f"{np.median(t[ratios[name]] / v):.2f}" if name in ratios else ""
        print(f"| {name} | {np.median(v):.1f} | {ratio} |")


if __name__ == "__main__":
    run_benchmark(main)
