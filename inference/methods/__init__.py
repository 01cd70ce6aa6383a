"""The built-in inference methods, one module each, registered on import (``inference.registry.BUILTINS``).

Each module states the method's options and its checks, and hands the run to the backends'
runners (``inference.backends``), imported only when a run needs them.
"""
from __future__ import annotations

from ppl_models.spec import resolve_function


def on_backends(**runners: str):
    """A ``takes="model"`` runner that calls ``runners[backend]`` (``"module:function"``), imported
    when first used, so that registering a method loads neither torch nor JAX."""

    def run(spec, model, *, backend: str, **kwargs):
        return resolve_function(runners[backend])(spec, model, **kwargs)

    return run
