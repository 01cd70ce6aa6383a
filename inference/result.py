"""``InferenceResult``: what every inference run returns, as numpy, with a lossless file format."""
from __future__ import annotations

import contextlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ppl_models.atomic import atomic_write

FORMAT_VERSION = 1
# the fields that map names to arrays, saved as "<group>/<name>" (a file without a group reads it as empty)
ARRAY_GROUPS = ("samples", "sample_stats", "observed_data", "posterior_predictive", "log_likelihood", "prior",
                "prior_predictive", "params", "diagnostics")


@dataclass
class InferenceResult:
    """Draws and diagnostics of one run of one method on one model.

    ``samples`` maps each latent and deterministic site to an array shaped
    ``(chain, draw, *event_shape)``; draws from a variational guide count as one
    chain. ``sample_stats`` holds per-draw sampler statistics under ArviZ's names
    (``diverging``, ``acceptance_rate``, ``step_size``, ``tree_depth``, ``n_steps``,
    ``energy``), ``losses`` the loss per optimization step, ``params`` the fitted
    parameters (SVI), ``log_weights``, ``log_evidence`` and ``log_evidence_se`` the
    importance weights and the estimate of log p(data) with its standard error (IS),
    ``posterior_predictive`` data drawn from the fitted model, ``(chain, draw, *data_shape)``
    (likelihood-free methods: points from the fitted generator),
    ``log_likelihood`` each data site's log density at the data per draw and element,
    ``(chain, draw, *batch_shape)``, filled with ``posterior_predictive`` after NUTS, HMC, SVI and IS
    (``inference.criticism``; ``info["log_likelihood_skipped"]`` says why not, where not),
    ``prior`` and ``prior_predictive`` draws of the joint prior, ``(1, draw, ...)``, filled on request by
    ``inference.add_prior``,
    ``diagnostics`` method-level diagnostics (IS: ``ess``, ``khat``, per data point),
    ``timing`` seconds (``wall``, ``warmup``, ``sampling``),
    ``info`` the seed, options, library versions and device (and, for a model trained on
    minibatches, ``observed_data_left_out``: the big data sets not copied into the result), and ``warnings``
    the diagnostic warnings the run raised.
    """

    model: str
    backend: str
    method: str
    samples: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray] = field(default_factory=dict)
    observed_data: dict[str, np.ndarray] = field(default_factory=dict)
    posterior_predictive: dict[str, np.ndarray] = field(default_factory=dict)
    log_likelihood: dict[str, np.ndarray] = field(default_factory=dict)
    prior: dict[str, np.ndarray] = field(default_factory=dict)
    prior_predictive: dict[str, np.ndarray] = field(default_factory=dict)
    losses: np.ndarray | None = None
    params: dict[str, np.ndarray] = field(default_factory=dict)
    log_weights: np.ndarray | None = None
    log_evidence: float | None = None
    log_evidence_se: float | None = None
    diagnostics: dict[str, np.ndarray] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def num_chains(self) -> int:
        return next(iter(self.samples.values())).shape[0] if self.samples else 0

    @property
    def num_draws(self) -> int:
        return next(iter(self.samples.values())).shape[1] if self.samples else 0

    def to_arviz(self):
        """ArviZ's container (``InferenceData`` on ArviZ 0.x, ``DataTree`` on 1.x)."""
        from inference.arviz_compat import to_inference_data

        attrs = {"inference_library": self.backend, "method": self.method, "model": self.model}
        return to_inference_data(
            {"posterior": self.samples, "sample_stats": self.sample_stats, "observed_data": self.observed_data,
             "posterior_predictive": self.posterior_predictive, "log_likelihood": self.log_likelihood,
             "prior": self.prior, "prior_predictive": self.prior_predictive},
            attrs=attrs,
        )

    def summary(self):
        """Per-parameter mean, sd, MCSE, bulk/tail ESS and R-hat, as a pandas DataFrame."""
        from inference.diagnostics import summarize

        return summarize(self.samples)

    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` (``.npz``), atomically: a crash never leaves a partial file."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        arrays = {f"{group}/{k}": v for group in ARRAY_GROUPS for k, v in getattr(self, group).items()}
        for name in ("losses", "log_weights"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        meta = {"format_version": FORMAT_VERSION, "model": self.model, "backend": self.backend,
                "method": self.method, "timing": self.timing, "info": self.info, "warnings": self.warnings,
                "log_evidence": self.log_evidence, "log_evidence_se": self.log_evidence_se}
        arrays["meta"] = np.array(json.dumps(meta, default=str))
        with atomic_write(path) as f:
            np.savez(f, **arrays)
        return path


_META_KEYS = ("format_version", "model", "backend", "method", "timing", "info", "warnings", "log_evidence",
              "log_evidence_se")


@contextlib.contextmanager
def _open_result(path: str | os.PathLike):
    """The open ``.npz`` of a saved result and its metadata, or ``ResultFileError`` saying what the file is."""
    from ppl_models.errors import ResultFileError

    def bad(what: str) -> ResultFileError:
        return ResultFileError(f"{os.fspath(path)!r} is not a result written by InferenceResult.save: {what}")

    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise bad("the file is empty")
    try:
        f = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError):
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        with open(path, "rb") as raw:
            zipped = raw.read(4) == b"PK\x03\x04"
        raise bad(f"a truncated or corrupt .npz archive ({e})" if zipped
                  else f"not an .npz archive ({path.stat().st_size} bytes; numpy: {e})") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise bad(f"a single numpy array of shape {np.shape(f)}, not an .npz archive of a result")
    with f:
        try:
            meta = json.loads(str(f["meta"])) if "meta" in f.files else None
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            raise bad(f"its 'meta' entry cannot be read ({type(e).__name__}: {e})") from None
        if meta is None:
            raise bad(f"an .npz archive without the 'meta' entry a result has (it holds {sorted(f.files)[:10]})")
        missing = [k for k in _META_KEYS if not isinstance(meta, dict) or k not in meta]
        if missing:
            raise bad(f"its 'meta' entry lacks {missing}")
        if meta["format_version"] != FORMAT_VERSION:
            raise ResultFileError(f"{os.fspath(path)!r} has result format {meta['format_version']}, "
                                  f"expected {FORMAT_VERSION}")
        try:
            yield f, meta
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise bad(f"an entry cannot be read ({type(e).__name__}: {e})") from None


def load_result(path: str | os.PathLike) -> InferenceResult:
    """Read a result written by :meth:`InferenceResult.save`; ``ResultFileError`` naming the file
    and what is wrong with it for any other file."""
    with _open_result(path) as (f, meta):
        groups = {group: {} for group in ARRAY_GROUPS}
        for key in f.files:
            group, _, name = key.partition("/")
            if group in groups:
                groups[group][name] = f[key]
        arrays = {name: f[name] if name in f.files else None for name in ("losses", "log_weights")}
    return InferenceResult(model=meta["model"], backend=meta["backend"], method=meta["method"], timing=meta["timing"],
                           info=meta["info"], warnings=meta["warnings"], log_evidence=meta["log_evidence"],
                           log_evidence_se=meta["log_evidence_se"], **arrays, **groups)
