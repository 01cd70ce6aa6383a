"""Pluggable inference for ``ppl_models`` specs on Pyro and NumPyro.

``run`` fits one model with one method (``register_method`` adds one: ``inference.registry``;
``Potential`` is what a JAX method gets of a model); ``compare`` scores several methods
against the model's reference posterior (or its held-out data); ``sbc`` checks a
method's calibration by simulation; ``run_sweep`` runs a grid of models, methods
and seeds; ``loo_compare`` ranks models by PSIS-LOO. Results convert to ArviZ.
Backends are imported only when they run.
"""
# The package of built-in methods loads before ``methods`` (the function) is bound below: importing a
# subpackage binds its name on the parent, and the registry imports it when it first lists the methods,
# which would replace the function ``inference.methods`` with the package.
import inference.methods  # noqa: F401, I001
from inference.api import InferenceWarning, run
from inference.compare import compare
from inference.criticism import add_prior, loo_compare
from inference.held_out import held_out_scores
from inference.options import METHODS
from inference.registry import get_method, methods, register_method
from inference.result import InferenceResult, load_result
from inference.sbc import SBCResult, sbc  # the function: ``inference.sbc(model, method, num_simulations)``
from inference.sweep import Sweep, load_config, run_sweep

__all__ = ["METHODS", "InferenceResult", "InferenceWarning", "Potential", "SBCResult", "Sweep", "add_prior", "compare",
           "get_method", "held_out_scores", "load_config", "load_result", "loo_compare", "methods", "register_method",
           "run", "run_sweep", "sbc"]


def __getattr__(name):
    if name == "Potential":  # imports JAX: only when asked for
        from inference.potential import Potential

        return Potential
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
