"""Three synthetic targets of the Inference Gym (``inference-gym`` 0.0.5), with its ground truth.

* ``inference_gym-banana`` (Haario et al. 1999): x0 ~ Normal(0, 10); x1 ~ Normal(0.03 (x0^2 - 100), 1).
* ``inference_gym-neals_funnel`` (Neal 2003), ten dimensions: v ~ Normal(0, 3);
  z_i ~ Normal(0, exp(v / 2)), i = 1..9.
* ``inference_gym-ill_conditioned_gaussian``: x ~ MultivariateNormal(0, Sigma) in 100 dimensions, the
  eigenvalues of Sigma the inverses of Gamma(0.5, 1) draws (standard deviations from 5.7 to 76 along
  the axes, far more spread along its eigenvectors) and its eigenvectors a random rotation, both
  drawn by the gym from seed 10.

The gym writes each as one vector ``x`` (event shape ``(ndims,)``) with a JAX log density through
TensorFlow Probability's JAX substrate; here each is a model with sample sites, on both backends:
Banana's two coordinates are the sites ``x0`` and ``x1``, the funnel's are ``v`` and ``z`` (the gym's
x[0] and x[1:]), and the Gaussian is the one site ``x``, its Cholesky factor read from the gym's
target (the gym keeps it in float32; it is used as given, in float64). The ground truth is the gym's
``sample_transformations['identity']``: exact means and standard deviations (analytic for all three),
held as an exact ``Reference`` and split as the sites split the vector. Reading it needs the
``inference-gym`` package (and ``tfp-nightly``, which it imports): the package's ``gym`` extra.
Only the factory reads it, so ``ppl models`` lists the targets without it.

The gym's targets are checked against their own log densities at construction time in
``tests/test_gym.py`` (the gym's JAX substrate runs in float32 only: with ``jax_enable_x64`` its
float32 constants refuse float64 points).
"""
from __future__ import annotations

import math

import numpy as np

from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

VERSION = "0.0.5"
BANANA, FUNNEL, GAUSSIAN = ("inference_gym-banana", "inference_gym-neals_funnel",
                            "inference_gym-ill_conditioned_gaussian")


def gym_target(cls_name: str):
    """The gym's target ``cls_name`` (JAX substrate), built with its defaults; a one-line ImportError
    naming the package when it is not installed."""
    try:
        from inference_gym import using_jax as gym
    except ImportError as e:
        raise ImportError(f"the Inference Gym targets need inference-gym {VERSION} and tfp-nightly "
                          f"(pip install 'inference-gym=={VERSION}' tfp-nightly, or the package's 'gym' extra): "
                          f"{e}") from None
    return getattr(gym.targets, cls_name)()


def ground_truth(target) -> tuple[np.ndarray, np.ndarray]:
    """The gym's exact mean and standard deviation of ``x`` (the identity transformation)."""
    identity = target.sample_transformations["identity"]
    return np.asarray(identity.ground_truth_mean, float), np.asarray(identity.ground_truth_standard_deviation, float)


def banana(curvature):
    x0 = pyro.sample("x0", dist.Normal(0.0, 10.0))
    pyro.sample("x1", dist.Normal(curvature * (x0**2 - 100.0), 1.0))


def neals_funnel(ndims):
    v = pyro.sample("v", dist.Normal(0.0, 3.0))
    with pyro.plate("dims", ndims - 1):
        pyro.sample("z", dist.Normal(0.0, math.e ** (v / 2.0)))


def ill_conditioned_gaussian(scale_tril):
    pyro.sample("x", dist.MultivariateNormal(0.0 * scale_tril[:, 0], scale_tril=scale_tril))


def _story(i: int) -> str:
    """The ``i``-th target's bullet of the module docstring."""
    return __doc__.split("\n\n")[1].split("* ")[i + 1].strip()


def _reference(name: str, mean: dict, sd: dict) -> Reference:
    return Reference(mean=mean, sd=sd, source=f"inference_gym {VERSION} ground truth ({name}, exact)")


@register_model(BANANA, backends=BACKENDS, reference=f"inference_gym {VERSION} ground truth (Banana, exact)",
                description="Inference Gym's Banana, 2 dimensions (curvature 0.03)")
def _banana() -> ModelSpec:
    target = gym_target("Banana")
    mean, sd = ground_truth(target)
    return ModelSpec(
        name=BANANA, data={"curvature": 0.03}, model=for_backends(banana),
        reference=_reference("Banana", {"x0": mean[0], "x1": mean[1]}, {"x0": sd[0], "x1": sd[1]}),
        description=_story(0),
    )


@register_model(FUNNEL, backends=BACKENDS, reference=f"inference_gym {VERSION} ground truth (NealsFunnel, exact)",
                description="Inference Gym's Neal's funnel, 10 dimensions")
def _funnel() -> ModelSpec:
    target = gym_target("NealsFunnel")
    mean, sd = ground_truth(target)
    return ModelSpec(
        name=FUNNEL, data={"ndims": int(target.event_shape[0])}, model=for_backends(neals_funnel),
        reference=_reference("NealsFunnel", {"v": mean[0], "z": mean[1:]}, {"v": sd[0], "z": sd[1:]}),
        description=_story(1),
    )


@register_model(GAUSSIAN, backends=BACKENDS,
                reference=f"inference_gym {VERSION} ground truth (IllConditionedGaussian, exact)",
                description="Inference Gym's ill-conditioned Gaussian, 100 dimensions")
def _gaussian() -> ModelSpec:
    target = gym_target("IllConditionedGaussian")
    mean, sd = ground_truth(target)
    scale_tril = np.asarray(target._gaussian.scale.to_dense(), float)  # the gym keeps no public covariance
    implied = np.sqrt(np.einsum("ij,ij->i", scale_tril, scale_tril))
    if not np.allclose(implied, sd, rtol=1e-5):
        raise ValueError(f"{GAUSSIAN}: the gym's Cholesky factor implies standard deviations up to "
                         f"{np.max(np.abs(implied / sd - 1)):.1e} (relative) from its ground truth")
    return ModelSpec(
        name=GAUSSIAN, data={"scale_tril": scale_tril}, model=for_backends(ill_conditioned_gaussian),
        reference=_reference("IllConditionedGaussian", {"x": mean}, {"x": sd}),
        data_dims={"scale_tril": (len(sd), len(sd))},
        description=_story(2),
    )
