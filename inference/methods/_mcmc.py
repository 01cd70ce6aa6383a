"""What the built-in MCMC methods (NUTS, HMC) share: the chain method's check per backend."""
from __future__ import annotations

from inference.options import CHAIN_METHODS
from ppl_models.errors import UnknownChoiceError


def check_chain_method(backend: str, options: dict) -> None:
    if options["chain_method"] not in (None, *CHAIN_METHODS[backend]):
        raise UnknownChoiceError(f"chain_method for backend {backend!r}", options["chain_method"],
                                 CHAIN_METHODS[backend])
