"""Options of each inference method: defaults, valid values, and validation.

Every option ``inference.run`` accepts is declared here. An option a method does
not know, or a value outside its valid set, is an error that lists the choices;
nothing is silently ignored.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from inference.discrepancies import GENERATOR_LOSSES, KERNELS
from ppl_models.errors import UnknownChoiceError


@dataclass(frozen=True)
class Option:
    default: object
    doc: str
    valid: Callable[[object], bool] = lambda v: True
    expect: str = "any value"
    backends: tuple[str, ...] = ("pyro", "numpyro")
    choices: tuple | None = None  # a fixed set of valid values, listed when another is given


def _int(low: int) -> tuple[Callable, str]:
    return (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low), f"an integer >= {low}"


def _positive() -> tuple[Callable, str]:
    return ((lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < v < math.inf),
            "a finite number > 0")


def _open_unit() -> tuple[Callable, str]:
    return (lambda v: isinstance(v, numbers.Real) and 0 < v < 1), "a number in (0, 1)"


def _one_of(*choices) -> tuple[Callable, str, tuple]:
    return (lambda v: v in choices), "one of " + ", ".join(map(repr, choices)), choices


def _bool() -> tuple[Callable, str]:
    return (lambda v: isinstance(v, bool)), "True or False"


def _positive_numbers(v) -> bool:
    values = v if isinstance(v, tuple) else (v,)
    return len(values) > 0 and all(isinstance(h, numbers.Real) and not isinstance(h, bool) and 0 < h < math.inf
                                   for h in values)


def _or_none(check: tuple) -> tuple:
    """``check`` that also takes None, the default of an option decided per model (not said in errors)."""
    valid, expect, *rest = check
    return ((lambda v: v is None or valid(v)), expect, *rest)


# SVI's and RWS's default step-size schedules: (learning_rate, lr_decay), by whether the model has networks.
# Without: 0.1 decaying to 0.001. The large first step travels far (a regression intercept of 7.75 from 0),
# the small last one ends at the optimum, not in Adam's noise; a constant 0.01 did neither in 5000 steps
# (benchmarks/RESULTS.md, "SVI with its default schedule"). With networks (VAEs, amortized guides): a constant
# 0.001, Adam's own default, since a first step of 0.1 sent ProdLDA's encoder to a NaN loss at step 1.
SCHEDULES = {False: (0.1, 0.01), True: (1e-3, 1.0)}


def schedule_defaults(options: Mapping[str, object], has_networks: bool) -> dict[str, object]:
    """``learning_rate`` and ``lr_decay`` of a training method's ``options``, the unset ones from SCHEDULES."""
    learning_rate, lr_decay = SCHEDULES[has_networks]
    return {"learning_rate": learning_rate if options["learning_rate"] is None else options["learning_rate"],
            "lr_decay": lr_decay if options["lr_decay"] is None else options["lr_decay"]}


def _opt(default, doc, check, backends=("pyro", "numpyro")) -> Option:
    """An option from a ``(valid, expect)`` or ``(valid, expect, choices)`` check."""
    valid, expect, *choices = check
    return Option(default, doc, valid, expect, backends, choices[0] if choices else None)


GUIDES = ("normal", "mvn", "lowrank", "iaf", "delta", "spec")
ELBOS = ("trace", "meanfield", "graph", "renyi", "iwae")
CHAIN_METHODS = {"numpyro": ("parallel", "sequential", "vectorized"), "pyro": ("parallel", "sequential")}

COMMON = {
    "device": _opt("cpu", "where to run: 'cpu' or 'cuda'", _one_of("cpu", "cuda")),
    "dtype": _opt(None, "floating point precision; default: the model's own", _one_of(None, "float32", "float64")),
    "progress_bar": _opt(False, "show a progress bar on stderr", _bool()),
}

def _checkpoints(state: str, unit: str, every: int) -> dict[str, Option]:
    """``checkpoint`` (a file) and ``checkpoint_every`` (how many ``unit`` apart): see inference.checkpoint."""
    return {"checkpoint": _opt(None, f"a file {state} is saved to every checkpoint_every {unit}; a run started "
                                     "again with the same file resumes from it",
                               (lambda v: v is None or isinstance(v, (str, os.PathLike)), "None or a file path")),
            "checkpoint_every": _opt(every, f"{unit} between checkpoints", _int(1))}


