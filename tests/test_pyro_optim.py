"""JointOptimizer (one torch Adam over all of a Pyro run's parameters) against Pyro's own optimizers,
which keep a torch Adam per parameter tensor: Adam is elementwise, so the two must agree."""
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam, ExponentialLR

from inference.backends.pyro_common import backend_context
from inference.backends.pyro_optim import JointOptimizer
from inference.backends.pyro_svi import guarded_step

DATA = {"data": torch.tensor([0.3, -1.2, 2.1, 0.8], dtype=torch.float64)}


def model(data):
    loc = pyro.sample("loc", dist.Normal(0.0, 1.0))
    with pyro.plate("n", len(data)):
        pyro.sample("obs", dist.Normal(loc, 1.0), obs=data)


def make_guide(counter: dict, late: bool):
    """q(loc) = Normal(m + shift, s); with ``late``, ``shift`` gains a parameter that first
    appears at update 5 and one that only odd-numbered updates reach."""
    def guide(data):
        m = pyro.param("m", torch.tensor(0.0))
        s = pyro.param("s", torch.tensor(1.0), constraint=dist.constraints.positive)
        shift = torch.tensor(0.0)
        if late and counter["t"] >= 5:
            shift = shift + pyro.param("late", torch.tensor(0.5))
        if late and counter["t"] % 2:
            shift = shift + pyro.param("odd", torch.tensor(0.1))
        pyro.sample("loc", dist.Normal(m + shift, s))
    return guide


def fit(optim, num_steps: int, late: bool, state: dict | None = None, first: int = 0):
    """``num_steps`` updates from update ``first`` (and ``state``, as ``get_state`` gave it):
    the parameters (unconstrained), the optimizer's state and the parameter store's."""
    counter = {"t": first}
    svi = SVI(model, make_guide(counter, late), optim, Trace_ELBO())
    if state is not None:
        optim.set_state(state)
    for _ in range(num_steps):
        guarded_step(svi, DATA)
        if hasattr(optim, "step"):  # a step-size schedule (pyro.optim.Adam has none)
            optim.step()
        counter["t"] += 1
    store = pyro.get_param_store().get_state()
    params = {k: v.detach().clone() for k, v in store["params"].items()}
    return params, optim.get_state(), store


def assert_params_close(a: dict, b: dict, rtol: float):
    """In float64 the same Adam, fused or per tensor, differs only in rounding (about 1e-16 per
    operation, over tens of updates): rtol 1e-10 leaves room for that and for nothing else."""
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=rtol, err_msg=k)


@pytest.fixture(autouse=True)
def float64():
    with backend_context("cpu", "float64"):
        pyro.clear_param_store()
        yield


def test_joint_adam_follows_pyros_exponential_decay():
    decay, num_steps = 0.1, 40
    pyro.set_rng_seed(0)
    ours, *_ = fit(JointOptimizer(0.05, decay, num_steps), num_steps, late=False)
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    gamma = decay ** (1 / num_steps)
    theirs, *_ = fit(ExponentialLR({"optimizer": torch.optim.Adam, "optim_args": {"lr": 0.05}, "gamma": gamma}),
                    num_steps, late=False)
    assert_params_close(ours, theirs, rtol=1e-10)
    assert abs(float(ours["m"])) > 0.1  # it moved from its initial 0


def test_joint_adam_takes_in_late_parameters_and_skips_unreached_ones_as_pyro_does():
    pyro.set_rng_seed(1)
    ours, *_ = fit(JointOptimizer(0.05), 30, late=True)
    pyro.clear_param_store()
    pyro.set_rng_seed(1)
    theirs, *_ = fit(Adam({"lr": 0.05}), 30, late=True)
    assert_params_close(ours, theirs, rtol=1e-10)
    assert float(ours["late"]) != 0.5 and float(ours["odd"]) != 0.1


def test_joint_adam_state_resumes_exactly():
    pyro.set_rng_seed(2)
    whole, *_ = fit(JointOptimizer(0.05, 0.5, 40), 40, late=True)
    pyro.clear_param_store()
    pyro.set_rng_seed(2)
    _, state, store = fit(JointOptimizer(0.05, 0.5, 40), 20, late=True)
    rng = torch.get_rng_state()
    pyro.clear_param_store()
    pyro.get_param_store().set_state(store)  # a fresh store holding the saved values, as a restored run has it
    torch.set_rng_state(rng)
    resumed, *_ = fit(JointOptimizer(0.05, 0.5, 40), 20, late=True, state=state, first=20)
    assert_params_close(resumed, whole, rtol=1e-12)


def test_joint_adam_refuses_a_state_of_parameters_the_store_does_not_hold():
    _, state, _ = fit(JointOptimizer(0.05), 8, late=True)  # names m, s, late, odd
    pyro.clear_param_store()
    with pytest.raises(ValueError, match=r"\['late', 'odd'\]"):
        fit(JointOptimizer(0.05), 1, late=True, state=state, first=0)  # update 0 creates neither
