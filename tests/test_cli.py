"""The ``ppl`` command: models, fit, compare; readable tables, --json, clear errors and exit codes."""
import json
import re

import pytest

from inference.cli import main, parse_method, parse_value


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models(capsys):
    code, out, _ = run_cli(capsys, "models", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["model"] for r in rows} >= {"eight_schools-eight_schools_noncentered",
                                                          "radon_mn-radon_hierarchical_intercept_centered"}
    assert all(r["backends"] == "pyro,numpyro" for r in rows)


def test_fit_json_and_saved_result(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "fit", "kidiq-conjugate_regression", "--backend", "numpyro", "--method", "svi",
                           "--guide", "mvn", "--num-steps", "300", "--num-samples", "50", "--learning-rate", "0.1",
                           "--out", str(tmp_path), "--json")
    report = json.loads(out)
    assert code == 0 and report["info"]["options"]["guide"] == "mvn" and report["info"]["options"]["num_steps"] == 300
    assert set(report["summary"]) == {"beta[0]", "beta[1]"}
    from inference import load_result

    assert load_result(report["saved"]).samples["beta"].shape == (1, 50, 2)


def test_fit_table_and_warnings(capsys):
    code, out, err = run_cli(capsys, "fit", "eight_schools-eight_schools_centered", "--backend", "numpyro",
                             "--method", "nuts", "--num-warmup", "100", "--num-samples", "100", "--num-chains", "2",
                             "--target-accept-prob", "0.6")
    assert code == 0 and "r_hat" in out and "theta[7]" in out
    assert "WARNING: R-hat > 1.01" in err  # 200 draws of the funnel: the chains have not mixed


def test_compare_writes_runs_and_table(capsys, tmp_path):
    code, out, err = run_cli(capsys, "compare", "kidiq-conjugate_regression", "--out", str(tmp_path), "--methods",
                             "numpyro:nuts:num_warmup=200,num_samples=200,num_chains=2",
                             "numpyro:svi:guide=normal,num_steps=500,learning_rate=0.1",
                             "--report", str(tmp_path / "report"))
    assert code == 0
    assert "numpyro nuts" in out and "numpyro svi guide=normal" in out and "max|z|sd" in out
    assert "sd_ratio" in out and "log_Z" not in out  # a column no method fills is left out
    assert max(len(line) for line in out.splitlines() if str(tmp_path) not in line) <= 100  # paths aside
    means = out.split("posterior mean ± sd beside the reference")[1]
    assert "reference" in means and "beta[0]" in means and "beta[1]" in means
    verdicts = [re.search(r"\s(ok|close|off)\s", line) for line in out.split("verdict")[-1].splitlines()
                if line.startswith("numpyro ")]
    assert len(verdicts) == 2 and all(verdicts)
    # progress lines wrap at 100 columns, and a long path moves whole to the next line
    assert f"report written to {tmp_path / 'report' / 'report.html'}" in " ".join(err.split())
    assert "[1/2]" in err and "[2/2]" in err
    assert "num_warmup=200): bulk or tail ESS < 200" in err  # 2 x 200 draws are too few, and the user is told
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "comparison.csv", "numpyro_nuts_num_chains-2_num_samples-200_num_warmup-200.npz",
        "numpyro_svi_guide-normal_learning_rate-0.1_num_steps-500.npz", "report"]


def test_fit_saves_under_runs_by_default_and_fits_100_columns(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "fit", "radon_mn-radon_hierarchical_intercept_noncentered", "--backend",
                           "numpyro", "--method", "nuts", "--num-warmup", "50", "--num-samples", "50",
                           "--num-chains", "1")
    assert code == 0 and max(len(line) for line in out.splitlines() if not line.startswith("saved ")) <= 100
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["mean", "sd"])
    rows = [line.split()[0] for line in lines[header + 1:] if line and not line.startswith(("(", "saved"))]
    assert rows[:3] == ["mu_alpha", "sigma_alpha", "sigma_y"]  # the global parameters first
    assert len(rows) == 20 and "(155 more rows: --all shows every site" in out  # a screenful, not 175 rows
    saved = "runs/radon_mn-radon_hierarchical_intercept_noncentered/numpyro_nuts_num_chains-1_num_samples-50_" \
            "num_warmup-50_seed0.npz"
    assert f"saved {saved}" in out and (tmp_path / saved).is_file()


