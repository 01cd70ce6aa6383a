"""LDA and ProdLDA: the distributions they need on each backend, topic metrics, recovery of known
topics, NUTS on posteriordb's ldaK5, and held-out scoring through fitted networks."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest
import scipy.stats
import torch

import inference
from inference.topic_scores import lda_topics, predict_heldout
from ppl_models import get_model
from ppl_models.data.text import load_corpus
from ppl_models.errors import DataError, TrainingError
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.jax_dirichlet import standard_gamma, standard_gamma_grad
from ppl_models.lda import metrics
from ppl_models.lda.corpus import prepare_corpus
from ppl_models.lda.lda import lda_spec
from ppl_models.lda.synthetic import simulate_corpus
from ppl_models.spec import Minibatch, ModelSpec
from ppl_models.torch_multinomial import Multinomial


def test_pyro_multinomial_takes_one_total_per_row():
    probs = np.array([[1e-20, 1 - 1e-20, 0.0], [0.6, 0.3, 0.1]])
    totals, value = np.array([3.0, 7.0]), np.array([[2.0, 1.0, 0.0], [4.0, 2.0, 1.0]])
    d = Multinomial(torch.tensor(totals), probs=torch.tensor(probs))
    with jax.enable_x64(True):
        want = nd.Multinomial(jnp.asarray(totals), probs=jnp.asarray(probs)).log_prob(jnp.asarray(value))
    np.testing.assert_allclose(d.log_prob(torch.tensor(value)).numpy(), np.asarray(want), rtol=1e-12)
    draws = d.sample((20000,)).numpy()
    np.testing.assert_array_equal(draws.sum(-1), np.broadcast_to(totals, draws.shape[:-1]))
    mean, se = draws.mean(0), draws.std(0) / np.sqrt(len(draws)) + 1e-12
    assert (np.abs(mean - totals[:, None] * probs) < 4 * se + 1e-9).all()


@pytest.mark.parametrize("alpha", [0.05, 0.5, 1.0, 3.0, 50.0])
def test_lockstep_gamma_sampler_draws_the_gamma_distribution(alpha):
    """Kolmogorov-Smirnov against the exact CDF, 20000 draws (fixed seed); mean within 4 SE."""
    with jax.enable_x64(True):
        x = np.asarray(standard_gamma(jax.random.PRNGKey(3), jnp.full(20000, alpha)))
    assert scipy.stats.kstest(x, scipy.stats.gamma(alpha).cdf).pvalue > 1e-3
    assert abs(x.mean() - alpha) < 4 * np.sqrt(alpha / x.size)


def test_pyro_multinomial_checks_logits_not_rounded_probabilities():
    """PyTorch's Multinomial given float32 logits over 9172 words checks softmax(logits) against the
    simplex to 1e-6 and refuses some for rounding alone (AP's ProdLDA stopped at step 1104 so);
    this one checks the logits. If PyTorch stops refusing them, the workaround can go."""
    import pyro.distributions as pd

    refused = 0
    for seed in range(20):
        logits = 3 * torch.randn(32, 9172, generator=torch.Generator().manual_seed(seed))
        Multinomial(torch.full((32,), 100.0), logits=logits)  # never raises
        try:
            pd.Multinomial(100, logits=logits)
        except ValueError:
            refused += 1
    assert refused > 0
    with pytest.raises(ValueError, match="logits"):
        Multinomial(torch.full((1,), 3.0), logits=torch.tensor([[0.0, float("nan")]]))


def test_cheap_gamma_gradient_matches_jax_exact_implicit_gradient():
    with jax.enable_x64(True):
        for alpha in [0.05, 0.3, 1.0, 2.5, 7.9, 8.1, 20.0, 100.0]:
            keys = jax.random.split(jax.random.PRNGKey(0), 100)
            exact = jax.vmap(lambda k, a=alpha: jax.grad(lambda a: jax.random.gamma(k, a))(a))(keys)
            x = jax.vmap(lambda k, a=alpha: jax.random.gamma(k, a))(keys)
            approx = standard_gamma_grad(jnp.full_like(x, alpha), x)
            # PyTorch's approximation is accurate to about 1e-3 relative
            np.testing.assert_allclose(approx, exact, rtol=2e-3, atol=1e-300)


def test_npmi_coherence_diversity_and_perplexity_by_hand():
    counts = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]])
    topics = np.array([[0.5, 0.4, 0.1, 0.0], [0.0, 0.1, 0.3, 0.6]])
    # topic 0, words 0 and 1: p0 = 3/4, p1 = 2/4, p01 = 2/4
    want0 = np.log(0.5 / (0.75 * 0.5)) / -np.log(0.5)
    # topic 1, words 3 and 2: never together
    np.testing.assert_allclose(metrics.npmi_coherence(topics, counts, n=2), [want0, -1.0])
    assert metrics.topic_diversity(topics, n=2) == 1.0
    assert metrics.topic_diversity(np.array([[3, 2, 1, 0], [3, 2, 0, 1]]), n=2) == 0.5
    heldout = np.array([[3, 0, 1, 0]])
    assert metrics.perplexity(np.full((1, 4), 0.25), heldout) == pytest.approx(4.0)


def test_fold_in_recovers_topic_proportions():
    """Topics with disjoint words: folding in is counting, so the error is multinomial noise."""
    phi = np.kron(np.eye(3), np.full(5, 0.2))
    rng = np.random.default_rng(0)
    theta = rng.dirichlet(np.ones(3), size=20)
    n = 2000
    counts = np.array([rng.multinomial(n, t @ phi) for t in theta])
    got = metrics.fold_in(phi, np.full(3, 0.1), counts)
    se = np.sqrt(theta * (1 - theta) / n)
    assert (np.abs(got - theta) < 4 * se + 1e-3).all()


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(42)
    topics = rng.dirichlet(np.full(40, 0.1), size=4)
    return simulate_corpus(300, 60, topics, alpha=0.5, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("backend, method, guide", [("pyro", "svi", "meanfield"), ("numpyro", "svi", "meanfield"),
                                                    ("numpyro", "svi", "amortized"), ("numpyro", "nuts", None)])
def test_fitted_topics_recover_the_true_ones(synthetic, backend, method, guide):
    """Hungarian-matched total-variation distance to the true topics: within 2.5 times that of the
    oracle that sees every word's topic (0.017 here; the posterior's own spread adds the rest)."""
    corpus = synthetic
    spec = lda_spec(corpus.counts, 4, name="synthetic-lda", alpha=np.full(4, 0.5), beta=np.full(40, 0.1),
                    guide=guide or "meanfield")
    # a constant step size (lr_decay=1.0), the schedule the bound was set with; the default decays 100-fold
    options = (dict(guide="spec", num_steps=1000, learning_rate=0.05, lr_decay=1.0, num_samples=0) if method == "svi"
               else dict(num_warmup=200, num_samples=200, num_chains=1))
    result = inference.run(spec, method=method, backend=backend, seed=0, **options)
    _, oracle = metrics.match_topics(corpus.oracle_topics(), corpus.topics)
    _, tv = metrics.match_topics(lda_topics(spec, result), corpus.topics)
    assert tv.mean() < 2.5 * oracle.mean(), (tv, oracle)
    # an unfitted guide (uniform-ish topics) is far off: the check can fail
    _, start = metrics.match_topics(np.full_like(corpus.topics, 1 / 40), corpus.topics)
    assert start.mean() > 5 * oracle.mean()


@pytest.mark.slow
def test_nuts_runs_on_prideprejudice_and_beats_the_unigram_model():
    """posteriordb ldaK5 (61 chapters, 1495 words, K = 5) under NumPyro NUTS: per-token
    log-likelihood at the posterior mean of one chain above the unigram model's."""
    spec = get_model("prideprejudice_chapter-ldaK5")
    result = inference.run(spec, method="nuts", backend="numpyro", num_warmup=150, num_samples=100, num_chains=1,
                           max_tree_depth=6)
    counts = spec.data["counts"]
    phi, theta = lda_topics(spec, result), result.samples["theta"][0].mean(axis=0)
    assert np.allclose(phi.sum(1), 1) and np.allclose(theta.sum(1), 1)
    lda_loglik = np.sum(counts * np.log(theta @ phi)) / counts.sum()
    unigram = counts.sum(0) / counts.sum()
    unigram_loglik = np.sum(counts * np.log(np.maximum(unigram, 1e-300))) / counts.sum()
    assert lda_loglik > unigram_loglik + 0.05, (lda_loglik, unigram_loglik)


