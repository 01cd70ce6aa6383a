"""The ``ppl`` command keeps JAX's compiled programs on disk (``inference/compilation_cache.py``)."""
import os
import subprocess
import sys

from inference import compilation_cache

JAX_VARIABLES = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                 "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "JAX_COMPILATION_CACHE_MAX_SIZE")


def clean(monkeypatch, tmp_path):
    for name in (*JAX_VARIABLES, "PPL_JAX_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))


def test_the_cache_goes_under_the_users_cache_folder(monkeypatch, tmp_path):
    clean(monkeypatch, tmp_path)
    assert compilation_cache.enable() == tmp_path / "ppl" / "jax"
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "ppl" / "jax")
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"


def test_the_users_own_setting_wins_and_it_can_be_turned_off(monkeypatch, tmp_path):
    clean(monkeypatch, tmp_path)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    assert compilation_cache.enable() == tmp_path / "mine"
    clean(monkeypatch, tmp_path)
    monkeypatch.setenv("PPL_JAX_CACHE", "0")
    assert compilation_cache.enable() is None and "JAX_COMPILATION_CACHE_DIR" not in os.environ


def test_an_unwritable_place_runs_without_it(monkeypatch, tmp_path):
    clean(monkeypatch, tmp_path)
    (tmp_path / "ppl").write_text("a file where the folder would go")
    assert compilation_cache.enable() is None and "JAX_COMPILATION_CACHE_DIR" not in os.environ


def test_a_ppl_command_fills_the_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in JAX_VARIABLES}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    done = subprocess.run([sys.executable, "-c", "import sys; from inference.cli import main; sys.argv[0] = 'ppl'; "
                           "sys.exit(main())", "fit", "eight_schools-eight_schools_noncentered", "--backend", "numpyro",
                           "--method", "nuts", "--num-warmup", "20", "--num-samples", "20", "--num-chains", "1",
                           "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "cache" / "ppl" / "jax").iterdir())) > 10
