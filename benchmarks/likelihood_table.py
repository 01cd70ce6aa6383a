"""One likelihood table: MNIST test negative log-likelihoods beside the papers' (issues 17 and 18).

Each row is one model and training objective, fitted on the training images and scored on the
10000 test images (``--num-test`` takes the first ones of a fixed random shuffle instead):

* ``made``: ``binarized_mnist-made`` (784-500-784, one mask) by maximum likelihood
  (``benchmarks.made_mnist.fit_made``); its test NLL is exact. Germain et al. (2015): 88.40
  (NADE, fixed order: 88.33).
* ``vae_k1``, ``iwae_k5``, ``iwae_k50_dreg``: ``mnist-vae`` (784-200-200-50 tanh, dynamically
  binarized MNIST) trained by the ELBO, the 5-sample IWAE bound, and the 50-sample bound with DReG
  gradients on the IWAE paper's schedule cut to its first ``--stages`` stages (stage i: 3^i epochs;
  ``benchmarks.iwae_mnist``). Burda et al. (2016), one stochastic layer, after 3280 epochs:
  86.76, 85.54, 84.78 (k = 50 without DReG).
* ``sbn_vimco``: ``binarized_mnist-sbn`` (200 binary units) trained by VIMCO with 5 samples
  (``benchmarks.sbn_mnist.fit_sbn``) for ``--sbn-steps`` steps.
* ``gan``, ``mmd``: ``mnist-implicit`` fitted adversarially and by MMD
  (``benchmarks.implicit_models``). They have no likelihood: their score is MMD² (Gaussian
  kernel, median bandwidth) between ``--mmd-points`` generated and as many test images (grey
  levels), beside the same between training and test images (what a perfect generator scores).

Latent-variable rows are scored by importance sampling with the trained guide as proposal:
log p(x_n) ~ log (1/k sum_i p(x_n, z_i) / q(z_i | x_n)), z_i ~ q(z | x_n), k = ``--num-samples``
(5000 in the papers). ``importance_nll`` walks the test images in batches of ``--score-batch``,
one ``inference.run(method="is")`` each, and saves the per-image estimates after every batch, so
that a killed scoring resumes at the next batch.

Everything resumes: training checkpoints (``inference.checkpoint``) and partial scores go to
``--out`` (``runs/likelihood_table``); finished rows go to ``benchmarks/likelihood_table.csv``
and are skipped when the same command runs again. Train and score seconds add up the wall time
of every piece of a run, lost work after a kill included.

    # a short version, a few minutes per row
    python -m benchmarks.likelihood_table --stages 1 --made-epochs 1 --sbn-steps 2000 \\
        --implicit-steps 500 --num-test 500 --num-samples 100
    # the long version (issue 17: about 120 epochs per VAE row), in the background, across sessions
    nice -n 5 nohup python -m benchmarks.likelihood_table --rows vae_k1,iwae_k5,iwae_k50_dreg \\
        > runs/likelihood_table/long.log 2>&1 &
    python -m benchmarks.likelihood_table --rows vae_k1,iwae_k5,iwae_k50_dreg --status  # how far it got
    python -m benchmarks.likelihood_table --table                                       # the CSV, as markdown
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import inference
from benchmarks.csv_rows import append_rows, backend_column
from benchmarks.entry import run_benchmark
from inference import interrupt
from inference.api import InferenceWarning
from inference.backends import check_device
from ppl_models.data.mnist import test_order

OUT_CSV = Path(__file__).with_name("likelihood_table.csv")
RUNS = Path("runs/likelihood_table")
FIELDS = ("row", "model", "backend", "epochs", "steps", "seed", "train_s", "score_s", "metric", "value", "se",
          "test_se", "max_khat", "num_test", "num_samples", "paper", "note")
NUM_TEST = 10000
TRAIN_SUBSET_SEED = 0  # which training images the MMD rows' floor takes


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table: a model, how it is trained (``family``, ``objective``), the paper's number."""

    name: str
    model: str
    family: str
    objective: str
    paper: float | None = None
    note: str = ""