def _local_means(x, num_data):
    """z_n ~ Normal(0, 1), x_n ~ Normal(z_n, 1): the posterior mean of z_n is x_n / 2."""
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=x)


def _local_means_guide(x, num_data):
    loc = pyro.param("loc", np.zeros(num_data))
    with pyro.plate("data", num_data, subsample_size=x.shape[0]) as idx:
        pyro.sample("z", dist.Normal(loc[idx], 0.7071))


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_minibatches_hand_their_indices_to_a_guide_with_a_parameter_per_point(backend):
    x = np.random.default_rng(0).normal(0.0, 1.5, size=40)
    spec = ModelSpec("test-local-means", {"x": x, "num_data": 40}, model=for_backends(_local_means),
                     guide=for_backends(_local_means_guide), minibatch=Minibatch(keys=("x",)))
    result = inference.run(spec, method="svi", backend=backend, guide="spec", batch_size=10, num_steps=3000,
                           learning_rate=0.05, lr_decay=0.01, num_particles=4)
    # each point's loc is trained 750 times on its own x, with a decaying step size: about 0.04 off
    # at most (full-batch training too); with indices that do not match the batch, about |x| / 2
    np.testing.assert_allclose(result.params["loc"], x / 2, atol=0.1)


@pytest.fixture(scope="module")
def reuters():
    return prepare_corpus(load_corpus("reuters"))


