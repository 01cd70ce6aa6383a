"""A reader of the whole posteriordb database in its own layout (``<data dir>/posterior_database``).

posteriordb's layout (its ``DATABASE_CONTENT.md``)::

    posteriors/<posterior>.json                          names the model, the data and the reference
    data/data/<data>.json.zip                            one JSON object: variable -> value
    models/stan/<model>.stan                             the Stan program
    reference_posteriors/draws/draws/<posterior>.json.zip  a list of chains: Stan parameter -> draws

A posterior is named ``<data>-<model>``. Every file read is checked against the sha256 table shipped
with the package (``posterior_database.sha256``, from the database's ``SHA256SUMS``), not against one
lying beside the data. A file the full database lacks is read from the older subset
(``<data dir>/posteriordb``, or its copy shipped with the package) when that holds the same file (same
sha256): the small posteriors keep working right after ``pip install``.

The ``posteriordb`` Python package (0.2) reads this layout offline too, but it checks no checksums,
fails on a missing file with a bare ``FileNotFoundError`` or ``AssertionError``, and knows nothing of
the data directory or the shipped copies; what is needed of it is the few lines below.
"""
from __future__ import annotations

import difflib
import functools
import json
import zipfile
from pathlib import Path

import numpy as np

from ppl_models.data.checksums import read_sums, verify
from ppl_models.data.paths import DATA_DIR_ENV, bundled, data_dir
from ppl_models.data.posteriordb import SUMS as SUBSET_SUMS
from ppl_models.data.posteriordb import stack_indexed
from ppl_models.errors import DataError, DataNotFoundError, UnknownChoiceError

FOLDER = "posterior_database"
SUMS = read_sums(Path(__file__).with_name("posterior_database.sha256"))
_DRAWS = "reference_posteriors/draws/draws/"


def _names(prefix: str, suffix: str) -> list[str]:
    return sorted(k[len(prefix):-len(suffix)] for k in SUMS if k.startswith(prefix) and k.endswith(suffix))


def posterior_names() -> list[str]:
    """Every posterior of the database (147), known from the shipped table without reading the disk."""
    return _names("posteriors/", ".json")


def reference_posterior_names() -> list[str]:
    """The posteriors with reference draws (45 in posteriordb 1.0)."""
    return _names(_DRAWS, ".json.zip")


def _subset_path(relpath: str) -> str | None:
    """Where the older subset keeps the same file, if it has it: ``posteriordb/data/<data>.json.zip``
    or ``posteriordb/draws/<posterior>.json.zip``."""
    for full, subset in (("data/data/", "data/"), (_DRAWS, "draws/")):
        if relpath.startswith(full):
            rel = subset + relpath[len(full):]
            return rel if SUBSET_SUMS.get(rel) == SUMS.get(relpath) else None
    return None


def _path(posterior: str, what: str, relpath: str) -> Path:
    """The checked path of the database's file ``relpath`` (``what`` it is, for ``posterior``); a
    one-line error naming both when it is nowhere."""
    if relpath not in SUMS:
        raise DataNotFoundError(f"posterior {posterior!r} has no {what} in posteriordb (no file {relpath!r} "
                                f"in the database's table of files)")
    path = data_dir() / FOLDER / relpath
    if not path.is_file():
        subset = _subset_path(relpath)
        candidates = [data_dir() / "posteriordb" / subset, bundled("posteriordb/" + subset)] if subset else []
        path = next((p for p in candidates if p is not None and p.is_file()), None)
        if path is None:
            raise DataNotFoundError(
                f"posterior {posterior!r}: {what} file {relpath!r} not found in {data_dir() / FOLDER} (set "
                f"{DATA_DIR_ENV} to the folder holding posterior_database/, for example ../shared/data, or fetch it: "
                f"ppl download --dataset posterior_database)")
    return verify(path, SUMS[relpath])


def _read_json_zip(path: Path):
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read(z.namelist()[0]))
    except (zipfile.BadZipFile, IndexError, ValueError) as e:
        raise DataError(f"{path} is not a zipped JSON file ({type(e).__name__}: {e})") from None


@functools.cache
def _posterior_info(name: str, root: Path) -> dict:
    relpath = f"posteriors/{name}.json"
    if relpath not in SUMS:
        close = difflib.get_close_matches(name, posterior_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownChoiceError("posteriordb posterior", name, posterior_names(),
                                 message=f"unknown posteriordb posterior {name!r}{hint}; "
                                         f"posterior_names() lists the {len(posterior_names())} there are")
    if (root / FOLDER / relpath).is_file():
        return json.loads(_path(name, "definition", relpath).read_text())
    # Only the older subset is here (it keeps no definitions): posteriordb names a posterior
    # <data>-<model>, and its reference posterior after itself (eight_schools_centered, whose
    # reference is the non-centred one's, is the one exception, and is read by its own module).
    data_name, model_name = name.split("-", 1)
    reference = name if f"{_DRAWS}{name}.json.zip" in SUMS else None
    return {"name": name, "data_name": data_name, "model_name": model_name, "reference_posterior_name": reference}


def posterior_info(name: str) -> dict:
    """The posterior's definition (``posteriors/<name>.json``): ``model_name``, ``data_name``,
    ``reference_posterior_name``, ``dimensions``, ``keywords``, ..."""
    return dict(_posterior_info(name, data_dir()))


@functools.cache
def _load_data(name: str, root: Path) -> dict:
    data_name = posterior_info(name)["data_name"]
    return _read_json_zip(_path(name, "data", f"data/data/{data_name}.json.zip"))


def load_data(name: str) -> dict:
    """The data of posterior ``name``: numpy arrays (for lists) and Python scalars, as posteriordb
    stores them (Stan's 1-based indices where indices appear)."""
    return {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in _load_data(name, data_dir()).items()}


@functools.cache
def _load_reference_draws(name: str, root: Path) -> dict[str, np.ndarray]:
    reference = posterior_info(name).get("reference_posterior_name")
    if reference is None:
        raise DataNotFoundError(f"posterior {name!r} has no reference posterior in posteriordb "
                                f"(its definition names none)")
    chains = _read_json_zip(_path(name, "reference draws", f"{_DRAWS}{reference}.json.zip"))
    columns = {k: np.array([c[k] for c in chains], dtype=float) for k in chains[0]}
    return stack_indexed(columns)


def load_reference_draws(name: str) -> dict[str, np.ndarray]:
    """posteriordb's reference draws of posterior ``name``, with the Stan program's parameter names:
    name -> array ``(chain, draw, *shape)`` (10 x 1000 draws), as ``Reference(draws=...)`` takes them."""
    return dict(_load_reference_draws(name, data_dir()))


def stan_code(name: str) -> str:
    """The Stan program of posterior ``name``."""
    model = posterior_info(name)["model_name"]
    return _path(name, "Stan program", f"models/stan/{model}.stan").read_text()
