"""scikit-learn's LDA, our LDA and our ProdLDA side by side, on the same corpus, vocabulary,
split and number of topics.

For each corpus, K and seed:

- ``sklearn``: ``LatentDirichletAllocation`` with online variational Bayes (Hoffman et al.
  2010), batch 128, priors alpha = beta = 1/K (its defaults), ``--sklearn-iter`` passes.
- ``lda``: ``inference.run`` SVI with the mean-field guide of ``ppl_models.lda.lda`` (same
  priors), Adam, ``--lda-steps`` steps of minibatches of ``--batch-size`` documents.
- ``prodlda``: ``inference.run`` SVI of ``ppl_models.lda.prodlda`` (alpha = 1) with the paper's
  batch normalization and dropout, Adam at ``--prodlda-lr`` with first-moment decay
  ``--prodlda-b1`` (the paper's 2e-3 and 0.99), ``--prodlda-steps`` steps of ``--prodlda-batch``
  documents; ``prodlda_plain``: the same without batch normalization and dropout;
  ``prodlda_shift``: the decoder's batch normalization with a learned shift and no scale (the
  paper's TensorFlow layer) instead of both.

All are scored alike (``inference.topic_scores``): held-out perplexity by document completion
(each LDA's topics fixed, the test document's proportions folded in from its observed half;
ProdLDA through its encoder), mean NPMI of the top 10 words over the whole kept corpus, and
the diversity of the top 25. Wall time covers fitting only. Results are appended, one row per
run, to ``--out`` (a CSV that pandas reads): a run that diverges is recorded with its error, and
a restarted benchmark skips the runs the file already holds.

    pip install -e ".[bench]"    # scikit-learn
    python -m benchmarks.topic_models --corpus reuters ap --topics 20 50 --seeds 0 1 2
    python -m benchmarks.topic_models --summary
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import time
from pathlib import Path

import numpy as np
import torch

import inference
from benchmarks.csv_rows import append_rows, backend_column
from benchmarks.entry import run_benchmark
from inference.backends import check_device
from inference.topic_scores import score as score_result
from inference.topic_scores import topic_scores
from ppl_models.data.text import load_corpus
from ppl_models.errors import TrainingError
from ppl_models.lda import metrics
from ppl_models.lda.corpus import MIN_DF, prepare_corpus
from ppl_models.lda.lda import lda_spec
from ppl_models.lda.prodlda import prodlda_spec

FIELDS = ("corpus", "topics", "seed", "method", "backend", "perplexity", "npmi", "diversity", "wall_s", "top_words",
          "error", "npmi_raw", "diversity_raw")  # *_raw: ProdLDA's topics as its raw decoder weights


DEFAULT_OUT = Path("benchmarks/topic_models_issue17.csv")


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


def fit_ours(spec, corpus, seed: int, backend: str, device: str, **options):
    result = inference.run(spec, method="svi", backend=backend, guide="spec", seed=seed, num_samples=0,
                           device=device, **options)
    scores = score_result(spec, result, corpus)
    if "decoder" in spec.networks:  # ProdLDA: also the paper's ranking of words, by raw decoder weights
        raw = score_result(spec, result, corpus, raw=True)
        scores.update(npmi_raw=raw["npmi"], diversity_raw=raw["diversity"])
    return scores, result.timing["wall"]


def fit(method: str, name: str, corpus, k: int, seed: int, args) -> tuple[dict, float, str]:
    """Scores, wall seconds and backend of one run."""
    if method == "sklearn":
        return *fit_sklearn(corpus, k, seed, args.sklearn_iter), "sklearn"
    if method == "lda":
        spec = lda_spec(corpus.train, k, name=f"{name}-lda")
        options = dict(num_steps=args.lda_steps, batch_size=args.batch_size, learning_rate=0.05)
    else:
        plain = method == "prodlda_plain"
        spec = prodlda_spec(corpus.train, k, name=f"{name}-{method}", batch_norm=not plain,
                            dropout=0.0 if plain else args.prodlda_dropout,
                            decoder_affine="shift" if method == "prodlda_shift" else True)
        b1 = {"b1": args.prodlda_b1} if args.backend == "numpyro" else {"betas": (args.prodlda_b1, 0.999)}
        options = dict(num_steps=args.prodlda_steps, batch_size=args.prodlda_batch, learning_rate=args.prodlda_lr,
                       optimizer_options=b1)
    return (*fit_ours(spec, corpus, seed, args.backend, args.device, **options),
            backend_column(args.backend, args.device))


def describe(row: dict) -> str:
    """One run's CSV row as a line to read (the CSV keeps the top words)."""
    head = f"{row['corpus']} K={row['topics']} seed {row['seed']} {row['method']} ({row['backend']}):"
    if "error" in row:
        return f"{head} {row['error']}"
    return (f"{head} perplexity {row['perplexity']:.0f}, NPMI {row['npmi']:.3f}, diversity {row['diversity']:.3f}, "
            f"{row['wall_s']:.0f} s")


