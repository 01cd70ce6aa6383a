"""Linear regressions from posteriordb, written as a user would write them (flat priors)."""
