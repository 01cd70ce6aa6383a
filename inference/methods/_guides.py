"""What the methods with a guide (SVI, RWS, importance sampling, AVB) share: checks of the guide."""
from __future__ import annotations

from inference.options import GUIDES, one_of, opt, schedule_defaults
from ppl_models.errors import OptionError, UnknownChoiceError

# SVI's guides: the autoguides, the model's own, or none at all (maximum likelihood of a model without latents)
SVI_GUIDE_OPTION = opt("normal", "normal (AutoNormal), mvn (AutoMultivariateNormal), lowrank, iaf, delta (MAP), "
                                 "spec: the model's own guide, or None: no guide, for a model without latent "
                                 "variables (MADE, a flow): maximum likelihood of its networks and parameters",
                       one_of(*GUIDES, None))


def check_no_latent(latent, name: str) -> None:
    """``guide=None`` fits a model's parameters by maximum likelihood: it has no latent site to guide."""
    if latent:
        raise OptionError(f"guide=None fits a model without latent variables, but {name!r} has latent site(s) "
                          f"{sorted(latent)}; give them a guide (guide='normal', 'spec', ...)")


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

    if options["guide"] in ("spec", None):  # the model's own guide, or none
        return None
    return library_class(backend, "autoguide", AUTOGUIDES[options["guide"]])
