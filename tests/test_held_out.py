"""Scores on held-out data, for models without a reference posterior, each against a ground truth:
the held-out likelihood against exact evidence, the held-out MMD against its spread between draws
of the true distribution. And compare() and its report on such a model."""
import numpy as np
import pytest
from scipy import stats

import inference
import ppl_models
from inference.held_out import NUM_MMD_POINTS, held_out_scores
from inference.result import InferenceResult
from ppl_models import HeldOut, ModelSpec
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.implicit.generators import RING


def local_normal(N, x=None):
    """z_n ~ Normal(0, 1), x_n | z_n ~ Normal(z_n, 1): marginally x_n ~ Normal(0, 2), exactly."""
    with pyro.plate("data", N):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=x)


def _local_normal_spec(name: str, num_points: int, seed: int, **kwargs) -> ModelSpec:
    x = np.random.default_rng(seed).normal(0.0, np.sqrt(2.0), num_points)
    return ModelSpec(name, {"x": x, "N": num_points}, model=for_backends(local_normal), **kwargs)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_compare_scores_a_model_without_reference_by_its_exact_held_out_likelihood(backend, tmp_path):
    test = _local_normal_spec("test-local_normal_test", 300, seed=1)
    train = _local_normal_spec("test-local_normal", 50, seed=0, held_out=HeldOut("likelihood", lambda: test))
    table = inference.compare(train, [(backend, "is", dict(num_samples=200))], report=tmp_path)
    row = table.iloc[0]
    exact = -stats.norm(0.0, np.sqrt(2.0)).logpdf(test.data["x"]).mean()
    assert abs(row["heldout_nll"] - exact) < 4 * row["heldout_nll_se"], (row["heldout_nll"], exact)
    assert 0 < row["heldout_nll_se"] < 0.01 and np.isfinite(row["heldout_max_khat"])
    assert "max_abs_z_mean" not in table  # nothing to score against a reference that does not exist
    page = (tmp_path / "report.html").read_text()
    assert "on held-out data" in page and "heldout_nll" in page and "forest plot" not in page


def test_held_out_mmd_is_within_its_spread_for_the_true_distribution_and_far_above_it_otherwise():
    spec = ppl_models.get_model("ring8-implicit")
    test = np.asarray(spec.held_out.data)
    seen = set(map(tuple, spec.data["x"].tolist()))
    assert spec.held_out.kind == "samples" and not any(tuple(t) in seen for t in test.tolist())  # unseen draws

    def scored(points):
        result = InferenceResult(model=spec.name, backend="numpyro", method="mmd", samples={},
                                 posterior_predictive={"x": points[None]})
        return held_out_scores(spec, result)["heldout_mmd2"]

    # the estimate's distribution over draws of the true distribution, against the same test points
    null = np.array([scored(RING.sample(NUM_MMD_POINTS, seed)) for seed in range(10, 30)])
    mean, sd = null.mean(), null.std(ddof=1)
    # near 0 (the fixed test points shift it by about one sd), and a new true draw within 4 sd of it
    assert abs(mean) < 4 * sd and abs(scored(RING.sample(NUM_MMD_POINTS, 99)) - mean) < 4 * sd
    # a generator collapsed onto half of the modes
    points = RING.sample(4 * NUM_MMD_POINTS, 99)
    mode = np.argmin(((points[:, None] - RING.means[None]) ** 2).sum(-1), axis=1)
    assert scored(points[mode < 4][:NUM_MMD_POINTS]) > mean + 100 * sd


def test_a_model_with_neither_reference_nor_held_out_data_cannot_be_compared():
    spec = _local_normal_spec("test-local_normal", 50, seed=0)
    with pytest.raises(ValueError, match="neither a reference posterior nor held-out data"):
        inference.compare(spec, [("numpyro", "is", {})])