ROWS = {r.name: r for r in (
    Row("made", "binarized_mnist-made", "made", "maximum likelihood", 88.40,
        "MADE 1 hidden layer, 1 mask (Germain et al. 2015); NADE 88.33; exact NLL"),
    Row("vae_k1", "mnist-vae", "vae", "vae_k1", 86.76, "Burda et al. 2016, 1 stochastic layer, 3280 epochs"),
    Row("iwae_k5", "mnist-vae", "vae", "iwae_k5", 85.54, "Burda et al. 2016, 1 stochastic layer, 3280 epochs"),
    Row("iwae_k50_dreg", "mnist-vae", "vae", "iwae_k50_dreg", 84.78,
        "Burda et al. 2016 (IWAE k=50, without DReG), 3280 epochs"),
    Row("sbn_vimco", "binarized_mnist-sbn", "sbn", "vimco_numpyro", None, "200 binary units, VIMCO K=5"),
    Row("gan", "mnist-implicit", "implicit", "adversarial non_saturating", None, "no likelihood"),
    Row("mmd", "mnist-implicit", "implicit", "mmd gaussian (median)", None, "no likelihood"),
)}


# ---------------------------------------------------------------------------- importance sampling
def data_subset(spec, index: np.ndarray, size_key: str = "num_data"):
    """``spec`` on the data points ``index`` only: its minibatch keys sliced, and the plate's size
    (the scalar ``size_key``) set to their number, so that log densities are not rescaled."""
    data = dict(spec.data)
    for key in spec.minibatch.keys:
        data[key] = np.asarray(data[key])[index]
    data[size_key] = len(index)
    return dataclasses.replace(spec, data=data, held_out=None)


def batches(num: int, batch_size: int) -> list[np.ndarray]:
    """Consecutive index batches covering ``range(num)``."""
    return [np.arange(i, min(i + batch_size, num)) for i in range(0, num, batch_size)]


def _load_partial(path: Path | None, config: dict, num: int, num_batches: int) -> dict:
    """The per-image estimates of the batches a killed scoring finished (NaN where not yet scored)."""
    fresh = {"log_p": np.full(num, np.nan), "var": np.full(num_batches, np.nan),
             "khat": np.full(num_batches, np.nan), "seconds": np.zeros(1)}
    if path is None or not path.exists():
        return fresh
    with np.load(path) as saved:
        if json.loads(str(saved["config"])) != config:
            raise ValueError(f"partial scores {path} were written with other settings "
                             f"({saved['config']} against {json.dumps(config)}); delete the file to score afresh")
        return {k: saved[k].copy() for k in fresh}


def _save_partial(path: Path | None, config: dict, state: dict) -> None:
    if path is None:
        return
    from ppl_models.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        np.savez(f, config=json.dumps(config), **state)


def importance_nll(test_spec, params: dict, *, num_samples: int, batch_size: int, seed: int = 1,
                   partial: Path | None = None, backend: str = "numpyro", device: str = "cpu",
                   label: str = "score") -> dict:
    """The test NLL per data point of a fitted latent-variable model, by importance sampling.

    For each test point x_n, log p-hat(x_n) = logsumexp_i [log p(x_n, z_i) - log q(z_i | x_n)] - log k,
    with z_1..z_k drawn from the fitted guide (Burda et al. 2016, the estimator of their table 1).
    The points go in batches of ``batch_size`` through ``inference.run(method="is")`` (seed
    ``seed + batch``), so memory is bounded by a batch; after each batch the per-point estimates
    are saved to ``partial`` (if given), from which a killed scoring resumes.

    Returns ``nll`` (the mean of -log p-hat), ``se`` (its importance-sampling standard error, from
    the batches' delta-method variances), ``test_se`` (the test points' spread, sd / sqrt(n)), the
    worst PSIS ``max_khat`` and ``seconds`` (sampling time of all pieces).
    """
    num = int(test_spec.data["num_data"])
    index_batches = batches(num, batch_size)
    config = {"num": num, "num_samples": num_samples, "batch_size": batch_size, "seed": seed, "backend": backend}
    state = _load_partial(partial, config, num, len(index_batches))
    for b, index in enumerate(index_batches):
        if np.isfinite(state["var"][b]):
            continue
        t0 = time.perf_counter()
        with warnings.catch_warnings():  # k-hat > 0.7 for many points: reported as max_khat, not per batch
            warnings.simplefilter("ignore", InferenceWarning)
            r = inference.run(data_subset(test_spec, index), method="is", backend=backend, params=params,
                              num_samples=num_samples, seed=seed + b, device=device)
        state["log_p"][index] = r.diagnostics["log_evidence_per_point"]
        state["var"][b], state["khat"][b] = r.log_evidence_se ** 2, np.max(r.diagnostics["khat"])
        state["seconds"] += time.perf_counter() - t0
        _save_partial(partial, config, state)
        done = np.isfinite(state["log_p"])
        print(f"{label}: batch {b + 1}/{len(index_batches)}, {done.sum()}/{num} points, NLL so far "
              f"{-state['log_p'][done].mean():.2f}, this batch's largest k-hat {state['khat'][b]:.2f}, "
              f"{state['seconds'][0]:.0f} s", file=sys.stderr, flush=True)
    log_p = state["log_p"]
    return {"nll": float(-log_p.mean()), "se": float(np.sqrt(state["var"].sum()) / num),
            "test_se": float(log_p.std(ddof=1) / np.sqrt(num)) if num > 1 else float("nan"),
            "max_khat": float(np.max(state["khat"])), "seconds": float(state["seconds"][0])}


