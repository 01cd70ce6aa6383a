"""scikit-learn's LDA, our LDA and our ProdLDA side by side, on the same corpus, vocabulary,
split and number of topics.

For each corpus, K and seed:

- ``sklearn``: ``LatentDirichletAllocation`` with online variational Bayes (Hoffman et al.
  2010), batch 128, priors alpha = beta = 1/K (its defaults), ``--sklearn-iter`` passes.
- ``lda``: ``inference.run`` SVI with the mean-field guide of ``ppl_models.lda.lda`` (same
  priors), Adam, ``--lda-steps`` steps of minibatches of ``--batch-size`` documents.
- ``prodlda``: ``inference.run`` SVI of ``ppl_models.lda.prodlda`` (alpha = 1), Adam at 2e-3,
  ``--prodlda-steps`` steps of 32 documents.

All are scored alike (``inference.topic_scores``): held-out perplexity by document completion
(each LDA's topics fixed, the test document's proportions folded in from its observed half;
ProdLDA through its encoder), mean NPMI of the top 10 words over the whole kept corpus, and
the diversity of the top 25. Wall time covers fitting only. Results are appended, one row per
run, to ``--out`` (a CSV that pandas reads), so an interrupted run keeps what it finished.

    python -m benchmarks.topic_models --corpus reuters ap --topics 20 50 --seeds 0 1 2
    python -m benchmarks.topic_models --summary
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

import inference
from inference.topic_scores import score as score_result
from inference.topic_scores import topic_scores
from ppl_models.data.text import load_corpus
from ppl_models.lda import metrics
from ppl_models.lda.corpus import prepare_corpus
from ppl_models.lda.lda import lda_spec
from ppl_models.lda.prodlda import prodlda_spec

FIELDS = ("corpus", "topics", "seed", "method", "backend", "perplexity", "npmi", "diversity", "wall_s", "top_words")


def fit_sklearn(corpus, k: int, seed: int, passes: int):
    from sklearn.decomposition import LatentDirichletAllocation

    t0 = time.perf_counter()
    lda = LatentDirichletAllocation(k, learning_method="online", batch_size=128, max_iter=passes,
                                    doc_topic_prior=1.0 / k, topic_word_prior=1.0 / k, random_state=seed)
    lda.fit(corpus.train)
    wall = time.perf_counter() - t0
    phi = lda.components_ / lda.components_.sum(axis=1, keepdims=True)
    probs = metrics.fold_in(phi, np.full(k, 1.0 / k), corpus.test_observed) @ phi
    return topic_scores(phi, probs, corpus), wall


def fit_ours(spec, corpus, seed: int, backend: str, **options):
    result = inference.run(spec, method="svi", backend=backend, guide="spec", seed=seed, num_samples=0, **options)
    return score_result(spec, result, corpus), result.timing["wall"]


def summary(path: Path) -> str:
    """A markdown table of ``path``: mean and sd over seeds per corpus, K and method."""
    import pandas as pd

    runs = pd.read_csv(path)
    rows = ["| corpus | K | method | seeds | perplexity | NPMI | diversity | wall s |",
            "|---|---|---|---|---|---|---|---|"]
    for (corpus, k, method), g in runs.groupby(["corpus", "topics", "method"], sort=False):
        cell = {c: f"{g[c].mean():.{d}f} ± {g[c].std(ddof=1) if len(g) > 1 else 0:.{d}f}"
                for c, d in (("perplexity", 0), ("npmi", 3), ("diversity", 3), ("wall_s", 0))}
        rows.append(f"| {corpus} | {k} | {method} ({g['backend'].iloc[0]}) | {len(g)} | {cell['perplexity']} "
                    f"| {cell['npmi']} | {cell['diversity']} | {cell['wall_s']} |")
    return "\n".join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", nargs="+", default=["reuters", "ap"])
    parser.add_argument("--topics", nargs="+", type=int, default=[20, 50])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=["sklearn", "lda", "prodlda"])
    parser.add_argument("--backend", default="pyro", choices=["pyro", "numpyro"])
    parser.add_argument("--lda-steps", type=int, default=1000)
    parser.add_argument("--prodlda-steps", type=int, default=3000)
    parser.add_argument("--sklearn-iter", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/topic_models.csv"))
    parser.add_argument("--summary", action="store_true", help="print the table of --out and stop")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.out))
        return
    torch.set_num_threads(1)
    new = not args.out.exists()
    with open(args.out, "a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if new:
            writer.writeheader()
        for name in args.corpus:
            corpus = prepare_corpus(load_corpus(name))
            print(corpus.describe(), flush=True)
            for k in args.topics:
                for seed in args.seeds:
                    for method in args.methods:
                        if method == "sklearn":
                            scores, wall = fit_sklearn(corpus, k, seed, args.sklearn_iter)
                            backend = "sklearn"
                        elif method == "lda":
                            spec = lda_spec(corpus.train, k, name=f"{name}-lda")
                            scores, wall = fit_ours(spec, corpus, seed, args.backend, num_steps=args.lda_steps,
                                                    batch_size=args.batch_size, learning_rate=0.05)
                            backend = args.backend
                        else:
                            spec = prodlda_spec(corpus.train, k, name=f"{name}-prodlda")
                            scores, wall = fit_ours(spec, corpus, seed, args.backend, num_steps=args.prodlda_steps,
                                                    batch_size=32, learning_rate=2e-3)
                            backend = args.backend
                        row = {"corpus": name, "topics": k, "seed": seed, "method": method, "backend": backend,
                               "perplexity": round(scores["perplexity"], 1), "npmi": round(scores["npmi"], 4),
                               "diversity": round(scores["diversity"], 3), "wall_s": round(wall, 1),
                               "top_words": " | ".join(" ".join(t[:5]) for t in scores["top_words"][:5])}
                        writer.writerow(row)
                        f.flush()
                        print(row, flush=True)


if __name__ == "__main__":
    main()
