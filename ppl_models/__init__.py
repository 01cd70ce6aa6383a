"""Model specifications: generative processes, their data and their ground truth.

Importing this package imports neither torch nor jax; a backend's model code is
imported when that backend runs.
"""
from ppl_models.errors import (
    DataError,
    DataNotFoundError,
    DeviceError,
    PPLError,
    SiteMismatchError,
    TrainingError,
    UnknownChoiceError,
)
from ppl_models.reference import Reference
from ppl_models.registry import get_model, list_models, register_model
from ppl_models.spec import BACKENDS, HeldOut, Minibatch, ModelSpec

__all__ = [
    "BACKENDS", "DataError", "DataNotFoundError", "DeviceError", "HeldOut", "Minibatch", "ModelSpec", "PPLError",
    "Reference", "SiteMismatchError", "TrainingError", "UnknownChoiceError", "get_model", "list_models",
    "register_model",
]
