"""PPCA's ground truth is right: the exact evidence and posterior satisfy Bayes' rule at any z."""
import numpy as np
from scipy import stats

import ppl_models
from ppl_models.latent_gaussian.ppca import exact_log_evidence, exact_posterior, fit_ppca


def test_candidates_formula_holds_at_random_codes():
    """log p(x) = log p(x | z) + log p(z) - log p(z | x) for any z (Besag's candidate's formula)."""
    spec = ppl_models.get_model("mnist-ppca")
    d = spec.data
    W, b, sigma2, x = d["W"], d["b"], d["sigma"] ** 2, d["x"]
    mean, cov = exact_posterior(x, W, b, sigma2)
    rng = np.random.default_rng(0)
    for n in range(3):
        for z in rng.normal(size=(2, W.shape[1])):
            log_lik = stats.norm(W @ z + b, np.sqrt(sigma2)).logpdf(x[n]).sum()
            log_prior = stats.norm().logpdf(z).sum()
            log_post = stats.multivariate_normal(mean[n], cov).logpdf(z)
            np.testing.assert_allclose(log_lik + log_prior - log_post, exact_log_evidence(x[n:n + 1], W, b, sigma2)[0],
                                       rtol=1e-9)
    np.testing.assert_allclose(spec.reference.extra["log_evidence"], exact_log_evidence(x, W, b, sigma2).sum())


def test_fit_recovers_a_known_model():
    """On data drawn from a PPCA model, the closed-form fit recovers W W^T and sigma^2."""
    rng = np.random.default_rng(1)
    W = rng.normal(size=(6, 2))
    x = rng.normal(size=(200000, 2)) @ W.T + 0.5 * rng.normal(size=(200000, 6)) + 3.0
    W_hat, b_hat, sigma2_hat = fit_ppca(x, 2)
    np.testing.assert_allclose(W_hat @ W_hat.T, W @ W.T, atol=0.05)
    np.testing.assert_allclose(b_hat, 3.0, atol=0.01)
    np.testing.assert_allclose(sigma2_hat, 0.25, rtol=0.02)
