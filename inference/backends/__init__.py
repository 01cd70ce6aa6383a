"""Inference backends: one module per (backend, method family).

Each exposes ``run(spec, model, *, seed, device, dtype, progress_bar, **options)``
returning an ``InferenceResult``. Pyro and NumPyro spell their autoguides and
ELBOs the same, so the option names map to class names once, here.
"""
import numpy as np

AUTOGUIDES = {
    "normal": "AutoNormal",
    "mvn": "AutoMultivariateNormal",
    "lowrank": "AutoLowRankMultivariateNormal",
    "iaf": "AutoIAFNormal",
    "delta": "AutoDelta",
}
# "iwae" and "vimco" are ours (inference.objectives), not library classes.
ELBOS = {"trace": "Trace_ELBO", "meanfield": "TraceMeanField_ELBO", "graph": "TraceGraph_ELBO", "renyi": "RenyiELBO"}


def chain_seeds(seed: int, num_chains: int) -> list[int]:
    """Independent 32-bit seeds for each chain, derived from the run's seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(num_chains)]


def hmc_path_length(opts: dict) -> dict:
    """HMC's path length: a fixed number of leapfrog steps, or else an integration time.

    Both libraries take one or the other; given both, step-size adaptation is switched off.
    NumPyro's trajectory_length defaults to 2 pi, so it is set to None explicitly.
    """
    if opts["num_steps"] is not None:
        return {"num_steps": opts["num_steps"], "trajectory_length": None}
    return {"trajectory_length": opts["trajectory_length"]}


def autoguide_kwargs(guide: str, rank) -> dict:
    return {"rank": rank} if guide == "lowrank" and rank is not None else {}


def elbo_kwargs(elbo: str, num_particles: int, alpha) -> dict:
    return {"num_particles": num_particles, **({"alpha": alpha} if elbo == "renyi" else {})}


def estimator(method: str, opts: dict) -> str | None:
    """The importance-weighted estimator (``inference.objectives``) a run trains with, if any."""
    if method == "rws":
        return "rws"
    if opts.get("elbo") == "iwae":
        return "dreg" if opts["dreg"] else "iwae"
    if opts.get("elbo") == "vimco":
        return "vimco"
    return None


def check_device(backends, device: str) -> None:
    """A ``DeviceError`` now, naming what is missing, for a ``device`` that one of ``backends`` cannot
    reach (``cuda`` without a GPU), rather than after a first backend's long run."""
    if "numpyro" in backends:
        from inference.backends.numpyro_common import jax_device

        jax_device(device)
    if "pyro" in backends:
        from inference.backends.pyro_common import torch_device

        torch_device(device)


def benchmark_backends(backends: str, device: str, torch_threads: int | None = None) -> list[str]:
    """The backends a benchmark's ``--backends a,b`` names, checked against ``device``
    (``check_device``), with PyTorch held to ``torch_threads`` CPU threads when given (on a machine
    other jobs share, its spinning thread pool slows every step)."""
    names = [b for b in backends.split(",") if b]
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    check_device(names, device)
    return names
