"""``InferenceResult``: what every inference run returns, as numpy, with a lossless file format."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ppl_models.atomic import atomic_write

FORMAT_VERSION = 1


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
             "posterior_predictive": self.posterior_predictive},
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
        arrays = {f"samples/{k}": v for k, v in self.samples.items()}
        arrays |= {f"sample_stats/{k}": v for k, v in self.sample_stats.items()}
        arrays |= {f"observed_data/{k}": v for k, v in self.observed_data.items()}
        arrays |= {f"posterior_predictive/{k}": v for k, v in self.posterior_predictive.items()}
        arrays |= {f"params/{k}": v for k, v in self.params.items()}
        arrays |= {f"diagnostics/{k}": v for k, v in self.diagnostics.items()}
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


def load_result(path: str | os.PathLike) -> InferenceResult:
    """Read a result written by :meth:`InferenceResult.save`."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path} has result format {meta.get('format_version')}, expected {FORMAT_VERSION}")
        groups = {"samples": {}, "sample_stats": {}, "observed_data": {}, "posterior_predictive": {}, "params": {},
                  "diagnostics": {}}
        for key in f.files:
            group, _, name = key.partition("/")
            if group in groups:
                groups[group][name] = f[key]
        arrays = {name: f[name] if name in f.files else None for name in ("losses", "log_weights")}
    return InferenceResult(model=meta["model"], backend=meta["backend"], method=meta["method"], timing=meta["timing"],
                           info=meta["info"], warnings=meta["warnings"], log_evidence=meta["log_evidence"],
                           log_evidence_se=meta["log_evidence_se"], **arrays, **groups)