def test_prodlda_training_improves_held_out_perplexity_and_scores_alike_on_both_backends(reuters):
    spec = get_model("reuters-prodlda")
    short = inference.run(spec, method="svi", backend="pyro", guide="spec", num_steps=1, batch_size=32,
                          learning_rate=2e-3, num_samples=0)
    trained = inference.run(spec, method="svi", backend="pyro", guide="spec", num_steps=800, batch_size=32,
                            learning_rate=2e-3, num_samples=0)
    before = metrics.perplexity(predict_heldout(spec, short, reuters.test_observed), reuters.test_heldout)
    after = metrics.perplexity(predict_heldout(spec, trained, reuters.test_observed), reuters.test_heldout)
    assert after < 0.8 * before, (before, after)
    as_numpyro = dataclasses.replace(trained, backend="numpyro")
    np.testing.assert_allclose(predict_heldout(spec, as_numpyro, reuters.test_observed),
                               predict_heldout(spec, trained, reuters.test_observed), rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_a_batch_smaller_than_the_number_of_topics_is_refused(backend):
    """Pyro reports it as the cause of a failed first step, NumPyro when it first traces the batch."""
    spec = get_model("reuters-lda")
    with pytest.raises((ValueError, TrainingError), match="batch of 8; use a batch_size of at least 20"):
        inference.run(spec, method="svi", backend=backend, guide="spec", batch_size=8, num_steps=1)


def test_counts_that_are_not_integers_are_refused():
    with pytest.raises(DataError, match=r"data\['counts'\].*non-negative integers"):
        lda_spec(np.array([[1.5, 2.0], [1.0, 0.0]]), 2, name="toy-lda")


def test_results_of_minibatched_models_leave_the_data_set_out():
    # learning_rate: ProdLDA's networks take a NaN step at the default 0.1
    result = inference.run("reuters-prodlda", method="svi", backend="numpyro", guide="spec", batch_size=32,
                           num_steps=2, learning_rate=0.01, num_samples=0)
    assert "counts" not in result.observed_data
    assert result.info["observed_data_left_out"] == ["counts"]
