"""Training methods' optimizer by name (``inference/optimizers.py``): Optax's on NumPyro, torch's on Pyro.

Ground truth: kidiq-conjugate_regression's exact Gaussian posterior. With RMSprop in place of Adam
and the default schedule (step size 0.1 decaying to 0.001 over 5000 steps), the full-rank guide's
mean ends within 0.1 posterior sd of the exact mean, and its sds within 10% of the exact ones, on
both backends: the criterion the default schedule meets with Adam (tests/test_svi_conjugate.py).
Measured over seeds 0-1: means 0.01-0.05 sd off, sds 0-4% off. RMSprop's moving average of squared
gradients has torch's decay here (alpha=0.99); with Optax's default (decay=0.9) the sds ended 8-14%
too wide (a short average of noisy gradients biases the step), with no warning: the convergence
check looks at the locations' gradients only.
"""
import numpy as np
import pytest

import inference
import ppl_models
from inference import optimizers
from inference.cli import main
from tests.test_svi_conjugate import fitted_gaussian


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_rmsprop_by_name_reaches_the_exact_posterior(backend):
    spec = ppl_models.get_model("kidiq-conjugate_regression")
    decay = {"numpyro": {"decay": 0.99}, "pyro": None}[backend]  # Optax's keyword; torch's alpha is 0.99
    result = inference.run(spec, method="svi", backend=backend, guide="mvn", optimizer="RMSprop",
                           optimizer_options=decay, seed=0, num_samples=10)
    assert result.info["options"]["optimizer"] == "RMSprop"
    loc, cov = fitted_gaussian(result.params, backend, "mvn")
    exact_mean, exact_sd = spec.reference.mean["beta"], spec.reference.sd["beta"]
    np.testing.assert_array_less(np.abs(loc - exact_mean) / exact_sd, 0.1)
    np.testing.assert_array_less(np.abs(np.sqrt(np.diag(cov)) / exact_sd - 1), 0.1)


def test_the_optimizer_keywords_reach_the_library():
    """SGD's momentum is Optax's and torch's own keyword: one update of the layer's optimizer on
    f(x) = x^2 / 2 (gradient x) from x = 1 at step size 0.1 is x - 0.1, whatever the momentum;
    the second is x - 0.1 (x + momentum * g1), which tells the momentum was taken."""
    import jax.numpy as jnp
    import torch

    from inference.backends.pyro_optim import JointOptimizer

    def numpyro_two_steps(momentum):
        opt = optimizers.numpyro_optimizer("sgd", 0.1, {"momentum": momentum})
        state = opt.init(jnp.array(1.0))
        for _ in range(2):
            x = opt.get_params(state)
            state = opt.update(x, state, value=0.5 * x**2)
        return float(opt.get_params(state))

    def torch_two_steps(momentum):
        x = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
        opt = JointOptimizer(0.1, optimizer=optimizers.optimizer("pyro", "sgd"), options={"momentum": momentum})
        opt._add([x], ["x"])
        for _ in range(2):
            x.grad = x.detach().clone()
            opt.optimizer.step()
        return float(x.detach())

    g1 = 1.0
    g2 = 1.0 - 0.1 * g1
    for two_steps in (numpyro_two_steps, torch_two_steps):
        assert two_steps(0.0) == pytest.approx(g2 - 0.1 * g2)
        assert two_steps(0.5) == pytest.approx(g2 - 0.1 * (g2 + 0.5 * g1))


@pytest.mark.parametrize(("backend", "name", "options", "culprit"), [
    ("pyro", "rmsprp", None, "did you mean 'rmsprop'"),
    ("numpyro", "lbfgs", None, "unknown Optax optimizer 'lbfgs'"),
    ("numpyro", "sgd", {"momentm": 0.9}, "did you mean 'momentum'"),
    ("pyro", "sgd", {"lr": 0.1}, "the step size is the run's learning_rate"),
    ("pyro", "sgd", {"nesterov": "yes"}, "nesterov='yes'"),
    ("numpyro", "adam", [0.9], "optimizer_options=\\[0.9\\] .* expected a dict"),
])
def test_a_bad_optimizer_is_refused_before_anything_runs(backend, name, options, culprit):
    spec = ppl_models.get_model("eight_schools-eight_schools_noncentered")
    with pytest.raises(ValueError, match=culprit):
        inference.run(spec, method="svi", backend=backend, optimizer=name, optimizer_options=options, num_steps=1)


def test_the_command_line_passes_the_libraries_keywords_through(tmp_path, capsys):
    """``ppl fit`` takes any keyword of the library's NUTS as --keyword VALUE; a misspelt one is named,
    with the closest, in one line."""
    args = ["fit", "eight_schools-eight_schools_noncentered", "--backend", "numpyro", "--method", "nuts",
            "--num-warmup", "50", "--num-samples", "50", "--num-chains", "1", "--out", str(tmp_path)]
    assert main([*args, "--adapt-mass-matrix", "false", "--init-strategy=init_to_median"]) == 0
    saved = inference.load_result(next(tmp_path.glob("*.npz")))
    assert saved.info["options"]["library_options"] == {"adapt_mass_matrix": False,
                                                         "init_strategy": "init_to_median"}
    capsys.readouterr()
    assert main([*args, "--adapt-mas-matrix", "false"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'adapt_mass_matrix'" in err
    assert main([*args, "--adapt-mass-matrix"]) == 2
    assert "option --adapt-mass-matrix needs a value" in capsys.readouterr().err
