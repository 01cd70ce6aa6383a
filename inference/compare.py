"""``inference.compare``: several (backend, method, options) on one model, scored against its reference
posterior, or, for a model without one, on its held-out data (``inference.held_out``)."""
from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from inference.api import resolve_model, run
from inference.diagnostics import RHAT_MAX, joint_energy_distance, score, summarize
from inference.held_out import held_out_scores
from inference.memory import run_memory
from inference.options import resolve_options
from inference.registry import family_of
from inference.result import InferenceResult
from ppl_models.atomic import atomic_write
from ppl_models.errors import UnknownChoiceError

MethodSpec = tuple[str, str, dict]
# the columns a reader looks at first (the CLI prints these; the report shows them)
SUMMARY_COLUMNS = ["verdict", "wall_s", "peak_mb", "ess_per_s", "ess_per_grad", "divergences", "max_r_hat",
                   "max_abs_z_mean", "max_abs_z_sd", "min_sd_ratio", "max_w1", "energy_distance", "worst_param",
                   "means_within_mcse", "sds_within_mcse", "max_khat", "log_evidence", "elbo", "elbo_se",
                   "final_loss", "heldout_nll", "heldout_nll_se", "perplexity", "npmi", "diversity", "heldout_mmd2"]
# the same, in the order a terminal shows them (as many as fit in 100 columns): the verdict and the
# errors first, then held-out scores, then cost and diagnostics
TERMINAL_COLUMNS = ["verdict", "max_abs_z_mean", "max_abs_z_sd", "min_sd_ratio", "heldout_nll", "heldout_nll_se",
                    "perplexity", "npmi", "diversity", "heldout_mmd2", "final_loss", "wall_s", "ess_per_s",
                    "divergences", "max_r_hat", "max_khat", "elbo", "log_evidence", "energy_distance", "worst_param",
                    "max_w1", "ess_per_grad", "peak_mb", "elbo_se"]
# their short names on a terminal (the CSV and --json keep the full ones)
TERMINAL_HEADERS = {"max_abs_z_mean": "max|z|mean", "max_abs_z_sd": "max|z|sd", "min_sd_ratio": "sd_ratio",
                    "heldout_nll": "nll", "heldout_nll_se": "nll_se", "heldout_mmd2": "mmd2", "final_loss": "loss",
                    "ess_per_s": "ess/s", "divergences": "diverg", "max_r_hat": "r_hat", "max_khat": "khat",
                    "log_evidence": "log_Z", "energy_distance": "energy", "worst_param": "worst",
                    "ess_per_grad": "ess/grad"}
DEFAULT_METHODS: tuple[MethodSpec, ...] = (
    ("numpyro", "nuts", {}),
    ("pyro", "nuts", {}),
    ("numpyro", "svi", {"guide": "normal"}),
    ("numpyro", "svi", {"guide": "mvn"}),
    ("pyro", "svi", {"guide": "normal"}),
    ("pyro", "svi", {"guide": "mvn"}),
)


def method_label(backend: str, method: str, options: dict) -> str:
    return " ".join([backend, method, *(f"{k}={v}" for k, v in sorted(options.items()))])


def file_stem(label: str) -> str:
    """A method label as a file name: ``numpyro svi guide=mvn`` -> ``numpyro_svi_guide-mvn``; characters
    that would need quoting in a shell (a dict option's braces, quotes, colons) become ``-``."""
    return re.sub(r"[^\w.+-]+", "-", label.replace(" ", "_").replace("=", "-"))


# Beyond Monte Carlo error but close enough for most uses: means within a quarter of a posterior sd,
# sds within 20%.
CLOSE_Z_MEAN, CLOSE_Z_SD = 0.25, 0.2


def verdict(row: Mapping) -> str:
    """``ok`` (every mean and sd within 4 Monte Carlo standard errors of the reference, and, for
    MCMC with several chains, every R-hat at most RHAT_MAX), ``close`` (means within CLOSE_Z_MEAN
    reference sds, sds within CLOSE_Z_SD of the reference's), else ``off``; ``"-"`` for a row not
    scored against a reference.

    Chains that have not mixed are never ``ok``: a stuck chain makes the MCSE as large as the error
    it causes (ensemble slice sampling on arK: means 550 reference sds off, all "within 4 MCSE")."""
    if "means_within_mcse" not in row or pd.isna(row.get("max_abs_z_mean")):
        return "-"
    mixed = not row.get("max_r_hat", math.nan) > RHAT_MAX  # NaN (one chain, or no chains): nothing to say
    if mixed and row["means_within_mcse"] and row["sds_within_mcse"]:
        return "ok"
    if row["max_abs_z_mean"] <= CLOSE_Z_MEAN and row["max_abs_z_sd"] <= CLOSE_Z_SD:
        return "close"
    return "off"