# ---------------------------------------------------------------------------- the rows' families
@dataclasses.dataclass
class Plan:
    """What a row trains: its training spec, the optimization steps, the steps an epoch makes (also the
    checkpoints' spacing), and the training call (checkpoint options -> ``InferenceResult``)."""

    spec: object
    steps: int
    steps_per_epoch: int
    train: object

    @property
    def epochs(self) -> float:
        return self.steps / self.steps_per_epoch


def vae_plan(row: Row, args):
    from benchmarks import iwae_mnist
    from ppl_models.latent_gaussian.vae import vae_spec

    spec = vae_spec("mnist")
    steps_per_epoch = len(spec.data["x"]) // iwae_mnist.BATCH
    steps, decay = iwae_mnist.schedule(args.stages, steps_per_epoch)
    train = lambda **ckpt: iwae_mnist.layer_fit("numpyro", spec, iwae_mnist.OBJECTIVES[row.objective],  # noqa: E731
                                                steps, decay, args.seed, args.device, num_samples=0, **ckpt)
    return Plan(spec, steps, steps_per_epoch, train)


def sbn_plan(row: Row, args):
    from benchmarks import sbn_mnist
    from ppl_models.discrete_latent.sbn import sbn_spec

    spec = sbn_spec()
    steps_per_epoch = len(spec.data["x"]) // sbn_mnist.BATCH_SIZE
    train = lambda **ckpt: sbn_mnist.fit_sbn(spec, row.objective, args.sbn_steps, sbn_mnist.BATCH_SIZE,  # noqa: E731
                                             sbn_mnist.LEARNING_RATE, sbn_mnist.NUM_PARTICLES,
                                             sbn_mnist.TEMPERATURE, args.seed, args.device, **ckpt)
    return Plan(spec, args.sbn_steps, steps_per_epoch, train)


def made_plan(row: Row, args):
    from benchmarks import made_mnist
    from ppl_models.autoregressive.made import made_spec

    spec = made_spec("train")
    steps_per_epoch = made_mnist.NUM_TRAIN // made_mnist.BATCH_SIZE
    steps = max(1, round(args.made_epochs * steps_per_epoch))
    train = lambda **ckpt: made_mnist.fit_made(spec, "numpyro", steps, made_mnist.BATCH_SIZE,  # noqa: E731
                                               made_mnist.LEARNING_RATE, made_mnist.LR_DECAY, args.seed,
                                               args.device, **ckpt)
    return Plan(spec, steps, steps_per_epoch, train)


def test_spec_of(row: Row, num_test: int):
    """The spec of the first ``num_test`` test images (of the fixed shuffle) for an importance-sampled row."""
    if row.family == "vae":
        from ppl_models.latent_gaussian.vae import vae_spec

        return vae_spec("mnist", "test", num_images=num_test)
    from ppl_models.discrete_latent.sbn import sbn_spec

    return sbn_spec("test", num_images=num_test)


PLANS = {"vae": vae_plan, "sbn": sbn_plan, "made": made_plan}


# ---------------------------------------------------------------------------- timing and files
def stem(row: Row, plan: Plan, args) -> Path:
    """The path, less its suffix, of a row's checkpoint, partial scores and timings under ``--out``."""
    return args.out / f"{row.name}-{plan.steps}steps-seed{args.seed}"