def summary(path: Path) -> str:
    """A markdown table of ``path``: mean and sd over seeds per corpus, K and method."""
    import pandas as pd

    runs = pd.read_csv(path)
    rows = ["| corpus | K | method | seeds | perplexity | NPMI | diversity | wall s |",
            "|---|---|---|---|---|---|---|---|"]
    for (corpus, k, method), group in runs.groupby(["corpus", "topics", "method"], sort=False):
        g = group[group["error"].isna()] if "error" in group else group
        failed = len(group) - len(g)
        cell = {c: f"{g[c].mean():.{d}f} ± {g[c].std(ddof=1) if len(g) > 1 else 0:.{d}f}"
                for c, d in (("perplexity", 0), ("npmi", 3), ("diversity", 3), ("wall_s", 0))}
        seeds = f"{len(g)}" + (f" (+{failed} diverged)" if failed else "")
        rows.append(f"| {corpus} | {k} | {method} ({group['backend'].iloc[0]}) | {seeds} | {cell['perplexity']} "
                    f"| {cell['npmi']} | {cell['diversity']} | {cell['wall_s']} |")
    return "\n".join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", nargs="+", default=["reuters", "ap"])
    parser.add_argument("--topics", nargs="+", type=int, default=[20, 50])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=["sklearn", "lda", "prodlda"])
    parser.add_argument("--backend", default="pyro", choices=["pyro", "numpyro"])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where our LDA and ProdLDA run (scikit-learn's runs on the CPU)")
    parser.add_argument("--lda-steps", type=int, default=1000)
    parser.add_argument("--prodlda-steps", type=int, default=3000)
    parser.add_argument("--prodlda-lr", type=float, default=2e-3)
    parser.add_argument("--prodlda-b1", type=float, default=0.99, help="Adam's first-moment decay (beta1)")
    parser.add_argument("--prodlda-batch", type=int, default=32)
    parser.add_argument("--prodlda-dropout", type=float, default=0.2)
    parser.add_argument("--min-df", type=int, default=MIN_DF, help="keep the words of at least this many documents "
                        "(the vocabulary is part of a run: give a new --out when changing it)")
    parser.add_argument("--max-words", type=int, default=None, help="keep at most this many words, those in the "
                        "most documents (the ProdLDA paper's 20 Newsgroups vocabulary has 2000; again a new --out)")
    parser.add_argument("--sklearn-iter", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    # topic_models.csv: issue 4's runs (plain ProdLDA, topics as raw weights), in the columns of then
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--summary", action="store_true", help="print the table of --out and stop")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.out))
        return
    if (args.min_df != MIN_DF or args.max_words is not None) and args.out == DEFAULT_OUT:
        # the CSV does not record the vocabulary, and a restart skips the runs it holds
        parser.error(f"--min-df and --max-words change the vocabulary: give --out a file of its own, not {DEFAULT_OUT}")
    if args.device != "cpu" and args.out == DEFAULT_OUT:
        # the CSV's runs are keyed without the device, and a restart skips the runs it holds
        parser.error(f"--device {args.device}: give --out a file of its own, not {DEFAULT_OUT}")
    check_device([args.backend], args.device)
    if "sklearn" in args.methods and importlib.util.find_spec("sklearn") is None:
        parser.error("method sklearn needs scikit-learn, which is not installed: pip install -e '.[benchmarks]'")
    torch.set_num_threads(1)
    done = set()
    if args.out.exists() and args.out.stat().st_size:
        with open(args.out) as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != FIELDS:
                parser.error(f"{args.out} has the columns {reader.fieldnames}, not this benchmark's {list(FIELDS)}; "
                             "give --out a new file")
            done = {(r["corpus"], int(r["topics"]), int(r["seed"]), r["method"]) for r in reader}
    for name in args.corpus:
        corpus = prepare_corpus(load_corpus(name), min_df=args.min_df, max_words=args.max_words)
        print(corpus.describe(), flush=True)
        for k, seed, method in itertools.product(args.topics, args.seeds, args.methods):
            if (name, k, seed, method) in done:
                continue
            row = {"corpus": name, "topics": k, "seed": seed, "method": method}
            try:
                scores, wall, backend = fit(method, name, corpus, k, seed, args)
            except TrainingError as e:
                row.update(backend=args.backend, error=str(e).split(". The parameters")[0])
            else:
                row.update(backend=backend, perplexity=round(scores["perplexity"], 1),
                           npmi=round(scores["npmi"], 4), diversity=round(scores["diversity"], 3),
                           wall_s=round(wall, 1),
                           top_words=" | ".join(" ".join(t[:5]) for t in scores["top_words"]),
                           **{k: round(scores[k], 4) for k in ("npmi_raw", "diversity_raw") if k in scores})
            # one row at a time, header with the first: a run stopped before its first row leaves no file
            append_rows(args.out, FIELDS, [row])
            print(describe(row), flush=True)


if __name__ == "__main__":
    run_benchmark(main)
