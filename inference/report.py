"""One self-contained HTML page comparing inference methods on a model against its reference.

The page holds the score table (``inference.compare``), a forest plot of every method against
the reference, marginal densities and a pair plot of the hardest parameters (those with the
largest error over methods), MCMC diagnostics (rank plots per chain, the energy plot,
divergences), SVI loss traces, and the importance-sampling k-hat values. Figures are drawn with
matplotlib and embedded as PNG data, so the page is one file that opens anywhere.
"""
from __future__ import annotations

import base64
import html
import io
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from inference import arviz_compat as az
from inference.diagnostics import scalar_draws
from inference.registry import family_of
from inference.result import InferenceResult
from ppl_models.atomic import atomic_write
from ppl_models.reference import Reference

MAX_FOREST = 40  # parameters in the forest plot
NUM_HARDEST = 4  # parameters in the marginal-density panel
REFERENCE_COLOR = "0.25"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    _pyplot().close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _reference_draws(reference: Reference, rng) -> dict[str, np.ndarray]:
    """Reference draws per scalar parameter; exact moments are drawn as Gaussians (for plots only)."""
    if not reference.is_exact:
        return {k: v.ravel() for k, v in scalar_draws(reference.draws).items()}
    from inference.diagnostics import reference_summary

    summary = reference_summary(reference)
    return {n: rng.normal(row["mean"], row["sd"], 4000) for n, row in summary.iterrows()}


def hardest_parameters(table: pd.DataFrame, num: int) -> list[str]:
    """The ``num`` parameters with the largest |z_mean| + |z_sd| over methods."""
    z = [c.removeprefix("z_mean[")[:-1] for c in table.columns if c.startswith("z_mean[")]
    badness = {p: np.nanmax(table[f"z_mean[{p}]"].abs().to_numpy() + table[f"z_sd[{p}]"].abs().to_numpy())
               for p in z}
    return sorted(badness, key=lambda p: -np.nan_to_num(badness[p], nan=np.inf))[:num]


def forest_plot(draws: Mapping[str, Mapping[str, np.ndarray]], reference: Mapping[str, np.ndarray],
                params: list[str]) -> str:
    """Each method's mean and central 90% interval per parameter, the reference's beneath them."""
    plt = _pyplot()
    labels = list(draws)
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(params) * (len(labels) + 1) + 1))
    height = len(labels) + 1
    for i, p in enumerate(params):
        rows = [("reference", reference[p], REFERENCE_COLOR)] + [
            (label, draws[label][p], f"C{j}") for j, label in enumerate(labels) if p in draws[label]]
        for k, (_, x, color) in enumerate(rows):
            y = -(i * height + k)
            lo, hi = np.quantile(x, [0.05, 0.95])
            ax.plot([lo, hi], [y, y], color=color, lw=2)
            ax.plot(np.mean(x), y, "o", color=color, ms=4)
    ax.set_yticks([-(i * height) - (height - 2) / 2 for i in range(len(params))], params)
    handles = [plt.Line2D([], [], color=REFERENCE_COLOR, lw=2, label="reference")] + [
        plt.Line2D([], [], color=f"C{j}", lw=2, label=label) for j, label in enumerate(labels)]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def marginal_plot(draws, reference, params: list[str]) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(params), figsize=(3.2 * len(params), 2.6), squeeze=False)
    for ax, p in zip(axes[0], params, strict=True):
        bins = np.histogram_bin_edges(reference[p], bins=40)
        ax.hist(reference[p], bins=bins, density=True, color=REFERENCE_COLOR, alpha=0.35, label="reference")
        for j, (label, d) in enumerate(draws.items()):
            if p in d and np.any((d[p] >= bins[0]) & (d[p] <= bins[-1])):  # a method far off has no bar here
                ax.hist(d[p], bins=bins, density=True, histtype="step", color=f"C{j}", lw=1.5, label=label)
        ax.set_title(p, fontsize=9)
        ax.set_yticks([])
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
               fontsize=8, frameon=False)
    return _png(fig)


