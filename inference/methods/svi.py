"""Stochastic variational inference: maximize an ELBO (or the IWAE bound) over an autoguide's
parameters, or the model's own guide's, with Adam on a decaying step size."""
from __future__ import annotations

import math
import numbers

from inference.methods import on_backends
from inference.methods._guides import SVI_GUIDE_OPTION, autoguide_class, check_rank, prepare_training
from inference.objectives import check_particles
from inference.options import ELBOS, GUIDES, TRAINING_OPTIONS, boolean, checkpoints, integer, one_of, opt
from inference.registry import register_method


def check(backend: str, options: dict) -> None:
    check_rank(backend, options)
    check_particles(options["elbo"], options["num_particles"])
    if options["dreg"] and options["elbo"] != "iwae":
        raise ValueError(f"option dreg goes with elbo='iwae' only, not elbo={options['elbo']!r}")
    if options["temperature"] is not None and options["elbo"] not in ("trace", "iwae"):
        raise ValueError(f"option temperature (the relaxed estimator) goes with elbo='trace' or elbo='iwae', "
                         f"not elbo={options['elbo']!r}")
    if (options["elbo"] == "renyi") != (options["alpha"] is not None):
        raise ValueError("option alpha goes with elbo='renyi', and elbo='renyi' needs alpha "
                         f"(got elbo={options['elbo']!r}, alpha={options['alpha']!r})")


register_method(
    "svi", family="vi", backends=("numpyro", "pyro"), takes="model", doc=__doc__, check=check,
    prepare=prepare_training("svi", GUIDES), library=autoguide_class,
    options={
        "guide": SVI_GUIDE_OPTION,
        "elbo": opt("trace", "trace (Trace_ELBO), meanfield (TraceMeanField_ELBO), graph (TraceGraph_ELBO, "
                             "score function), renyi (RenyiELBO; needs alpha), iwae (the importance-weighted "
                             "bound per data point with num_particles samples), vimco (that bound with VIMCO's "
                             "score-function gradient for discrete latents; num_particles >= 2)", one_of(*ELBOS)),
        "alpha": opt(None, "Renyi divergence order, for elbo='renyi' (alpha=0 is the IWAE bound)",
                     (lambda v: v is None or (isinstance(v, numbers.Real) and math.isfinite(v) and v != 1),
                      "a finite number other than 1")),
        "dreg": opt(False, "elbo='iwae' only: the doubly reparameterized gradient (Tucker et al. 2019)", boolean()),
        "temperature": opt(None, "the relaxed estimator: Bernoulli latents replaced in model and guide by their "
                                 "Concrete relaxation at this temperature, a reparameterized gradient, biased "
                                 "(Maddison et al. 2017; Jang et al. 2017); with elbo='trace' or 'iwae'",
                           (lambda v: v is None or (isinstance(v, numbers.Real) and math.isfinite(v) and v > 0),
                            "a positive number")),
        **TRAINING_OPTIONS,
        "num_particles": opt(1, "Monte Carlo samples per ELBO estimate", integer(1)),
        "jit_compile": opt(None, "pyro only: compile the ELBO with Pyro's JIT (default: on for a model without "
                                 "networks trained on all its data with an ELBO Pyro compiles; a model whose "
                                 "Python control flow depends on latent values needs False)",
                           (lambda v: v is None or isinstance(v, bool), "True or False"), ("pyro",)),
        **checkpoints("the training state", "steps", 1000),
    },
)(on_backends(numpyro="inference.backends.numpyro_svi:run", pyro="inference.backends.pyro_svi:run"))
