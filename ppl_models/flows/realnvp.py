"""A flow generative model: x_n = f(z_n), z_n ~ Normal(0, I), with f an invertible network.

Generative story: noise z_n ~ Normal(0, I_D) and the data point x_n = f(z_n), where f is a RealNVP
flow (Dinh, Sohl-Dickstein & Bengio 2017; ``ppl_models.nets.RealNVP``): affine couplings, each
moving half the coordinates by a scale and shift computed from the other half, with the coordinates
reversed between them. f is invertible in closed form and its Jacobian is triangular, so the density
of x is exact: log p(x_n) = log N(f^-1(x_n); 0, I) + log |det d f^-1 / dx (x_n)|. The model says so
with the libraries' own ``TransformedDistribution`` of the flow's transforms (Pyro's
``AffineCoupling`` and ``Permute``; on NumPyro a coupling written to match and ``PermuteTransform``).

Like a GAN's generator it maps noise to data, but with a likelihood (contrast ``ring8-implicit``): the
data site is observed under the flow's density, nothing is latent, and fitting is maximum likelihood
(``method="svi"`` with ``guide=None``). A non-finite log-determinant (a scale that overflows, a
transform that cannot be inverted where it is evaluated) makes the loss non-finite, which stops
training with ``TrainingError`` at that step, the last good parameters kept.

- ``ring8-flow``: the 20000 points of the ring of eight Gaussians (``ppl_models.implicit.toys``);
  scored on 2000 fresh points by their exact held-out negative log-likelihood, whose expectation is the
  cross-entropy H(p, q) = H(p) + KL(p || q) >= H(p), the true ring's entropy (``RING.entropy()``).
"""
from __future__ import annotations

import functools

import numpy as np

from ppl_models.errors import DataError
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.implicit.toys import RingOfGaussians
from ppl_models.nets.density import RealNVP
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, HeldOut, Minibatch, ModelSpec

RING = RingOfGaussians()
NUM_DATA, DATA_SEED = 20000, 0  # as ring8-implicit
NUM_HELD_OUT, HELD_OUT_SEED = 2000, 1


def flow_model(x, num_data, dim, flow, alpha=0.0):
    """x_n = f(z_n), z_n ~ Normal(0, I): x_n observed under the flow's exact density. With ``alpha`` > 0
    the data lie in (0, 1) and x_n = (sigmoid(f(z_n)) - alpha) / (1 - 2 alpha): the flow works in
    logit space, logit(alpha + (1 - 2 alpha) x), and the density counts the Jacobian of that map too
    (RealNVP's preprocessing of images, Dinh et al. 2017)."""
    f = pyro.module("flow", flow)
    transforms = [*f.transforms(), *unit_interval(alpha)] if alpha else f.transforms()
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        base = dist.Normal(0.0, 1.0).expand([x.shape[0], dim]).to_event(1)
        pyro.sample("x", dist.TransformedDistribution(base, transforms), obs=x)


def unit_interval(alpha: float) -> list:
    """The map of the flow's logit space onto data in (0, 1), s -> (sigmoid(s) - alpha) / (1 - 2 alpha), as the
    active backend's transforms (``ppl_models.generic.use_backend``)."""
    return [dist.transforms.SigmoidTransform(),
            dist.transforms.AffineTransform(-alpha / (1 - 2 * alpha), 1 / (1 - 2 * alpha))]


def check_flow(flow, dim: int) -> None:
    n = getattr(flow, "in_features", dim)
    if n != dim:
        raise ValueError(f"the flow maps {n}-dimensional points, but the data are {dim}-dimensional")


def flow_spec(name: str, x: np.ndarray, flow, held_out: np.ndarray | None = None, description: str = "",
              alpha: float = 0.0, grey: np.ndarray | None = None) -> ModelSpec:
    """A ``flow_model`` spec on points ``x`` (n, d) with the ``flow`` network factory; fits are scored by
    their exact negative log-likelihood on ``held_out`` points, if given. ``alpha``: ``flow_model``'s;
    ``grey``: uint8 grey levels that training dequantizes afresh for each minibatch (``Minibatch``)."""
    x = np.asarray(x, dtype=np.float32)
    check_flow(flow, x.shape[1])
    if not 0.0 <= alpha < 0.5:
        raise ValueError(f"alpha must be in [0, 0.5) (the logit map of (alpha, 1 - alpha)), not {alpha!r}")
    if alpha and not ((x >= 0) & (x <= 1)).all():
        raise DataError(f"{name!r}: with alpha the data must lie in [0, 1] (the flow works on their logits); "
                        f"they range over [{x.min():g}, {x.max():g}]")
    held = None
    if held_out is not None:
        held = HeldOut("exact_likelihood", functools.partial(flow_spec, name, held_out, flow, alpha=alpha))
    return ModelSpec(
        name=name, data={"x": x, "num_data": x.shape[0], "dim": x.shape[1]} | ({"alpha": alpha} if alpha else {}),
        model=for_backends(flow_model), networks={"flow": flow},
        minibatch=Minibatch(keys=("x",), dequantize={} if grey is None else {"x": grey}),
        data_dims={"x": ("num_data", "dim")}, dtype="float32",
        description=description or __doc__.split("\n\n")[1], held_out=held,
    )


def ring_flow_spec(flow=None) -> ModelSpec:
    """``ring8-flow``, with ``flow`` (default ``RealNVP(2, (64, 64), 6)``)."""
    return flow_spec("ring8-flow", RING.sample(NUM_DATA, DATA_SEED), flow if flow is not None else RealNVP(2),
                     held_out=RING.sample(NUM_HELD_OUT, HELD_OUT_SEED))


register_model("ring8-flow", backends=BACKENDS, reference="",
               description="RealNVP flow, ring of eight Gaussians (exact likelihood)")(ring_flow_spec)