def pair_plot(draws, reference, divergent, params: list[str]) -> str:
    """The two parameters against each other: reference draws, each method's, divergences in red."""
    plt = _pyplot()
    a, b = params
    labels = list(draws)
    fig, axes = plt.subplots(1, len(labels), figsize=(3.3 * len(labels), 3.2), squeeze=False, sharex=True,
                             sharey=True)
    for j, (ax, label) in enumerate(zip(axes[0], labels, strict=True)):
        ax.scatter(reference[a][:2000], reference[b][:2000], s=3, color=REFERENCE_COLOR, alpha=0.25)
        if a in draws[label] and b in draws[label]:
            ax.scatter(draws[label][a][:2000], draws[label][b][:2000], s=3, color=f"C{j}", alpha=0.4)
            mask = divergent.get(label)
            if mask is not None and mask.any():
                ax.scatter(draws[label][a][mask], draws[label][b][mask], s=10, color="red",
                           label=f"{int(mask.sum())} divergent")
                ax.legend(fontsize=7)
        ax.set_title(textwrap.fill(label, 32), fontsize=8)
        ax.set_xlabel(a)
    axes[0][0].set_ylabel(b)
    return _png(fig)


def rank_plot(result: InferenceResult, param: str) -> str | None:
    """Rank histograms of ``param``'s draws per chain, ranked over all chains (Vehtari et al. 2021):
    flat when the chains agree."""
    x = scalar_draws(result.samples).get(param)
    if x is None or x.shape[0] < 2:
        return None
    plt = _pyplot()
    ranks = x.ravel().argsort().argsort().reshape(x.shape)
    fig, axes = plt.subplots(1, x.shape[0], figsize=(2.2 * x.shape[0], 2), squeeze=False, sharey=True)
    for c, ax in enumerate(axes[0]):
        ax.hist(ranks[c], bins=20, range=(0, x.size), color="C0")
        ax.axhline(x.shape[1] / 20, color="k", lw=0.8, ls="--")
        ax.set_title(f"chain {c}", fontsize=8)
        ax.set_xticks([])
    fig.suptitle(f"ranks of {param} per chain", fontsize=9, y=1.08)
    return _png(fig)


def energy_plot(result: InferenceResult) -> str | None:
    """Marginal energy against energy transitions (Betancourt 2017), with ArviZ's BFMI per chain:
    a transition distribution much narrower than the marginal means slow exploration."""
    energy = result.sample_stats.get("energy")
    if energy is None:
        return None
    plt = _pyplot()
    energy = np.asarray(energy, float)
    marginal = (energy - energy.mean(axis=1, keepdims=True)).ravel()
    transition = np.diff(energy, axis=1).ravel()
    bfmi = az.bfmi(energy)
    fig, ax = plt.subplots(figsize=(4, 2.4))
    bins = np.histogram_bin_edges(np.concatenate([marginal, transition]), bins=40)
    ax.hist(marginal, bins=bins, alpha=0.5, density=True, label="marginal energy")
    ax.hist(transition, bins=bins, alpha=0.5, density=True, label="energy transition")
    ax.set_title(f"energy (BFMI per chain: {', '.join(f'{v:.2f}' for v in bfmi)})", fontsize=9)
    ax.legend(fontsize=7)
    ax.set_yticks([])
    return _png(fig)


