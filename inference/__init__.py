"""Pluggable inference for ``ppl_models`` specs: NUTS/HMC and SVI on Pyro and NumPyro.

``run`` fits one model with one method; ``compare`` scores several methods
against the model's reference posterior (or its held-out data); ``sbc`` checks a
method's calibration by simulation; ``run_sweep`` runs a grid of models, methods
and seeds; ``loo_compare`` ranks models by PSIS-LOO. Results convert to ArviZ.
Backends are imported only when they run.
"""
from inference.api import InferenceWarning, run
from inference.compare import compare
from inference.criticism import add_prior, loo_compare
from inference.held_out import held_out_scores
from inference.options import METHODS
from inference.result import InferenceResult, load_result
from inference.sbc import SBCResult, sbc  # the function: ``inference.sbc(model, method, num_simulations)``
from inference.sweep import Sweep, load_config, run_sweep

__all__ = ["METHODS", "InferenceResult", "InferenceWarning", "SBCResult", "Sweep", "add_prior", "compare",
           "held_out_scores", "load_config", "load_result", "loo_compare", "run", "run_sweep", "sbc"]
