"""Scores of fits on data they did not see, for models without a reference posterior (VAEs, topic
models, implicit models). Each model family says what its held-out data are (``ppl_models.HeldOut``):

* ``topics``: perplexity of the test documents' held-out halves (by document completion), NPMI
  coherence and topic diversity (``inference.topic_scores``);
* ``likelihood``: the negative log-likelihood per test point, log p(x) estimated by importance
  sampling with the fitted guide and networks as proposal (the estimator of the IWAE paper, Burda
  et al. 2016), with its standard error and the worst PSIS k-hat;
* ``samples``: the squared MMD (a Gaussian kernel at the median distance) between points the
  fitted generator drew and the test points;
* ``exact_likelihood``: for a model with no latent variables (MADE, a flow), the negative
  log-likelihood per test point computed exactly at the fitted parameters: nothing is sampled, so the
  estimator's standard error ``heldout_nll_se`` is 0. ``heldout_nll_test_se`` is the spread over the
  test points, sd / sqrt(n): how far the mean over this test set may lie from the expectation over
  test sets (the cross-entropy).
"""
from __future__ import annotations

import numpy as np

from inference.api import run
from inference.discrepancies import median_bandwidth, mmd2
from inference.result import InferenceResult
from inference.topic_scores import score as topic_scores

NUM_IS_SAMPLES = 100  # proposal draws per test point
NUM_MMD_POINTS = 2000  # points of each side in the MMD


def held_out_scores(spec, result: InferenceResult, seed: int = 0) -> dict[str, float]:
    """The held-out scores of ``result``, a fit of ``spec``, on ``spec.held_out``."""
    held = spec.held_out
    if held is None:
        raise ValueError(f"model {spec.name!r} holds no data out to score fits on")
    if held.kind == "topics":
        scores = topic_scores(spec, result, held.data)
        return {k: float(scores[k]) for k in ("perplexity", "npmi", "diversity")}
    if held.kind == "likelihood":
        return _held_out_likelihood(held.data(), result, seed)
    if held.kind == "exact_likelihood":
        return held_out_exact_likelihood(held.data(), result)
    return _held_out_mmd(spec, result, np.asarray(held.data))


def _held_out_likelihood(test, result: InferenceResult, seed: int) -> dict[str, float]:
    estimate = run(test, method="is", backend=result.backend, seed=seed, params=result.params or None,
                   num_samples=NUM_IS_SAMPLES, device=result.info.get("device", "cpu"))
    num_points = estimate.diagnostics["log_evidence_per_point"].size
    return {"heldout_nll": -estimate.log_evidence / num_points,
            "heldout_nll_se": estimate.log_evidence_se / num_points,
            "heldout_max_khat": float(np.max(estimate.diagnostics["khat"]))}


def held_out_exact_likelihood(test, result: InferenceResult, chunk_size: int = 1000) -> dict[str, float]:
    """The exact held-out NLL per point of ``result`` (a fit of a model without latents) on the spec ``test``."""
    from ppl_models.spec import resolve_function

    log_likelihood = resolve_function(f"inference.backends.{result.backend}_likelihood:log_likelihood")
    per_point = log_likelihood(test, result.params or {}, device=result.info.get("device", "cpu"),
                               dtype=result.info.get("dtype"), chunk_size=chunk_size)
    return {"heldout_nll": float(-per_point.mean()), "heldout_nll_se": 0.0,
            "heldout_nll_test_se": float(per_point.std(ddof=1) / np.sqrt(per_point.size)) if per_point.size > 1
            else float("nan")}


def _held_out_mmd(spec, result: InferenceResult, test: np.ndarray) -> dict[str, float]:
    generated = next((v for k, v in (result.posterior_predictive or {}).items() if k in spec.data), None)
    if generated is None:
        raise ValueError(f"the {result.method} result of {result.model!r} holds no generated points (num_samples=0?) "
                         "to compare with the held-out data")
    generated = np.asarray(generated, dtype=np.float64).reshape(-1, test.shape[-1])[:NUM_MMD_POINTS]
    test = test.astype(np.float64)[:NUM_MMD_POINTS]
    bandwidth = median_bandwidth(generated, test, np)
    return {"heldout_mmd2": float(mmd2(generated, test, np, bandwidths=(bandwidth,)))}