def headline_parameters(reference, limit: int = 4) -> list[str]:
    """The scalar parameters a reader looks at first: the reference's scalar sites if it has two or more,
    else the first components of its smallest sites."""
    sizes = {name: int(np.prod(np.shape(reference.mean[name] if reference.is_exact else reference.draws[name])
                               [0 if reference.is_exact else 2:], dtype=int)) for name in reference.names}
    scalars = [name for name in sorted(sizes, key=sizes.get) if sizes[name] == 1]
    if len(scalars) >= 2:
        return scalars[:limit]
    names = []
    for name in sorted(sizes, key=sizes.get):
        if sizes[name] == 1:
            names.append(name)
        else:
            names.extend(f"{name}[{i}]" for i in range(min(sizes[name], limit)))
        if len(names) >= limit:
            break
    return names[:limit]


def posterior_means(table: pd.DataFrame, reference, names: Sequence[str]) -> pd.DataFrame:
    """``mean ± sd`` of each of ``names``, for the reference and each method of a ``compare`` table."""
    from inference.diagnostics import reference_summary

    ref = reference_summary(reference)
    rows = {"reference": {n: f"{ref.loc[n, 'mean']:.3g} ± {ref.loc[n, 'sd']:.2g}" for n in names if n in ref.index}}
    for label, row in table.iterrows():
        rows[label] = {n: f"{row[f'mean[{n}]']:.3g} ± {row[f'sd[{n}]']:.2g}" for n in names
                       if pd.notna(row.get(f"mean[{n}]"))}
    return pd.DataFrame.from_dict(rows, orient="index")


