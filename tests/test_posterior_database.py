"""posteriordb's whole database (``../shared/data/posterior_database``): the reader, and NumPyro NUTS
on a sample of the posteriors registered from it.

The reader: a known posterior's definition, data keys and reference draw shapes; the Stan program;
the files shared with the older subset read from either; a missing file, a posterior without
reference draws and an unknown name each refused in one line that names them.

NUTS sample: ``benchmarks/posteriordb_nuts.py`` runs NumPyro NUTS on every posteriordb posterior (all
32 added with this reader pass with the layer's defaults); here, one posterior per model function
added with it, the quickest of each in that benchmark, plus the hardest geometry among them:
``sblri-blr`` (``regression.blr``, normal priors), ``kidiq_with_mom_work-kidscore_interaction_c``
(the ARM model ``regression.linear`` on a design computed from the data: centred predictors and their
interaction) and ``kilpisjarvi_mod-kilpisjarvi`` (``regression.kilpisjarvi``: uncentred years, so
alpha and beta correlate almost perfectly), and ``hmm_example-hmm_example`` (``time_series.hmm``:
the forward algorithm, which marginalizes the discrete states, and a positive-ordered constraint;
about 20 s of CPU). Two chains of 500 warmup and 1000 draws, the layer's other defaults; each mean
and sd within 4 combined MCSE of the reference (``tests.reference_checks``). The first three took 45
s of CPU (2 min of wall time beside a benchmark on the shared 2-core machine).
"""
import json
import zipfile

import numpy as np
import pytest

import inference
import ppl_models
from ppl_models.data import posterior_database as pdb
from ppl_models.data import set_data_dir
from ppl_models.data.checksums import read_sums
from ppl_models.errors import DataNotFoundError, UnknownChoiceError
from tests.conftest import SHARED_DATA
from tests.reference_checks import assert_matches_reference, assert_rare_divergences

_DRAWS = "reference_posteriors/draws/draws/"
NUTS_SAMPLE = ["sblri-blr", "kidiq_with_mom_work-kidscore_interaction_c", "kilpisjarvi_mod-kilpisjarvi",
               "hmm_example-hmm_example"]


def test_names_come_from_the_shipped_table():
    assert len(pdb.posterior_names()) == 147
    references = pdb.reference_posterior_names()
    assert len(references) == 45 and "mcycle_gp-accel_gp" not in references
    assert {"nes1972-nes", "sblri-blr", "kilpisjarvi_mod-kilpisjarvi"} <= set(references)


def test_shipped_table_is_the_databases_own():
    """The shipped sha256 table is the database's SHA256SUMS, cut to the files the reader opens."""
    theirs = read_sums(SHARED_DATA / "posterior_database" / "SHA256SUMS")
    assert pdb.SUMS == {k: v for k, v in theirs.items()
                        if k.split("/")[0] == "posteriors" or k.startswith(("data/data/", "models/stan/", _DRAWS))}


def test_a_known_posterior():
    info = pdb.posterior_info("nes1980-nes")
    assert (info["data_name"], info["model_name"], info["dimensions"]) == ("nes1980", "nes", {"beta": 9, "sigma": 1})
    data = pdb.load_data("nes1980-nes")
    assert set(data) == {"N", "age_discrete", "educ1", "gender", "income", "partyid7", "race_adj", "real_ideo",
                         "year"}
    assert data["N"] == 701 and data["partyid7"].shape == (701,)
    draws = pdb.load_reference_draws("nes1980-nes")
    assert {k: v.shape for k, v in draws.items()} == {"beta": (10, 1000, 9), "sigma": (10, 1000)}
    assert (draws["sigma"] > 0).all()
    assert "partyid7 ~ normal(" in pdb.stan_code("nes1980-nes")


def test_draws_keep_the_reference_names_and_order():
    """The reference's columns ``beta[1]``..``beta[5]`` become ``beta[..., 0..4]``."""
    draws = pdb.load_reference_draws("sblri-blr")
    path = SHARED_DATA / "posterior_database" / "reference_posteriors/draws/draws/sblri-blr.json.zip"
    with zipfile.ZipFile(path) as z:
        chains = json.loads(z.read(z.namelist()[0]))
    assert len(chains) == 10 and sorted(chains[0]) == [f"beta[{i}]" for i in range(1, 6)] + ["sigma"]
    np.testing.assert_array_equal(draws["beta"][3, :, 4], chains[3]["beta[5]"])


def test_the_older_subset_serves_the_files_it_shares(tmp_path):
    """Without the full database, a posterior whose files the older subset holds (or ships) still loads."""
    (tmp_path / "posteriordb").symlink_to(SHARED_DATA / "posteriordb")
    set_data_dir(tmp_path)
    try:
        assert pdb.load_reference_draws("sblrc-blr")["beta"].shape == (10, 1000, 5)
        assert pdb.load_data("kidiq_with_mom_work-kidscore_mom_work")["N"] == 434
        with pytest.raises(DataNotFoundError) as e:
            pdb.load_data("sblri-blr")
    finally:
        set_data_dir(None)
    message = str(e.value)
    assert "\n" not in message and "'sblri-blr'" in message and "'data/data/sblri.json.zip'" in message


def test_missing_files_are_named_in_one_line():
    with pytest.raises(DataNotFoundError) as e:
        pdb.load_reference_draws("mcycle_gp-accel_gp")
    message = str(e.value)
    assert "\n" not in message and "'mcycle_gp-accel_gp'" in message
    assert "reference_posteriors/draws/draws/mcycle_gp-accel_gp.json.zip" in message
    with pytest.raises(UnknownChoiceError, match=r"did you mean 'nes1976-nes'\?") as e:
        pdb.load_data("nes1975-nes")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", NUTS_SAMPLE)
def test_numpyro_nuts_matches_reference(name):
    spec = ppl_models.get_model(name)
    result = inference.run(spec, method="nuts", backend="numpyro", seed=0, num_warmup=500, num_samples=1000,
                           num_chains=2)
    assert_rare_divergences(result)
    assert_matches_reference(result, spec.reference)


def test_pyro_nuts_computes_the_deterministic_sites_of_a_model_with_improper_priors():
    """garch11's mu and alpha0 are ImproperUniform, which Pyro's Predictive used to sample (to guess the
    plates) before computing beta1 from the draws: the leaderboard's Pyro NUTS failed at its very end.
    beta1 must come from each posterior draw, not from an initial value."""
    result = inference.run("garch-garch11", method="nuts", backend="pyro", num_warmup=30, num_samples=30,
                           num_chains=1, progress_bar=False)
    s = result.samples
    np.testing.assert_allclose(s["beta1"], (1.0 - s["alpha1"]) * s["beta1_frac"], rtol=1e-12)
    assert np.ptp(s["mu"]) > 0  # the draws moved: beta1 was computed from 30 different points
