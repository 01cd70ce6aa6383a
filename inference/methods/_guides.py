"""What the methods with a guide (SVI, RWS, importance sampling, AVB) share: checks of the guide."""
from __future__ import annotations

from inference.options import schedule_defaults
from ppl_models.errors import UnknownChoiceError


def check_own_guide(spec, backend: str, method: str, choices) -> None:
    """``guide="spec"`` needs the model's own guide on ``backend``, taking the model's data;
    ``choices`` are the method's other guides, offered instead."""
    if not (spec.guide and backend in spec.guide):
        others = [g for g in choices if g not in (None, "spec")]
        where = f" on {backend} (it has one on {', '.join(spec.guide)} only)" if spec.guide else ""
        raise UnknownChoiceError("guide", "spec", others, f"guide='spec' asks for the model's own guide, but "
                                 f"{spec.name!r} has no guide of its own{where}; use one of: {', '.join(others)}")
    spec.guide_fn(backend)


def check_rank(backend: str, options: dict) -> None:
    if options["rank"] is not None and options["guide"] != "lowrank":
        raise ValueError(f"option rank applies to guide='lowrank' only, not guide={options['guide']!r}")


def prepare_training(method: str, choices):
    """The ``prepare`` of a method trained by stochastic optimization with an autoguide or the model's
    own: the step-size schedule the model's kind calls for, where not given, and the checks of the
    optimizer and of the guide."""

    def prepare(spec, backend: str, options: dict) -> None:
        from inference import optimizers

        optimizers.check(backend, options["optimizer"], options["optimizer_options"])
        options.update(schedule_defaults(options, bool(spec.networks)))
        if options["guide"] == "spec":
            check_own_guide(spec, backend, method, choices)

    return prepare


def autoguide_class(backend: str, options: dict):
    """The ``library`` of a method with an autoguide: the backend's autoguide class (none for the model's own)."""
    from inference.backends import AUTOGUIDES
    from inference.library_options import library_class

    return None if options["guide"] == "spec" else library_class(backend, "autoguide", AUTOGUIDES[options["guide"]])
