"""JAX's persistent compilation cache for the ``ppl`` command: programs compiled by one command are
read back by the next, instead of compiled again.

A NumPyro run compiles a hundred or more programs before its first step (each eager operation of a
model's first trace is one, at 35-70 ms each on a CPU, besides the sampler's or optimizer's loop),
and each new ``ppl`` process starts with none. The cache lives in
``$XDG_CACHE_HOME/ppl/jax`` (``~/.cache/ppl/jax``), capped at 1 GiB (JAX evicts the least recently
used). It is configured through JAX's environment variables before JAX is imported, so a variable
the user set wins, and ``PPL_JAX_CACHE=0`` turns it off. Where the folder cannot be written, the
command runs without it.
"""
from __future__ import annotations

import os
from pathlib import Path

MAX_BYTES = 1 << 30


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ppl" / "jax"


def enable() -> Path | None:
    """Point JAX's persistent cache at ``cache_dir()``, caching every program; returns the folder, or
    None where it is turned off or cannot be written. Call before JAX is imported."""
    if os.environ.get("PPL_JAX_CACHE", "1") == "0":
        return None
    folder = Path(os.environ.get("JAX_COMPILATION_CACHE_DIR") or cache_dir())
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(folder))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(MAX_BYTES))
    return folder