@contextlib.contextmanager
def ledger(path: Path, key: str):
    """Add the wall time spent inside to ``key`` of the JSON file ``path`` (also when interrupted)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        totals = json.loads(path.read_text()) if path.exists() else {}
        totals[key] = totals.get(key, 0.0) + time.perf_counter() - t0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(totals))


def read_times(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def done_keys(path: Path) -> set:
    if not path.exists():
        return set()
    with path.open() as f:
        return {(r["row"], r["backend"], r["steps"], r["seed"], r["num_test"], r["num_samples"])
                for r in csv.DictReader(f)}


def fmt(value, digits: int = 2) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value or "")


def markdown(path: Path) -> str:
    """The CSV as a markdown table."""
    if not path.exists():
        return "(no rows yet)"
    with path.open() as f:
        records = list(csv.DictReader(f))
    lines = ["| row | model | backend | epochs | steps | train s | score s | score | value | se | test se | max k-hat "
             "| test images | k | paper | note |", "|" + "---|" * 16]
    for r in records:
        digits = 5 if r["metric"] == "mmd2" else 2
        lines.append(f"| {r['row']} | {r['model']} | {r['backend']} | {fmt(r['epochs'], 1)} | {r['steps']} "
                     f"| {fmt(r['train_s'], 0)} | {fmt(r['score_s'], 0)} | {r['metric']} | {fmt(r['value'], digits)} "
                     f"| {fmt(r['se'], digits + 1)} | {fmt(r['test_se'], digits)} | {fmt(r['max_khat'])} "
                     f"| {r['num_test']} | {r['num_samples']} "
                     f"| {fmt(r['paper'])} | {r['note']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- running a row
def run_trained_row(row: Row, plan: Plan, args) -> dict:
    """Train (or resume) a row with a likelihood and score it on the test images."""
    base = stem(row, plan, args)
    times = base.with_suffix(".time.json")
    checkpoint = base.with_suffix(".ckpt")
    print(f"{row.name}: {plan.steps} steps ({plan.epochs:g} epochs), checkpoint {checkpoint} every "
          f"{plan.steps_per_epoch} steps", file=sys.stderr, flush=True)
    with ledger(times, "train_s"), interrupt.activity(f"{row.name}: training", checkpoint=str(checkpoint)):
        fit = plan.train(checkpoint=str(checkpoint), checkpoint_every=plan.steps_per_epoch,
                         progress_bar=args.progress)
    record = dict(epochs=round(plan.epochs, 3), steps=plan.steps)
    with ledger(times, "score_s"):
        if row.family == "made":
            scores = inference.held_out_scores(plan.spec, fit)
            record |= dict(metric="nll", value=scores["heldout_nll"], se=0.0, test_se=scores["heldout_nll_test_se"],
                           max_khat="", num_test=NUM_TEST, num_samples="exact")
        else:
            partial = base.with_suffix(f".score-n{args.num_test}-k{args.num_samples}.npz")
            with interrupt.activity(f"{row.name}: scoring", checkpoint=str(partial)):
                scores = importance_nll(test_spec_of(row, args.num_test), fit.params, num_samples=args.num_samples,
                                        batch_size=args.score_batch, partial=partial, device=args.device,
                                        label=row.name)
            record |= dict(metric="nll", value=scores["nll"], se=scores["se"], test_se=scores["test_se"],
                           max_khat=scores["max_khat"], num_test=args.num_test, num_samples=args.num_samples)
    return record | read_times(times)


def run_implicit_row(row: Row, args) -> dict:
    """Fit a generator (no checkpoints: these methods keep none) and score it by MMD² to the test images."""
    from benchmarks import implicit_models
    from ppl_models.implicit.generators import mnist_images

    method, options = implicit_models.MNIST_FITS[row.objective]
    test = mnist_images("test")
    test = test[test_order(len(test))[:args.mmd_points]].astype(float)
    train = mnist_images("train")
    train = train[np.random.default_rng(TRAIN_SUBSET_SEED).choice(len(train), args.mmd_points, replace=False)]
    t0 = time.perf_counter()
    fitted, result = implicit_models.fit("likelihood_table", row.model, row.objective, method, options, args.seed,
                                         args.implicit_steps, num_samples=args.mmd_points)
    t1 = time.perf_counter()
    record = dict(epochs="", steps=args.implicit_steps, train_s=t1 - t0, metric="mmd2", se="", test_se="",
                  max_khat="", num_test=args.mmd_points, num_samples="")
    if result is None:
        return record | dict(value="", score_s=0.0, note=f"training failed: {fitted['error']}")
    value = implicit_models.heldout_mmd2(result.posterior_predictive["x"][0].astype(float), test)
    floor = implicit_models.heldout_mmd2(train.astype(float), test)
    return record | dict(value=value, score_s=time.perf_counter() - t1,
                         note=f"{row.note}; MMD² of training to test images: {floor:.5f}")


def csv_backend(args) -> str:
    """The CSV's backend column: every row runs on NumPyro; a device other than the CPU is named in it."""
    return backend_column("numpyro", args.device)


