"""Data loading: checksums, a clear error for missing files, and the download path (over file://)."""
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
    with pytest.raises(DataNotFoundError, match="'posteriordb/data/eight_schools.json.zip' not found.*PPL_DATA_DIR"):
        posteriordb.load_data("eight_schools")


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
