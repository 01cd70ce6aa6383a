"""``inference.chain_stats`` (R-hat, ESS and MCSE of many scalars at once) against ArviZ's own, one
scalar at a time, to 1e-9 relative: AR(1) chains from independent to strongly autocorrelated (the
Geyer sequence then stops late, or at the cut), anticorrelated chains with shifted means (R-hat
well above 1), odd draw counts (the split leaves the middle draw out), a single chain, rare binary
indicators (ties in the ranks), and very short chains."""
import numpy as np
import pytest

from inference import arviz_compat, chain_stats
from inference.diagnostics import summarize

rng = np.random.default_rng(1)


def ar1(phi: float, shape: tuple, shift: float = 0.0) -> np.ndarray:
    x, noise = np.zeros(shape), rng.normal(size=shape)
    for t in range(1, shape[2]):
        x[:, :, t] = phi * x[:, :, t - 1] + noise[:, :, t]
    return x + shift * np.arange(shape[1])[None, :, None]


CASES = {
    "autocorrelated": ar1(0.9, (6, 4, 501)),
    "independent": ar1(0.0, (3, 4, 100)),
    "near a random walk": ar1(0.99, (3, 2, 50)),
    "one chain": rng.normal(size=(2, 1, 1000)),
    "anticorrelated, chains apart": ar1(-0.5, (3, 4, 200), shift=0.3),
    "rare indicators": (rng.random((3, 4, 300)) < 0.02).astype(float),
    "seven draws": ar1(0.5, (2, 4, 7)),
}
STATS = {
    "ess_bulk": (chain_stats.ess_bulk, lambda v: arviz_compat.ess(v, "bulk")),
    "ess_tail": (chain_stats.ess_tail, lambda v: arviz_compat.ess(v, "tail")),
    "ess_mean": (chain_stats.ess_mean, lambda v: arviz_compat.ess(v, "mean")),
    "r_hat": (chain_stats.rhat, arviz_compat.rhat),
    "mcse_mean": (chain_stats.mcse_mean, lambda v: arviz_compat.mcse(v, "mean")),
    "mcse_sd": (chain_stats.mcse_sd, lambda v: arviz_compat.mcse(v, "sd")),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stat", STATS)
def test_matches_arviz_scalar_by_scalar(case, stat):
    x = CASES[case]
    if stat == "r_hat" and x.shape[1] < 2:
        pytest.skip("R-hat needs two chains")
    if stat == "mcse_sd" and arviz_compat.MODERN:
        pytest.skip("ArviZ 1.x estimates the sd's MCSE another way; ours is ArviZ 0.x's")
    ours, theirs = STATS[stat]
    np.testing.assert_allclose(ours(x), [theirs(v) for v in x], rtol=1e-9)


def test_the_statistics_see_what_they_should():
    """Not only equal to ArviZ: chains stuck apart get R-hat far above 1.01, independent draws an ESS
    near their number, and an AR(1) chain with phi = 0.9 about (1 - phi) / (1 + phi) of it."""
    apart = ar1(0.0, (1, 4, 1000), shift=3.0)
    assert chain_stats.rhat(apart)[0] > 1.5
    independent = rng.normal(size=(1, 4, 2000))
    assert 0.9 < chain_stats.ess_bulk(independent)[0] / 8000 < 1.1
    sticky = ar1(0.9, (1, 4, 5000))
    assert 0.6 < chain_stats.ess_mean(sticky)[0] / (20000 * 0.1 / 1.9) < 1.4


def test_summarize_names_every_scalar_and_leaves_undefined_ones_nan():
    samples = {"mu": rng.normal(size=(4, 100)), "theta": rng.normal(size=(4, 100, 2, 3)), "c": np.ones((4, 100))}
    table = summarize(samples)
    assert list(table.index) == ["mu", *(f"theta[{i},{j}]" for i in range(2) for j in range(3)), "c"]
    np.testing.assert_allclose(table.loc["theta[1,2]", "ess_bulk"], arviz_compat.ess(samples["theta"][:, :, 1, 2]))
    assert table.loc["c", ["mcse_mean", "ess_bulk", "r_hat"]].isna().all() and table.loc["c", "mean"] == 1.0
