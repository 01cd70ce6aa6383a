"""The check every sampler's test makes against a reference posterior (posteriordb's draws or an
exact posterior): each mean within 4 sqrt(mcse^2 + mcse_ref^2) of the reference mean, each sd
within 4 sqrt(mcse_sd^2 + mcse_sd_ref^2) of the reference sd, the MCSEs from ArviZ."""
from inference.diagnostics import reference_summary, score


def assert_matches_reference(result, reference):
    scores = score(result.samples, reference)
    assert list(scores.index) == list(reference_summary(reference).index)  # every reference parameter is scored
    assert scores["mean_ok"].all(), f"means off by more than 4 MCSE:\n{scores[~scores['mean_ok']]}"
    assert scores["sd_ok"].all(), f"sds off by more than 4 MCSE:\n{scores[~scores['sd_ok']]}"
