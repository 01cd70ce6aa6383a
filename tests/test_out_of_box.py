"""Out of the box: ``ppl models`` reads no data, the small posteriordb models run on the files
shipped with the package (no data directory, no cache, no environment variable), and
``ppl download`` offline says so in one line."""
import json
import os
import subprocess
import sys
import sysconfig
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ppl_models
from inference.cli import main
from ppl_models import registry
from ppl_models.data import mnist, posterior_database, posteriordb, set_data_dir, text
from ppl_models.data.checksums import sha256
from ppl_models.data.paths import BUNDLED_DIR
from ppl_models.errors import DataNotFoundError
from tests.conftest import SHARED_DATA

# the models whose data (and reference draws) ship with the package
SMALL_MODELS = [
    "eight_schools-eight_schools_noncentered", "eight_schools-eight_schools_centered", "kidiq-kidscore_momiq",
    "kidiq-conjugate_regression", "earnings-logearn_interaction", "mesquite-logmesquite", "nes2000-nes",
    "radon_mn-radon_hierarchical_intercept_centered", "radon_mn-radon_hierarchical_intercept_noncentered",
    "radon_mn-radon_variable_intercept_slope_noncentered",
]


@pytest.fixture
def no_data_dir(tmp_path):
    """A data directory that does not exist; posteriordb's in-process caches emptied before and after."""
    set_data_dir(tmp_path / "nowhere")
    posteriordb._load_data.cache_clear(), posteriordb._load_reference_draws.cache_clear()
    yield tmp_path / "nowhere"
    set_data_dir(None)
    posteriordb._load_data.cache_clear(), posteriordb._load_reference_draws.cache_clear()


def test_listing_models_reads_no_data(no_data_dir, monkeypatch, capsys):
    calls = []

    def refuse(relpath):
        calls.append(relpath)
        raise DataNotFoundError(f"listing read {relpath}")

    for module in (posteriordb, mnist, text):  # every loader finds its files through resolve
        monkeypatch.setattr(module, "resolve", refuse)
    # the reader of the whole posteriordb database finds its files through _path
    monkeypatch.setattr(posterior_database, "_path", lambda posterior, what, relpath: refuse(relpath))
    monkeypatch.setattr(registry, "_built", {})  # nothing built before counts
    infos = registry.list_model_info()
    assert [i.name for i in infos] == ppl_models.list_models()
    assert main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert calls == [] and registry._built == {}
    assert {r["model"] for r in rows} == set(ppl_models.list_models()) == {line.split()[0] for line in table[1:-1]}
    assert max(map(len, table)) <= 100
    # every built-in model says at registration what its spec has (get_model checks that they agree); models
    # that other tests in this process registered from a ready spec have no description
    builtin = {name for name, factory in registry._factories.items()
               if getattr(factory, "__module__", "") in registry.BUILTIN_MODULES}
    assert len(builtin) >= 29
    assert all(i.backends == ("pyro", "numpyro") and i.reference is not None and i.description
               for i in infos if i.name in builtin)
    es = next(r for r in rows if r["model"] == "eight_schools-eight_schools_centered")
    assert es["reference"] == "posteriordb eight_schools-eight_schools_noncentered"


def test_registration_that_disagrees_with_the_spec_is_refused():
    spec = ppl_models.get_model("eight_schools-eight_schools_noncentered")
    name = "test-misdeclared"
    registry.register_model(name, backends=("numpyro",), reference=spec.reference.source)(
        lambda: ppl_models.ModelSpec(name, spec.data, spec.model, reference=spec.reference))
    try:
        assert registry.model_info(name).backends == ("numpyro",)  # what a listing shows, unchecked
        with pytest.raises(ValueError, match=r"registered with backends=\('numpyro',\).*'pyro', 'numpyro'"):
            ppl_models.get_model(name)
        # undeclared, it is learnt from the spec once built
        registry.register_model(name, overwrite=True)(
            lambda: ppl_models.ModelSpec(name, spec.data, spec.model, reference=spec.reference))
        assert registry.model_info(name).backends is None
        ppl_models.get_model(name)
        assert registry.model_info(name).backends == ("pyro", "numpyro")
    finally:
        registry._factories.pop(name), registry._infos.pop(name)
        for key in [k for k in registry._built if k[0] == name]:
            del registry._built[key]


def test_shipped_files_are_small_and_checked():
    shipped = sorted(p for p in BUNDLED_DIR.rglob("*") if p.is_file())
    rels = [p.relative_to(BUNDLED_DIR / "posteriordb").as_posix() for p in shipped]
    assert len(shipped) == 11 and sum(p.stat().st_size for p in shipped) < 4e6
    assert all(sha256(p) == posteriordb.SUMS[rel] for p, rel in zip(shipped, rels, strict=True))
    # the package data globs of pyproject.toml take every shipped file (checked on a wheel: benchmarks/RESULTS.md)
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"data/bundled/posteriordb/*/*.json.zip"' in pyproject


def test_small_models_build_from_the_package_data_alone(no_data_dir):
    for name in SMALL_MODELS:
        spec = ppl_models.get_model(name)
        assert spec.reference is not None and spec.name == name
    with zipfile.ZipFile(SHARED_DATA / "posteriordb" / "data" / "kidiq.json.zip") as z:
        shared = json.loads(z.read(z.namelist()[0]))
    np.testing.assert_array_equal(posteriordb.load_data("kidiq")["kid_score"], shared["kid_score"])
    # big data still comes from the data directory only, with the one-line error
    with pytest.raises(DataNotFoundError, match="diamonds.json.zip' not found in the data directory"):
        posteriordb.load_data("diamonds")


def test_download_offline_is_one_line_and_status_2(tmp_path, monkeypatch, capsys):
    from ppl_models.data import download

    def offline(url, timeout=None):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    assert main(["download", "--data-dir", str(tmp_path), "--dataset", "posteriordb"]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("ppl: error: cannot reach posteriordb's files on GitHub "
                                                   "(no network?)") and "Traceback" not in err
    assert not (tmp_path / "posteriordb").exists()


def test_cli_from_a_bare_folder(tmp_path):
    """`ppl models` and a short NUTS fit with no PPL_DATA_DIR and an empty home: neither the shared
    data nor a cache can be found, only the package's own files."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PPL_DATA_DIR"}
    env |= {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    ppl = Path(sysconfig.get_path("scripts")) / "ppl"
    command = [str(ppl)] if ppl.is_file() else [sys.executable, "-m", "inference.cli"]
    done = subprocess.run([*command, "models"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "eight_schools-eight_schools_noncentered" in done.stdout and "mnist-vae" in done.stdout
    done = subprocess.run([*command, "fit", "eight_schools-eight_schools_noncentered", "--backend", "numpyro",
                           "--method", "nuts", "--num-warmup", "100", "--num-samples", "100", "--num-chains", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "x 100 draws" in done.stdout and "theta" in done.stdout
    assert not (home / ".cache" / "ppl_models").exists()