def test_out_that_cannot_be_written_is_refused_before_the_run(capsys, tmp_path):
    (tmp_path / "a_file").write_text("")
    code, out, err = run_cli(capsys, "fit", "eight_schools-eight_schools_noncentered", "--backend", "numpyro",
                             "--method", "nuts", "--out", str(tmp_path / "a_file" / "runs"))
    assert code == 2 and out == "" and f"{tmp_path / 'a_file'} is a file, not a folder" in err
    assert "Running" not in err and err.count("\n") == 1


def test_checkpoints_say_resumed_and_finished(capsys, tmp_path):
    argv = ["fit", "kidiq-conjugate_regression", "--backend", "numpyro", "--method", "svi", "--num-steps", "40",
            "--checkpoint", str(tmp_path / "run.ckpt"), "--checkpoint-every", "20", "--num-samples", "10",
            "--out", str(tmp_path)]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and "resumed" not in err and "finished run" not in err
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and f"checkpoint {tmp_path / 'run.ckpt'} holds a finished run (40 steps): returning its " \
                         "saved result" in err


def test_help_gives_each_methods_words_and_default(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exit_.value.code == 0
    assert re.search(r"nuts/hmc(/\w+)*: draws kept per chain \(default 1000\)", out), out
    assert "adversarial/mmd: points drawn from the fitted generator" in out
    assert "nuts: maximum NUTS tree depth (default 10)" in out


@pytest.mark.parametrize("command", [["sbc", "nope", "--method", "numpyro:nuts"], ["sweep", "no_such_file.yaml"]])
def test_errors_under_json_are_json(capsys, command):
    code, out, err = run_cli(capsys, *command, "--json")
    assert code == 2 and err == "" and set(json.loads(out)) == {"error", "type"}


def test_fit_an_implicit_model_adversarially(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "fit", "ring8-implicit", "--backend", "numpyro", "--method", "adversarial",
                           "--num-steps", "20", "--num-samples", "100", "--generator-loss", "minimax",
                           "--out", str(tmp_path))
    assert code == 0 and "generated 'x': 100 points of shape (2,)" in out
    assert "final losses (mean of the last 100 steps): discriminator" in out and ", generator " in out
    assert "held-out scores: heldout_mmd2 " in out  # against the true ring's fresh draws


@pytest.mark.parametrize("argv,message", [
    (["fit", "nope", "--backend", "numpyro", "--method", "nuts"], "unknown model 'nope'; valid choices"),
    (["fit", "kidiq-kidscore_momiq", "--backend", "numpyro", "--method", "svi", "--num-warmup", "3"],
     "unknown option for method 'svi' 'num_warmup'"),
    (["compare", "kidiq-kidscore_momiq", "--methods", "numpyro"], "must look like backend:method"),
    (["compare", "radon_mn-radon_hierarchical_intercept_centered", "--methods", "numpyro:nuts",
      "numpyro:svi:guide=bad"], "unknown"),
])
def test_bad_input_exits_2_with_message(capsys, tmp_path, argv, message):
    code, out, err = run_cli(capsys, *argv, *(["--out", str(tmp_path / "o")] if argv[0] == "compare" else []))
    assert code == 2 and message in err and out == ""
    assert not (tmp_path / "o").exists()  # compare validates every method before running any


def test_compare_defaults_follow_the_models_backends(monkeypatch):
    """A NumPyro-only model gets the NumPyro half of the default methods, not an error."""
    import importlib

    import inference
    from ppl_models import ModelSpec, get_model

    compare_module = importlib.import_module("inference.compare")  # the module, not the function

    ran = []
    monkeypatch.setattr(compare_module, "run", lambda spec, method, backend, seed, **o: ran.append(backend) or 1 / 0)
    spec = get_model("kidiq-conjugate_regression")
    numpyro_only = ModelSpec("test-numpyro_only", spec.data, model={"numpyro": spec.model["numpyro"]},
                             reference=spec.reference)
    with pytest.raises(ZeroDivisionError):
        inference.compare(numpyro_only)
    assert ran == ["numpyro"]  # the first default method ran, on NumPyro, after all were validated


def test_parsing():
    assert [parse_value(v) for v in ("3", "0.5", "true", "None", "mvn")] == [3, 0.5, True, None, "mvn"]
    assert parse_method("pyro:svi:guide=mvn,num_steps=10") == ("pyro", "svi", {"guide": "mvn", "num_steps": 10})


@pytest.mark.parametrize("command", ["fit", "loo"])
def test_help_fits_100_columns(capsys, monkeypatch, command):
    """The methods are listed in the --method help, wrapped, not as one 128-column choice set."""
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "avb" in out and max(len(line) for line in out.splitlines()) <= 100