_MCMC = {
    "num_warmup": _opt(1000, "warmup (adaptation) iterations per chain", _int(1)),
    "num_samples": _opt(1000, "draws kept per chain", _int(1)),
    "num_chains": _opt(4, "independent chains", _int(1)),
    "target_accept_prob": _opt(0.8, "step-size adaptation target", _open_unit()),
    "chain_method": _opt(None, "numpyro: parallel (default when there are enough host devices), "
                               "sequential or vectorized; pyro: sequential (checked per backend below)",
                          (lambda v: v is None or isinstance(v, str), "None or a chain method name")),
    "jit_compile": _opt(True, "pyro only: compile the potential energy with the PyTorch JIT", _bool(), ("pyro",)),
    **_checkpoints("the sampler state after warmup, with the draws so far,", "draws per chain", 100),
}

_GUIDE = _opt("normal", "normal (AutoNormal), mvn (AutoMultivariateNormal), lowrank, iaf, delta (MAP), "
                         "or spec: the model's own guide", _one_of(*GUIDES))
_TRAINING = {
    "rank": _opt(None, "rank of the lowrank guide",
                 (lambda v: v is None or (isinstance(v, int) and v >= 1), "an integer >= 1")),
    "num_steps": _opt(5000, "optimization steps", _int(1)),
    "batch_size": _opt(None, "data points per minibatch, for models that declare minibatch keys (None: all data)",
                       (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                        "None or an integer >= 1")),
    "learning_rate": _opt(None, "Adam's step size at the first step (default 0.1, or 0.001 for a model with "
                                "networks: see SCHEDULES)", _or_none(_positive())),
    "lr_decay": _opt(None, "factor by which the step size decays, exponentially, over the run: the last step's "
                           "is learning_rate * lr_decay (1: constant; default 0.01, or 1 for a model with networks)",
                     _or_none((lambda v: isinstance(v, (int, float)) and 0 < v <= 1, "a number in (0, 1]"))),
    "num_samples": _opt(None, "posterior draws from the fitted guide (default 1000; 0 for models trained on "
                              "minibatches, whose local latents number one per data point)",
                        (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                         "None or an integer >= 0")),
}

_LIKELIHOOD_FREE = {
    "num_steps": _opt(5000, "generator updates", _int(1)),
    "batch_size": _opt(256, "data points (and generated points) per minibatch", _int(2)),
    "learning_rate": _opt(1e-3, "Adam step size (betas 0.5, 0.999, as is usual for adversarial training)",
                          _positive()),
    "num_samples": _opt(10000, "points drawn from the fitted generator, kept as the posterior predictive", _int(0)),
}


def _discriminator_steps(default: int) -> Option:
    return _opt(default, "discriminator updates per generator update", _int(1))


_FACTORY = (lambda v: v is None or callable(getattr(v, "build", None)), "None or a network factory (ppl_models.nets)")

