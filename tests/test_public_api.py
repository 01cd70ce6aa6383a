"""The public names: every entry point is importable from ``inference``, and each is what its name says."""
import inspect

import inference


def test_every_public_name_exists():
    missing = [name for name in inference.__all__ if not hasattr(inference, name)]
    assert missing == []


def test_sbc_is_the_function():
    # ``inference.sbc`` was the module, and calling it failed with "'module' object is not callable"
    assert callable(inference.sbc)
    assert list(inspect.signature(inference.sbc).parameters)[:3] == ["model", "method", "num_simulations"]


def test_entry_points_are_functions():
    for name in ("run", "compare", "sbc", "run_sweep", "load_config", "load_result", "loo_compare",
                 "held_out_scores"):
        assert inspect.isfunction(getattr(inference, name)), name


def test_methods_stays_the_function_after_the_method_modules_load():
    """``inference.methods`` is both the registry's listing and the name of the built-in methods'
    package: listing the methods imports the package, which once replaced the function on ``inference``,
    so a second ``inference.methods()`` failed with "'module' object is not callable". Run afresh."""
    import subprocess
    import sys

    code = ("import inference; first = len(inference.methods()); import inference.methods.nuts; "
            "assert callable(inference.methods) and len(inference.methods()) == first, inference.methods")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