def score_row(result: InferenceResult, reference, peak_mb: float = math.nan, held_out: dict | None = None) -> dict:
    """One row of the comparison table: cost, diagnostics, scores against the reference (when
    there is one) and the ``held_out`` scores (``inference.held_out``), if given.

    Per parameter ``p``: ``mean[p]``, ``sd[p]``, ``z_mean[p]``, ``z_sd[p]``, ``sd_ratio[p]`` and ``w1[p]``
    (see ``diagnostics.score``), and the row's ``verdict``. Per method: the worst of each, the joint
    ``energy_distance``; for MCMC,
    the minimum bulk ESS per second and per gradient evaluation (leapfrog step after warmup, where
    the backend records them), divergences and R-hat; for importance sampling, ``log_evidence``,
    its ``log_evidence_se``; the worst PSIS ``khat`` (importance sampling, and SVI's guide as a
    proposal); for SVI, the ``elbo`` at the fitted guide, from its draws, with ``elbo_se``; for
    optimization, ``final_loss`` (the mean loss over the last tenth of the steps: -ELBO for SVI);
    and ``peak_mb``.
    """
    mcmc = family_of(result) == "mcmc"
    names = reference.names if reference is not None else list(result.samples)
    summary = summarize({k: v for k, v in result.samples.items() if k in names}) if mcmc else None
    ess_min = float(summary["ess_bulk"].min()) if mcmc else math.nan
    gradients = float(np.sum(result.sample_stats["n_steps"])) if "n_steps" in result.sample_stats else math.nan
    losses = np.asarray(result.losses) if result.losses is not None else np.empty(0)
    khat = result.diagnostics.get("khat")
    row = {
        "backend": result.backend, "method": result.method, "wall_s": result.timing["wall"], "peak_mb": peak_mb,
        "ess_bulk_min": ess_min, "ess_per_s": ess_min / result.timing["wall"], "ess_per_grad": ess_min / gradients,
        "divergences": int(result.sample_stats["diverging"].sum()) if "diverging" in result.sample_stats else math.nan,
        "max_r_hat": float(summary["r_hat"].max()) if mcmc else math.nan,
        "log_evidence": result.log_evidence if result.log_evidence is not None else math.nan,
        "log_evidence_se": result.log_evidence_se if result.log_evidence_se is not None else math.nan,
        "max_khat": float(np.max(khat)) if khat is not None and np.size(khat) else math.nan,
        **{k: float(result.diagnostics[k]) if k in result.diagnostics else math.nan for k in ("elbo", "elbo_se")},
        "final_loss": float(losses[-max(1, len(losses) // 10):].mean(axis=0).ravel()[-1]) if losses.size else math.nan,
        "warnings": " | ".join(result.warnings),
    }
    if reference is not None:
        row |= posterior_scores(result, reference)
        row["verdict"] = verdict(row)
    return row | (held_out or {})


def posterior_scores(result: InferenceResult, reference) -> dict:
    """The scores of ``result``'s draws against the reference posterior (see ``score_row``)."""
    scores = score(result.samples, reference)
    abs_z = scores["z_mean"].abs().fillna(np.inf)
    row = {
        "max_abs_z_mean": float(abs_z.max()), "max_abs_z_sd": float(scores["z_sd"].abs().max()),
        "min_sd_ratio": float(scores["sd_ratio"].min()), "max_w1": float(scores["w1"].max()),
        "energy_distance": joint_energy_distance(result.samples, reference),
        "worst_param": str(abs_z.idxmax()),
        "means_within_mcse": bool(scores["mean_ok"].all()), "sds_within_mcse": bool(scores["sd_ok"].all()),
    }
    for column in ("mean", "sd", "z_mean", "z_sd", "sd_ratio", "w1"):
        row |= {f"{column}[{p}]": v for p, v in scores[column].items()}
    return row


def _measured_run(spec, backend: str, method: str, options: dict, seed: int, progress_bar: bool):
    """One method's run and the peak memory it added (what ``compare`` runs, here or in a worker)."""
    with run_memory(backend) as memory:
        result = run(spec, method=method, backend=backend, seed=seed, **{"progress_bar": progress_bar, **options})
    return result, memory.added_mb


def _measured_run_in_worker(*args):
    """``_measured_run`` in a worker: an error that would not survive the trip back to the parent
    (one whose class needs more than its message to be rebuilt) goes back as a RuntimeError naming it,
    for the pool's result thread would die on it and the parent wait for ever."""
    import pickle

    try:
        return _measured_run(*args)
    except Exception as error:  # noqa: BLE001 - re-raised, in a form the parent can read
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:  # noqa: BLE001
            raise RuntimeError(f"{type(error).__name__}: {error}") from None
        raise


def _init_worker() -> None:
    """A compare worker leaves Ctrl-C to the parent, which ends it (``inference.interrupt``), and keeps
    its runs' warnings to the table (each row's ``warnings``), not to stderr. (It computes on one
    thread through the environment it was started in: ``single_threaded_children``.)"""
    import signal
    import warnings

    from inference.api import InferenceWarning

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.simplefilter("ignore", InferenceWarning)


def single_threaded_environment() -> dict[str, str]:
    """The environment variables that make a new process compute on one thread: XLA's and OpenMP's
    pools sized to the machine in each of several workers would fight over the same cores (torch
    takes its thread count from OMP_NUM_THREADS)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "--xla_cpu_multi_thread_eigen" not in flags:
        flags = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    return {"XLA_FLAGS": flags, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def environment(**variables: str):
    """Within the block, ``os.environ`` has ``variables`` (what processes started there inherit);
    after it, each is as it was, unset if it was unset."""
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def single_threaded_children():
    """Within the block, processes started compute on one thread (``single_threaded_environment``)."""
    return environment(**single_threaded_environment())


def _runs_in_workers(spec, model, tasks: list, seed: int, workers: int):
    """``(index, (result, peak_mb))`` of each task ``(backend, method, options)`` as it finishes, from a
    pool of ``workers`` spawned processes; the tasks are handed out in order. A registered model goes
    to the workers by name; another ``ModelSpec`` must pickle."""
    import multiprocessing
    import pickle

    from inference.registry import plugin_environment

    ref = model if isinstance(model, str) else spec
    try:
        pickle.dumps(ref)
    except Exception as e:  # noqa: BLE001 - whatever pickle raises, the fix is the same
        raise ValueError(f"workers={workers} sends the model to worker processes, but {spec.name!r} does not pickle "
                         f"({type(e).__name__}: {e}); register it, or pass workers=1") from None
    with plugin_environment(), single_threaded_children(), \
            multiprocessing.get_context("spawn").Pool(workers, _init_worker) as pool:
        pending = {i: pool.apply_async(_measured_run_in_worker, (ref, *task, seed, False))
                   for i, task in enumerate(tasks)}
        while pending:
            for i in [i for i, r in pending.items() if r.ready()]:
                yield i, pending.pop(i).get()
            if pending:
                next(iter(pending.values())).wait(0.1)


def compare(model, methods: Sequence[MethodSpec] | None = None, seed: int = 0, *,
            out: str | os.PathLike | None = None, report: str | os.PathLike | None = None,
            progress: Callable[[str], None] | None = None, progress_bar: bool = False,
            workers: int = 1) -> pd.DataFrame:
    """Run each ``(backend, method, options)`` on ``model`` and score it against the reference, or,
    for a model without one, on the data it holds out (``inference.held_out``).

    Returns a table with one row per method (indexed by a label such as
    ``"numpyro svi guide=mvn"``), the columns of ``score_row``: wall time and peak memory, ESS per
    second and per gradient evaluation (MCMC), divergences, max R-hat, the standardized error of
    each parameter's posterior mean (``z_mean[p] = (mean - ref_mean) / ref_sd``) and sd
    (``z_sd[p] = (sd - ref_sd) / ref_sd``), its sd ratio and marginal 1-Wasserstein distance, the
    worst cases, the joint energy distance, the evidence and k-hat (importance sampling), the
    final loss (optimization), and whether all errors are within 4 Monte Carlo standard errors.
    Held out: the negative log-likelihood per test point (``heldout_nll``, with its standard error),
    perplexity, NPMI coherence and diversity (topic models), or ``heldout_mmd2`` (implicit models).
    With ``out``, every run is saved there as ``<label>.npz`` and the table as ``comparison.csv``.
    With ``report``, ``<report>/report.html`` shows the table and the runs' figures
    (``inference.report``).
    ``progress`` is told of each method as it starts and ends; ``progress_bar`` shows each run's bars.
    All methods are validated before the first one runs. ``methods=None`` runs
    ``DEFAULT_METHODS`` on the backends the model has. ``workers`` > 1 runs that many methods at
    once, each in a worker process (spawned; no progress bars; a Pyro NUTS run's chains then run one
    after another in its worker); the table is the same, in the same order.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers={workers!r}: expected an integer >= 1")
    spec = resolve_model(model)
    if methods is None:
        methods = [m for m in DEFAULT_METHODS if m[0] in spec.backends]
    if spec.reference is None and spec.held_out is None:
        raise ValueError(f"model {spec.name!r} has neither a reference posterior nor held-out data to score "
                         "methods on")
    labels = []
    for backend, method, options in methods:
        if backend not in spec.backends:
            raise UnknownChoiceError(f"backend for model {spec.name!r}", backend, spec.backends)
        resolve_options(method, backend, options)
        label = method_label(backend, method, options)
        labels.append(label if label not in labels else f"{label} #{labels.count(label) + 1}")
    out = Path(out) if out is not None else None
    tasks = [(backend, method, options) for backend, method, options in methods]
    if workers > 1:
        if progress:
            progress(f"{len(tasks)} methods on {spec.name}, {min(workers, len(tasks))} at a time in worker processes")
        runs = _runs_in_workers(spec, model, tasks, seed, workers)
    else:
        def one_by_one():
            for i, task in enumerate(tasks):
                if progress:
                    progress(f"[{i + 1}/{len(tasks)}] {spec.name}: {labels[i]}")
                yield i, _measured_run(spec, *task, seed, progress_bar)
        runs = one_by_one()
    rows, results = {}, {}
    for i, (result, peak_mb) in runs:
        if out is not None:
            result.save(out / (file_stem(labels[i]) + ".npz"))
        held_out = held_out_scores(spec, result, seed) if spec.held_out is not None else None
        rows[i] = {"label": labels[i], **score_row(result, spec.reference, peak_mb, held_out)}
        if report is not None:
            results[labels[i]] = result
        if progress:
            progress(f"      {labels[i]}: done in {result.timing['wall']:.1f} s")
    table = pd.DataFrame([rows[i] for i in sorted(rows)]).set_index("label")
    results = {label: results[label] for label in labels if label in results}
    if out is not None:
        with atomic_write(out / "comparison.csv", "w") as f:
            table.to_csv(f)
    if report is not None:
        from inference.report import write_report

        path = write_report(spec.name, table, results, spec.reference, report, columns=SUMMARY_COLUMNS)
        if progress:
            progress(f"report written to {path}")
    return table