def loss_plot(results: Mapping[str, InferenceResult], colors: Mapping[str, str]) -> str | None:
    """Each optimization's loss per step (faint) and its running mean over a fiftieth of the steps."""
    traces = {label: np.asarray(r.losses) for label, r in results.items() if r.losses is not None and len(r.losses)}
    if not traces:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    for label, losses in traces.items():
        curve = losses if losses.ndim == 1 else losses[:, -1]
        ax.plot(curve, lw=0.6, alpha=0.5, color=colors[label])
        window = max(1, len(curve) // 50)
        smooth = np.convolve(curve, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(len(smooth)) + window - 1, smooth, lw=1.5, color=colors[label], label=label)
    low, high = np.nanpercentile(np.concatenate([t.ravel() for t in traces.values()]), [1, 99])
    ax.set_ylim(low - 0.1 * (high - low), high + 0.1 * (high - low))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (-ELBO)")
    ax.legend(fontsize=7)
    return _png(fig)


def _preamble(reference: Reference | None) -> str:
    if reference is None:
        return ("No reference posterior: each method is scored on data the fits did not see (held-out negative "
                "log-likelihood per point, perplexity and coherence, or squared MMD to test points).")
    source = reference.source or ("exact moments" if reference.is_exact else "reference draws")
    return (f"Reference: {html.escape(source)}. z = standardized error in reference sds; w1 = 1-Wasserstein "
            "distance of a marginal, in reference sds.")


def _img(data: str | None, alt: str) -> str:
    return "" if data is None else f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def write_report(model: str, table: pd.DataFrame, results: Mapping[str, InferenceResult],
                 reference: Reference | None, directory: str | os.PathLike, columns: list[str] | None = None) -> Path:
    """Write ``directory/report.html`` (atomically) for the comparison ``table`` of ``results``
    (label -> result, as the table's index) against ``reference``; returns its path. Without a
    reference (a model scored on held-out data), the page holds the table and each method's own
    diagnostics."""
    divergent = {label: np.asarray(r.sample_stats["diverging"], bool).ravel()
                 for label, r in results.items() if "diverging" in r.sample_stats}
    shown = table[[c for c in columns if c in table]] if columns else table.drop(
        columns=[c for c in table.columns if "[" in c])
    shown = shown.loc[:, shown.notna().any()].rename_axis(None)  # columns no method fills say nothing
    sections = [("Scores against the reference" if reference is not None else "Scores on held-out data",
                 '<div class="wide">' + shown.to_html(float_format=lambda v: f"{v:.3g}", border=0, na_rep="")
                 + "</div>")]
    hardest = []
    if reference is not None:
        ref = _reference_draws(reference, np.random.default_rng(0))
        draws = {label: {k: v.ravel() for k, v in scalar_draws(r.samples).items() if k in ref}
                 for label, r in results.items()}
        params = [p for p in ref if any(p in d for d in draws.values())]
        hardest = hardest_parameters(table, NUM_HARDEST)
        sections += [
            ("Every method against the reference: posterior means and central 90% intervals",
             _img(forest_plot(draws, ref, params[:MAX_FOREST]), "forest plot")
             + (f"<p>First {MAX_FOREST} of {len(params)} parameters.</p>" if len(params) > MAX_FOREST else "")),
            ("Marginal densities of the hardest parameters",
             "<p>The parameters with the largest standardized errors over methods: "
             f"{html.escape(', '.join(hardest))}.</p>" + _img(marginal_plot(draws, ref, hardest),
                                                                "marginal densities")),
        ]
        if len(hardest) >= 2:
            sections.append((f"Pair plot: {hardest[0]} against {hardest[1]}",
                             _img(pair_plot(draws, ref, divergent, hardest[:2]), "pair plot")))
    for label, r in results.items():
        if family_of(r) == "mcmc":
            mask = divergent.get(label, np.zeros(0, bool))
            sections.append((f"MCMC diagnostics: {label}",
                             f"<p>{int(mask.sum())} divergent transitions of {mask.size}.</p>"
                             + _img(rank_plot(r, hardest[0] if hardest else next(iter(scalar_draws(r.samples)))),
                                    "rank plot") + _img(energy_plot(r), "energy plot")))
    colors = {label: f"C{j}" for j, label in enumerate(results)}  # as in the other figures
    losses = loss_plot({label: r for label, r in results.items() if family_of(r) == "vi"}, colors)
    if losses:
        sections.append(("Loss traces", _img(losses, "loss traces")))
    if "max_khat" in table and table["max_khat"].notna().any():
        khat = table[["max_khat"]].dropna()
        sections.append(("Pareto k-hat", "<p>Above 0.7 the importance weights are unreliable "
                         "(Vehtari et al. 2024).</p>" + khat.to_html(float_format=lambda v: f"{v:.2f}", border=0)))
    warnings = [(label, w) for label, text in table.get("warnings", pd.Series(dtype=str)).items()
                for w in filter(None, str(text).split(" | "))]
    if warnings:
        sections.append(("Warnings", "<ul>" + "".join(f"<li><b>{html.escape(label)}</b>: {html.escape(w)}</li>"
                                                     for label, w in warnings) + "</ul>"))
    body = "\n".join(f"<h2>{html.escape(title)}</h2>\n{content}" for title, content in sections)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(model)}: inference compared</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.8em; }} td, th {{ padding: 2px 8px; text-align: right; }}
tr:nth-child(even) {{ background: #f3f3f3; }} img {{ max-width: 100%; display: block; margin: 0.5em 0; }}
th {{ white-space: nowrap; }} .wide {{ overflow-x: auto; }}
</style></head>
<body><h1>{html.escape(model)}: inference methods {"against the reference" if reference else "on held-out data"}</h1>
<p>{_preamble(reference)}</p>
{body}
</body></html>
"""
    path = Path(directory) / "report.html"
    with atomic_write(path, "w") as f:
        f.write(page)
    return path
