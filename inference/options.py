"""Options of inference methods: defaults, valid values, and validation.

Each method declares its options when it registers (``inference.registry``); this module holds
the ``Option`` type, the checks options are built from, the tables several built-in methods share
(MCMC, training, likelihood-free), the options every method takes (``COMMON``), and
``resolve_options``. An option a method does not know, or a value outside its valid set, is an
error that lists the choices (and names the closest); nothing is silently ignored.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ppl_models.errors import UnknownChoiceError


@dataclass(frozen=True)
class Option:
    default: object
    doc: str
    valid: Callable[[object], bool] = lambda v: True
    expect: str = "any value"
    backends: tuple[str, ...] = ("pyro", "numpyro")
    choices: tuple | None = None  # a fixed set of valid values, listed when another is given


def integer(low: int) -> tuple[Callable, str]:
    return (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low), f"an integer >= {low}"


def positive() -> tuple[Callable, str]:
    return ((lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < v < math.inf),
            "a finite number > 0")


def open_unit() -> tuple[Callable, str]:
    return (lambda v: isinstance(v, numbers.Real) and 0 < v < 1), "a number in (0, 1)"


def one_of(*choices) -> tuple[Callable, str, tuple]:
    return (lambda v: v in choices), "one of " + ", ".join(map(repr, choices)), choices


def boolean() -> tuple[Callable, str]:
    return (lambda v: isinstance(v, bool)), "True or False"


def positive_numbers(v) -> bool:
    values = v if isinstance(v, tuple) else (v,)
    return len(values) > 0 and all(isinstance(h, numbers.Real) and not isinstance(h, bool) and 0 < h < math.inf
                                   for h in values)


def or_none(check: tuple) -> tuple:
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


DECAY = ((lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1), "a number in (0, 1]")


def opt(default, doc, check, backends=("pyro", "numpyro")) -> Option:
    """An option from a ``(valid, expect)`` or ``(valid, expect, choices)`` check."""
    valid, expect, *choices = check
    return Option(default, doc, valid, expect, backends, choices[0] if choices else None)


GUIDES = ("normal", "mvn", "lowrank", "iaf", "delta", "spec")
ELBOS = ("trace", "meanfield", "graph", "renyi", "iwae", "vimco")
CHAIN_METHODS = {"numpyro": ("parallel", "sequential", "vectorized"), "pyro": ("parallel", "sequential")}

COMMON = {
    "device": opt("cpu", "where to run: 'cpu' or 'cuda'", one_of("cpu", "cuda")),
    "dtype": opt(None, "floating point precision; default: the model's own", one_of(None, "float32", "float64")),
    "progress_bar": opt(False, "show a progress bar on stderr", boolean()),
}

def checkpoints(state: str, unit: str, every: int) -> dict[str, Option]:
    """``checkpoint`` (a file) and ``checkpoint_every`` (how many ``unit`` apart): see inference.checkpoint."""
    return {"checkpoint": opt(None, f"a file {state} is saved to every checkpoint_every {unit}; a run started "
                                     "again with the same file resumes from it",
                               (lambda v: v is None or isinstance(v, (str, os.PathLike)), "None or a file path")),
            "checkpoint_every": opt(every, f"{unit} between checkpoints", integer(1))}


MCMC_OPTIONS = {
    "num_warmup": opt(1000, "warmup (adaptation) iterations per chain", integer(1)),
    "num_samples": opt(1000, "draws kept per chain", integer(1)),
    "num_chains": opt(4, "independent chains", integer(1)),
    "target_accept_prob": opt(0.8, "step-size adaptation target", open_unit()),
    "dense_mass": opt(False, "adapt a dense mass matrix during warmup, not a diagonal one: for correlated "
                             "posteriors (NumPyro's dense_mass, Pyro's full_mass)", boolean()),
    "chain_method": opt(None, "numpyro: parallel (default when there are enough host devices), "
                               "sequential or vectorized; pyro: sequential (checked per backend below)",
                          (lambda v: v is None or isinstance(v, str), "None or a chain method name")),
    "jit_compile": opt(True, "pyro only: compile the potential energy with the PyTorch JIT", boolean(), ("pyro",)),
    **checkpoints("the sampler state after warmup, with the draws so far,", "draws per chain", 100),
}

GUIDE_OPTION = opt("normal", "normal (AutoNormal), mvn (AutoMultivariateNormal), lowrank, iaf, delta (MAP), "
                         "or spec: the model's own guide", one_of(*GUIDES))
TRAINING_OPTIONS = {
    "rank": opt(None, "rank of the lowrank guide",
                 (lambda v: v is None or (isinstance(v, int) and v >= 1), "an integer >= 1")),
    "num_steps": opt(5000, "optimization steps", integer(1)),
    "batch_size": opt(None, "data points per minibatch, for models that declare minibatch keys (None: all data)",
                       (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                        "None or an integer >= 1")),
    "optimizer": opt("adam", "the optimizer, by name: any of Optax's on numpyro (adam, sgd, rmsprop, adamw, lion, "
                             "...), any of torch.optim's on pyro (adam, sgd, rmsprop, adamw, adadelta, ...)",
                     (lambda v: isinstance(v, str), "an optimizer's name")),
    "optimizer_options": opt(None, "the optimizer's other keywords, as a dict (e.g. {'momentum': 0.9} for sgd; "
                                   "on the command line momentum=0.9,nesterov=true)",
                             (lambda v: v is None or isinstance(v, Mapping), "a dict of keyword arguments")),
    "learning_rate": opt(None, "the optimizer's step size at the first step (default 0.1, or 0.001 for a model "
                                "with networks: see SCHEDULES)", or_none(positive())),
    "lr_decay": opt(None, "factor by which the step size decays, exponentially, over the run: the last step's "
                           "is learning_rate * lr_decay (1: constant; default 0.01, or 1 for a model with networks)",
                     or_none(DECAY)),
    "num_samples": opt(None, "posterior draws from the fitted guide (default 1000; 0 for models trained on "
                              "minibatches, whose local latents number one per data point)",
                        (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                         "None or an integer >= 0")),
}

LIKELIHOOD_FREE_OPTIONS = {
    "num_steps": opt(5000, "generator updates", integer(1)),
    "batch_size": opt(256, "data points (and generated points) per minibatch", integer(2)),
    "learning_rate": opt(1e-3, "Adam step size (betas 0.5, 0.999, as is usual for adversarial training)",
                          positive()),
    "lr_decay": opt(1.0, "factor by which every player's step size decays, exponentially, over the run: the last "
                         "step's is its first step's times lr_decay (1: constant)", DECAY),
    "num_samples": opt(10000, "points drawn from the fitted generator, kept as the posterior predictive", integer(0)),
}


ADAPTIVE_CONTRAST = ((lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and (v == 0 or v >= 2)),
                     "0 (off) or an integer >= 2 (guide draws per data point)")


def discriminator_steps(default: int) -> Option:
    return opt(default, "discriminator updates per generator update", integer(1))


DISCRIMINATOR_LEARNING_RATE = opt(None, "the discriminator's Adam step size, for two time-scale updates "
                                        "(Heusel et al. 2017; default: learning_rate)", or_none(positive()))


FACTORY = (lambda v: v is None or callable(getattr(v, "build", None)), "None or a network factory (ppl_models.nets)")


def plain_option(default, backends: tuple[str, ...]) -> Option:
    """A plug-in's option given as a plain default: its type is the default's type."""
    if isinstance(default, bool):
        check = boolean()
    elif isinstance(default, numbers.Integral):
        check = (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)), "an integer"
    elif isinstance(default, numbers.Real):
        check = ((lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)),
                 "a finite number")
    elif isinstance(default, str):
        check = (lambda v: isinstance(v, str)), "a string"
    else:
        check = (lambda v: True), "any value"
    return opt(default, "", check, backends)


class _OptionTables(Mapping):
    """``METHODS``: each registered method's options, by method name (a live view of the registry)."""

    def __getitem__(self, name: str) -> dict[str, Option]:
        from inference.registry import get_method

        return get_method(name).options

    def __iter__(self):
        from inference.registry import method_names

        return iter(method_names())

    def __len__(self) -> int:
        from inference.registry import method_names

        return len(method_names())


