"""What the built-in MCMC methods (NUTS, HMC) share: the chain method's check per backend."""
from __future__ import annotations

from inference.options import CHAIN_METHODS
from ppl_models.errors import UnknownChoiceError


def check_chain_method(backend: str, options: dict) -> None:
    if options["chain_method"] not in (None, *CHAIN_METHODS[backend]):
        raise UnknownChoiceError(f"chain_method for backend {backend!r}", options["chain_method"],
                                 CHAIN_METHODS[backend])


def kernel_class(name: str):
    """The ``library`` of an MCMC method: the backend's kernel class ``name`` (``NUTS``, ``HMC``)."""

    def library(backend: str, options: dict):
        from inference.library_options import library_class

        if options.get("engine", "library") != "library":
            return None
        return library_class(backend, "mcmc", name)

    return library