def run_row(row: Row, plan: Plan | None, args) -> dict:
    """One CSV line: the row trained and scored (``plan`` is None for a generator without a likelihood)."""
    record = run_implicit_row(row, args) if plan is None else run_trained_row(row, plan, args)
    return dict(row=row.name, model=row.model, backend=csv_backend(args), seed=args.seed, paper=row.paper or "",
                note=row.note) | record


def status(rows, args) -> None:
    """How far each row's training and scoring got (from its checkpoint and partial scores)."""
    import pickle

    done = done_keys(args.csv)
    for row in rows:
        if row.family == "implicit":
            print(f"{row.name}: {'in' if csv_key(row, None, args) in done else 'not in'} the CSV (no checkpoints)")
            continue
        plan = PLANS[row.family](row, args)
        if csv_key(row, plan, args) in done:
            print(f"{row.name}: in the CSV ({plan.steps} steps)")
            continue
        base = stem(row, plan, args)
        step = "none"
        if base.with_suffix(".ckpt").exists():
            with base.with_suffix(".ckpt").open("rb") as f:
                step = pickle.load(f)["step"]
        partial = base.with_suffix(f".score-n{args.num_test}-k{args.num_samples}.npz")
        scored = int(np.isfinite(np.load(partial)["log_p"]).sum()) if partial.exists() else 0
        times = read_times(base.with_suffix(".time.json"))  # written as each piece of training or scoring ends
        spent = ", ".join(f"{k.removesuffix('_s')} {v:.0f} s" for k, v in times.items()) or "none recorded yet"
        print(f"{row.name}: trained {step}/{plan.steps} steps, scored {scored}/{args.num_test} test images; "
              f"time spent: {spent}")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="some of " + ",".join(ROWS))
    parser.add_argument("--stages", type=int, default=5, help="the VAE rows: the IWAE paper's first stages "
                        "(3^i epochs each: 5 stages are 121 epochs)")
    parser.add_argument("--made-epochs", type=float, default=20.0)
    parser.add_argument("--sbn-steps", type=int, default=100000)
    parser.add_argument("--implicit-steps", type=int, default=5000)
    parser.add_argument("--num-test", type=int, default=NUM_TEST, help="the first test images of a fixed shuffle")
    parser.add_argument("--num-samples", type=int, default=5000, help="importance samples per test image (k)")
    parser.add_argument("--score-batch", type=int, default=1000, help="test images per importance-sampling run")
    parser.add_argument("--mmd-points", type=int, default=2000, help="generated and test images in the MMD")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--progress", action="store_true", help="training progress bars on stderr")
    parser.add_argument("--out", type=Path, default=RUNS, help="checkpoints, partial scores and timings")
    parser.add_argument("--csv", type=Path, default=OUT_CSV)
    parser.add_argument("--status", action="store_true", help="say how far the rows got, and stop")
    parser.add_argument("--table", action="store_true", help="print the CSV as markdown, and stop")
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.rows.split(",")) - set(ROWS)):
        parser.error(f"unknown rows {unknown}; valid choices: {', '.join(ROWS)}")
    return args


def csv_key(row: Row, plan: Plan | None, args) -> tuple:
    """What identifies a row's CSV line: the row, its backend and device (a GPU run is a line of its own), its
    steps, seed, test images and samples per image."""
    if plan is None:
        return row.name, csv_backend(args), str(args.implicit_steps), str(args.seed), str(args.mmd_points), ""
    if row.family == "made":
        return row.name, csv_backend(args), str(plan.steps), str(args.seed), str(NUM_TEST), "exact"
    return row.name, csv_backend(args), str(plan.steps), str(args.seed), str(args.num_test), str(args.num_samples)


def main(argv=None) -> None:
    args = parse(argv)
    rows = [ROWS[name] for name in args.rows.split(",")]
    if args.status:
        return status(rows, args)
    if not args.table:
        check_device(["numpyro"], args.device)  # now, before a row writes its first file
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still adds up the time spent
        for row in rows:
            plan = PLANS[row.family](row, args) if row.family in PLANS else None
            if csv_key(row, plan, args) in done_keys(args.csv):
                print(f"{row.name}: in {args.csv} already", file=sys.stderr)
                continue
            append_rows(args.csv, FIELDS, [run_row(row, plan, args)])
    print(markdown(args.csv))


if __name__ == "__main__":
    run_benchmark(main)
