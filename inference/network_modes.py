"""Networks with train and eval modes (batch normalization, dropout) in the inference methods.

Only SVI and RWS train in train mode: their backends enter ``ppl_models.nets.training()`` around
the training steps, and nothing else does, so tracing, guide draws and held-out scores run in eval
mode. Running statistics are carried as each backend keeps them: Pyro's as the modules' buffers
(saved in checkpoints beside the parameter store), NumPyro's in SVI's mutable state (saved in
checkpoints with the rest of ``SVIState``); a result holds them among its ``params``, named as the
parameters are (``decoder$$$norm.running_mean``), so that ``fitted_network`` and importance
sampling with the fitted networks load them. Methods that train networks without a train mode
(adversarial, MMD, AVB), and NumPyro's objectives that drop mutable state, refuse such networks
(``check``) rather than train them in eval mode.
"""
from __future__ import annotations

from ppl_models.nets.factories import has_modes, has_state

TRAIN_MODE_METHODS = ("svi", "rws")  # the methods that train networks in train mode
NETWORK_TRAINING_METHODS = ("adversarial", "mmd", "avb")  # methods that train networks, in eval mode only
NUMPYRO_STATE_ELBOS = ("trace", "meanfield")  # NumPyro's ELBOs with loss_with_mutable_state


def check(spec, backend: str, method: str, options: dict) -> None:
    """A clear error where ``method`` on ``backend`` cannot carry ``spec``'s networks' modes or state."""
    moded = [n for n, f in spec.networks.items() if has_modes(f)]
    if not moded:
        return
    name = moded[0]
    if method in NETWORK_TRAINING_METHODS:
        raise ValueError(f"network {name!r} of {spec.name!r} has batch normalization or dropout, which method "
                         f"{method!r} would train in eval mode only; train it with method='svi' (or 'rws')")
    stateful = [n for n in moded if has_state(spec.networks[n])]
    if not stateful or method not in TRAIN_MODE_METHODS:
        return
    name = stateful[0]
    if backend == "numpyro":
        elbo, particles = options.get("elbo"), options.get("num_particles", 1)
        if method != "svi" or elbo not in NUMPYRO_STATE_ELBOS or particles != 1:
            raise ValueError(
                f"network {name!r} of {spec.name!r} keeps batch-normalization statistics, which NumPyro carries "
                f"only through SVI with elbo='trace' or 'meanfield' and num_particles=1 (its other objectives, "
                f"and several particles, drop mutable state); got method={method!r}"
                + (f", elbo={elbo!r}, num_particles={particles}" if method == "svi" else "")
                + "; use those, or backend='pyro'")
    elif options.get("jit_compile"):
        raise ValueError(f"network {name!r} of {spec.name!r} keeps batch-normalization statistics, which a "
                         "JIT-compiled Pyro ELBO would not update; use jit_compile=False")


def torch_networks(*fns) -> dict:
    """The torch modules bound to ``fns`` by ``ppl_models.spec.bind_networks`` (a ``functools.partial``
    with the networks as keywords), by name."""
    import torch

    return {k: v for fn in fns for k, v in (getattr(fn, "keywords", None) or {}).items()
            if isinstance(v, torch.nn.Module)}


def _live_buffers(networks: dict) -> dict:
    from ppl_models.nets.factories import param_name

    return {param_name(n, k): b for n, net in networks.items() for k, b in net.named_buffers()}


def torch_buffers(networks: dict) -> dict:
    """Every buffer of ``networks`` (running statistics), named as a result names parameters, on the host."""
    return {k: b.detach().cpu().clone() for k, b in _live_buffers(networks).items()}


def restore_torch_buffers(networks: dict, saved: dict) -> None:
    """Copy ``torch_buffers`` output back into the live buffers of ``networks``, in place."""
    import torch

    live = _live_buffers(networks)
    if set(live) != set(saved):
        raise ValueError(f"the checkpoint's network buffers {sorted(saved)} are not this run's {sorted(live)}")
    with torch.no_grad():
        for k, v in saved.items():
            live[k].copy_(v)
