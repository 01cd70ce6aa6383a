"""Pluggable inference for ``ppl_models`` specs: NUTS/HMC and SVI on Pyro and NumPyro.

``run`` fits one model with one method; ``compare`` scores several methods
against the model's reference posterior; results convert to ArviZ.
Backends are imported only when they run.
"""
from inference.api import InferenceWarning, run
from inference.compare import compare
from inference.criticism import add_prior, loo_compare
from inference.options import METHODS
from inference.result import InferenceResult, load_result

__all__ = ["METHODS", "InferenceResult", "InferenceWarning", "add_prior", "compare", "load_result", "loo_compare",
           "run"]