METHODS: dict[str, dict[str, Option]] = {
    "nuts": {**_MCMC, "max_tree_depth": _opt(10, "maximum NUTS tree depth", _int(1))},
    "hmc": {**_MCMC,
            "num_steps": _opt(None, "leapfrog steps per iteration (default: from trajectory_length)",
                              (lambda v: v is None or (isinstance(v, int) and v >= 1), "None or an integer >= 1")),
            "trajectory_length": _opt(6.283185307179586, "integration time per iteration (when num_steps is None)",
                                      _positive())},
    "svi": {
        "guide": _GUIDE,
        "elbo": _opt("trace", "trace (Trace_ELBO), meanfield (TraceMeanField_ELBO), graph (TraceGraph_ELBO, "
                              "score function), renyi (RenyiELBO; needs alpha), iwae (the importance-weighted "
                              "bound per data point with num_particles samples)", _one_of(*ELBOS)),
        "alpha": _opt(None, "Renyi divergence order, for elbo='renyi' (alpha=0 is the IWAE bound)",
                      (lambda v: v is None or (isinstance(v, numbers.Real) and math.isfinite(v) and v != 1),
                       "a finite number other than 1")),
        "dreg": _opt(False, "elbo='iwae' only: the doubly reparameterized gradient (Tucker et al. 2019)", _bool()),
        **_TRAINING,
        "num_particles": _opt(1, "Monte Carlo samples per ELBO estimate", _int(1)),
        "jit_compile": _opt(False, "pyro only: use Pyro's JIT ELBO", _bool(), ("pyro",)),
        **_checkpoints("the training state", "steps", 1000),
    },
    "rws": {
        "guide": _GUIDE,
        **_TRAINING,
        "num_particles": _opt(5, "importance samples per data point", _int(1)),
    },
    "is": {
        "num_samples": _opt(1000, "proposal draws (per data point when every latent is local to a data plate)",
                            _int(1)),
        "guide": _opt(None, "proposal: prior, or spec (the model's own guide); default spec if the model has one",
                      _one_of(None, "prior", "spec")),
        "params": _opt(None, "fitted parameters of the guide, e.g. an SVI result's .params",
                       (lambda v: v is None or isinstance(v, Mapping), "a dict name -> array")),
        "resample": _opt(None, "keep num_samples posterior draws, resampled from the weighted proposals (default: "
                               "yes, except for minibatched models, whose latents number one per data point)",
                         (lambda v: v is None or isinstance(v, bool), "None, True or False")),
        "chunk_size": _opt(None, "numpyro only: proposal draws evaluated at once (default: as many as fit in "
                                 "about 256 MB); pyro evaluates one draw at a time",
                           (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                            "None or an integer >= 1"), ("numpyro",)),
    },
    "adversarial": {
        **_LIKELIHOOD_FREE,
        "discriminator": _opt(None, "the discriminator, a network factory from data to one logit (default: an "
                                    "MLP with two hidden layers of 128 ReLU units)", _FACTORY),
        "generator_loss": _opt("non_saturating", "non_saturating (-log D(G(z))) or minimax (log(1 - D(G(z))))",
                               _one_of(*GENERATOR_LOSSES)),
        "label_smoothing": _opt(0.0, "one-sided label smoothing: data are labelled 1 - label_smoothing",
                                (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v < 1,
                                 "a number in [0, 1)")),
        "discriminator_steps": _discriminator_steps(1),
    },
    "avb": {
        **{k: v for k, v in _LIKELIHOOD_FREE.items() if k != "num_samples"},  # latents: one per data point
        "discriminator": _opt(None, "T(x, z), a network factory from a data point and its latent value "
                                    "(concatenated) to one logit (default: an MLP with two hidden layers of 128 "
                                    "ReLU units)", _FACTORY),
        # T must keep up with q as q moves; with one update per step it lags and the guide follows a
        # stale ratio: on AVB's toy, 5 updates cut the total variation to the exact posterior by half
        # (benchmarks/RESULTS.md, "Implicit models against their ground truth")
        "discriminator_steps": _discriminator_steps(5),
    },
    "mmd": {
        **_LIKELIHOOD_FREE,
        "kernel": _opt("gaussian", "gaussian (a sum of Gaussian kernels, one per bandwidth) or energy (the energy "
                                   "distance, no bandwidth)", _one_of(*KERNELS)),
        "bandwidth": _opt(None, "Gaussian kernel bandwidth(s): a number or a tuple of numbers (default: the median "
                                "distance between data and generated points, per batch)",
                          (lambda v: v is None or _positive_numbers(v), "None, a number > 0 or a tuple of them")),
    },
}


def method_options(method: str) -> dict[str, Option]:
    if method not in METHODS:
        raise UnknownChoiceError("method", method, METHODS)
    return {**METHODS[method], **COMMON}


def resolve_options(method: str, backend: str, given: Mapping[str, object]) -> dict[str, object]:
    """``given`` checked against ``method``'s options and completed with defaults."""
    table = method_options(method)
    for name, value in given.items():
        if name not in table:
            raise UnknownChoiceError(f"option for method {method!r}", name, table)
        opt = table[name]
        if backend not in opt.backends:
            raise ValueError(f"option {name!r} applies to backend(s) {', '.join(opt.backends)} only, not {backend!r}")
        if not opt.valid(value) and opt.choices:
            raise UnknownChoiceError(f"{name} for method {method!r}", value, [c for c in opt.choices if c is not None])
        if not opt.valid(value):
            raise ValueError(f"option {name}={value!r} for method {method!r} is invalid: expected {opt.expect}")
    options = {k: given.get(k, o.default) for k, o in table.items() if backend in o.backends}
    if method in ("nuts", "hmc") and options["chain_method"] not in (None, *CHAIN_METHODS[backend]):
        raise UnknownChoiceError(f"chain_method for backend {backend!r}", options["chain_method"],
                                 CHAIN_METHODS[backend])
    if method in ("svi", "rws") and options["rank"] is not None and options["guide"] != "lowrank":
        raise ValueError(f"option rank applies to guide='lowrank' only, not guide={options['guide']!r}")
    if method == "mmd" and options["kernel"] == "energy" and options["bandwidth"] is not None:
        raise ValueError("option bandwidth goes with kernel='gaussian'; the energy distance has none")
    if method == "svi":
        if options["dreg"] and options["elbo"] != "iwae":
            raise ValueError(f"option dreg goes with elbo='iwae' only, not elbo={options['elbo']!r}")
        if (options["elbo"] == "renyi") != (options["alpha"] is not None):
            raise ValueError("option alpha goes with elbo='renyi', and elbo='renyi' needs alpha "
                             f"(got elbo={options['elbo']!r}, alpha={options['alpha']!r})")
    return options