METHODS: Mapping[str, dict[str, Option]] = _OptionTables()


def method_options(method: str) -> dict[str, Option]:
    return {**METHODS[method], **COMMON}


def _library_options(entry, backend: str, declared: dict, extra: dict) -> dict:
    """The options in ``extra`` (not the method's own) that the library class of the run takes
    (``inference.library_options``), checked; any other is an unknown option."""
    from inference import library_options

    cls = entry.library(backend, declared) if entry.library is not None and extra else None
    params = library_options.accepted(cls, declared) if cls is not None else {}
    for name, value in extra.items():
        if name not in params:
            kind, choices = f"option for method {entry.name!r}", [*declared, *params]
            library = f"; they include the keywords of {cls.__module__.split('.')[0]}'s {cls.__name__}" if cls else ""
            raise UnknownChoiceError(kind, name, choices, str(UnknownChoiceError(kind, name, choices)) + library)
        library_options.check_value(name, value, params[name], f"{cls.__name__} ({backend})")
    return dict(extra)


def resolve_options(method: str, backend: str, given: Mapping[str, object]) -> dict[str, object]:
    """``given`` checked against ``method``'s options and completed with defaults; then the method's
    own checks of its options against each other (its ``check``)."""
    from inference.registry import check_backend, get_method

    entry = get_method(method)
    check_backend(entry, backend)
    table = method_options(method)
    declared = {k: given.get(k, o.default) for k, o in table.items() if backend in o.backends}
    extra = {k: v for k, v in given.items() if k not in table}
    for name, value in given.items():
        if name in extra:
            continue
        opt = table[name]
        if backend not in opt.backends:
            raise ValueError(f"option {name!r} applies to backend(s) {', '.join(opt.backends)} only, not {backend!r}")
        if not opt.valid(value) and opt.choices:
            raise UnknownChoiceError(f"{name} for method {method!r}", value, [c for c in opt.choices if c is not None])
        if not opt.valid(value):
            raise ValueError(f"option {name}={value!r} for method {method!r} is invalid: expected {opt.expect}")
    library = _library_options(entry, backend, declared, extra)
    options = declared | ({"library_options": library} if entry.library is not None else {})
    if entry.check is not None:
        entry.check(backend, options)
    return options
