"""Benchmark scripts end as the ``ppl`` command does (``benchmarks.entry``): bad input in one line with
status 2, Ctrl-C in one line with status 130, no traceback."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env(**extra):
    return {**{k: v for k, v in os.environ.items() if k != "PPL_DATA_DIR"}, **extra}


def test_a_missing_data_file_is_one_line_naming_it(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.likelihood_table", "--status", "--rows", "made"],
                          cwd=REPO, env=_env(PPL_DATA_DIR=str(tmp_path)), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("likelihood_table: error: data file 'mnist/binarized_mnist.npz' not found")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


SLOW = """
import time
from benchmarks.entry import run_benchmark

def main():
    print("started", flush=True)
    while True:
        time.sleep(0.05)

run_benchmark(main)
"""


def test_ctrl_c_is_one_line_and_status_130(tmp_path):
    script = tmp_path / "slow_benchmark.py"
    script.write_text(SLOW)
    child = subprocess.Popen([sys.executable, str(script)], cwd=REPO, env=_env(PYTHONPATH=str(REPO)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert err.strip().startswith("__main__: interrupted: python -m __main__ after"), err
    assert "Traceback" not in err


WARNS = """
import warnings
from benchmarks.entry import run_benchmark
from inference import InferenceWarning

def main():
    warnings.warn("2 of 1000 transitions diverged", InferenceWarning)
    warnings.warn("something else", DeprecationWarning)

run_benchmark(main)
"""


def test_a_diagnostic_warning_is_one_line_and_other_warnings_keep_their_source(tmp_path):
    script = tmp_path / "warning_benchmark.py"
    script.write_text(WARNS)
    done = subprocess.run([sys.executable, "-W", "always", str(script)], cwd=REPO, env=_env(PYTHONPATH=str(REPO)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "__main__: warning: 2 of 1000 transitions diverged" in lines
    assert "InferenceWarning" not in done.stderr, lines  # neither the category nor the warn call's source line
    assert any("warning_benchmark.py" in x and "DeprecationWarning: something else" in x for x in lines), lines


def test_topic_models_refuses_a_new_vocabulary_in_the_default_csv(capsys):
    from benchmarks import topic_models

    with pytest.raises(SystemExit) as info:
        topic_models.main(["--max-words", "3000", "--methods", "lda"])
    assert info.value.code == 2
    assert "--min-df and --max-words change the vocabulary: give --out a file of its own" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["implicit_models", "ring", "--device", "cuda"],
                                  ["implicit_models", "mnist", "linear", "--device", "cuda"],
                                  ["topic_models", "--device", "cuda", "--methods", "prodlda", "--out", "runs.csv"],
                                  ["likelihood_table", "--rows", "iwae_k5", "--device", "cuda", "--out", "runs",
                                   "--csv", "runs.csv"]])
def test_a_gpu_asked_for_where_there_is_none_is_one_line_before_any_work(argv, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv = [str(tmp_path / a) if a in ("runs", "runs.csv") else a for a in argv]
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{argv[0]}", *argv[1:]], cwd=REPO,
                          env=_env(PPL_DATA_DIR=str(tmp_path)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"{argv[0]}: error: device='cuda' was asked for, but "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "runs.csv").exists() and not (tmp_path / "runs").exists()


def test_topic_models_keeps_gpu_runs_out_of_the_default_csv(capsys):
    from benchmarks import topic_models

    with pytest.raises(SystemExit) as info:
        topic_models.main(["--device", "cuda", "--methods", "prodlda"])
    assert info.value.code == 2
    assert "--device cuda: give --out a file of its own" in capsys.readouterr().err


@pytest.mark.parametrize("rows_before_ctrl_c", [0, 1])
def test_topic_models_stopped_keeps_its_rows_and_no_header_only_file(rows_before_ctrl_c, tmp_path, monkeypatch):
    from benchmarks import topic_models

    class Corpus:
        def describe(self):
            return "corpus"

    fits = []

    def fit(method, name, corpus, k, seed, args):
        if len(fits) == rows_before_ctrl_c:
            raise KeyboardInterrupt
        fits.append(method)
        return {"perplexity": 1000.0, "npmi": 0.1, "diversity": 0.9, "top_words": [["a"] * 5]}, 1.0, "pyro"

    monkeypatch.setattr(topic_models, "load_corpus", lambda name: name)
    monkeypatch.setattr(topic_models, "prepare_corpus", lambda corpus, **kw: Corpus())
    monkeypatch.setattr(topic_models, "fit", fit)
    out = tmp_path / "runs.csv"
    with pytest.raises(KeyboardInterrupt):
        topic_models.main(["--corpus", "ap", "--topics", "20", "--seeds", "0", "1", "--methods", "prodlda",
                           "--out", str(out)])
    if rows_before_ctrl_c == 0:
        assert not out.exists()
    else:
        import pandas as pd

        assert pd.read_csv(out)[["corpus", "seed", "perplexity"]].values.tolist() == [["ap", 0, 1000.0]]
