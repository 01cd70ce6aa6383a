"""The leaderboard: how runs are scored, passed, ranked and summed up per method (on a made-up index),
and ``ppl leaderboard`` on a small grid: a failing method is a scored failure, a restart runs only
what is missing, bad names are refused before anything runs, and the heat map page renders."""
import json
import math
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from inference.cli import main
from inference.leaderboard import PASS_R_HAT, PASS_SD, score
from inference.sweep import SweepConfigError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _index(rows):
    base = {"backend": "numpyro", "options": "{}", "status": "ok", "error": "", "means_within_mcse": True,
            "max_abs_z_mean": 0.05, "max_abs_z_sd": 0.03, "divergences": 0, "max_r_hat": 1.002, "wall_s": 10.0,
            "ess_per_s": 100.0, "peak_mb": 500.0}
    return pd.DataFrame([base | {"run_id": f"r{i}"} | row for i, row in enumerate(rows)])


def test_a_run_passes_only_within_mcse_within_15_percent_without_divergences_and_with_r_hat_at_most_1_01():
    rows = [
        {"model": "a", "method": "nuts", "seed": 0},  # passes
        {"model": "a", "method": "nuts", "seed": 1, "max_abs_z_sd": PASS_SD + 0.01},  # an sd 16% off
        {"model": "a", "method": "hmc", "seed": 0, "divergences": 3},
        {"model": "a", "method": "hmc", "seed": 1, "max_r_hat": PASS_R_HAT + 0.005},
        {"model": "a", "method": "svi", "seed": 0, "means_within_mcse": False, "max_abs_z_mean": 0.4,
         "divergences": math.nan, "max_r_hat": math.nan, "ess_per_s": math.nan},
        {"model": "a", "method": "svi", "seed": 1, "divergences": math.nan, "max_r_hat": math.nan,
         "ess_per_s": math.nan},  # passes: an optimizer has no divergences or R-hat to fail on
        {"model": "a", "method": "sa", "seed": 0, "status": "error", "error": "TrainingError: NaN at step 3"},
        {"model": "a", "method": "sa", "seed": 1, "status": "error", "error": "WorkerDied: exit code -9"},
    ]
    board = score(_index(rows), "store")
    assert board.runs["passed"].tolist() == [True, False, False, False, False, True, False, False]
    assert board.runs["error"].iloc[1] == pytest.approx(PASS_SD + 0.01)  # the larger of the two errors
    assert board.runs["error"].iloc[4] == pytest.approx(0.4) and np.isnan(board.runs["error"].iloc[6])
    cells = board.cells.set_index("method")
    assert cells.loc["numpyro sa", "failures"] == 2 and "TrainingError" in cells.loc["numpyro sa", "failure"]
    methods = board.methods
    assert methods.loc["numpyro nuts", "pass_rate"] == 0.5 and methods.loc["numpyro hmc", "pass_rate"] == 0
    assert methods.loc["numpyro sa", "failures"] == 2 and methods.index[-1] == "numpyro sa"


def test_methods_are_ranked_per_posterior_passing_and_fast_first_then_by_error_then_failures():
    rows = []
    for posterior in ("p", "q"):
        rows += [
            {"model": posterior, "method": "slow", "seed": 0, "wall_s": 50.0},  # passes, slowly
            {"model": posterior, "method": "fast", "seed": 0, "wall_s": 5.0},  # passes, fast
            {"model": posterior, "method": "close", "seed": 0, "means_within_mcse": False, "max_abs_z_mean": 0.3},
            {"model": posterior, "method": "far", "seed": 0, "means_within_mcse": False, "max_abs_z_mean": 3.0,
             "wall_s": 1.0},
            {"model": posterior, "method": "crash", "seed": 0, "status": "error", "error": "ValueError: x"},
        ]
    board = score(_index(rows), "store")
    ranks = board.cells[board.cells["posterior"] == "q"].set_index("method")["rank"]
    assert ranks.to_dict() == {"numpyro fast": 1, "numpyro slow": 2, "numpyro close": 3, "numpyro far": 4,
                               "numpyro crash": 5}
    assert list(board.methods.index[:2]) == ["numpyro fast", "numpyro slow"]
    assert board.methods.loc["numpyro far", "mean_rank"] == 4 and board.methods.loc["numpyro far", "posteriors"] == 2


POSTERIOR = "kidiq-kidscore_momiq"
GOOD = "numpyro:svi:guide=mvn,num_steps=300,learning_rate=0.05"
BROKEN = "numpyro:svi:guide=normal,num_steps=20,learning_rate=1.0e+6"  # its loss is NaN: a TrainingError


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    store = tmp_path_factory.mktemp("leaderboard") / "store"
    argv = ["leaderboard", "--posteriors", POSTERIOR, "eight_schools-eight_schools_noncentered",
            "--methods", GOOD, BROKEN, "--seeds", "0", "--store", str(store)]
    return store, argv, main(argv)


def test_ppl_leaderboard_scores_a_failing_method_and_writes_its_tables_and_pages(board, capsys):
    store, _, status = board
    assert status == 0  # a method that fails is a finding, not a failure of the leaderboard
    cells = pd.read_csv(store / "leaderboard.csv").set_index(["posterior", "method"])
    broken = cells.xs("numpyro svi guide=normal learning_rate=1000000.0 num_steps=20", level="method")
    assert (broken["failures"] == 1).all() and broken["failure"].str.contains("TrainingError").all()
    good = cells.xs("numpyro svi guide=mvn learning_rate=0.05 num_steps=300", level="method")
    assert (good["failures"] == 0).all() and np.isfinite(good["error"]).all() and (good["rank"] == 1).all()
    with np.load(next((store / "results").glob("*.npz"))) as saved:  # draws, not the pointwise arrays
        assert any(k.startswith("samples/") for k in saved.files)
        assert not any(k.startswith(("log_likelihood/", "posterior_predictive/")) for k in saved.files)
    methods = pd.read_csv(store / "methods.csv")
    assert set(methods["failures"]) == {0, 2}
    page = (store / "leaderboard.html").read_text()
    for posterior in (POSTERIOR, "eight_schools-eight_schools_noncentered"):
        assert f'href="reports/{posterior}/report.html"' in page
        assert "inference methods against the reference" in (store / "reports" / posterior / "report.html").read_text()


def test_a_restart_runs_only_the_missing_runs(board, capsys):
    store, argv, _ = board
    lost = next((store / "runs").glob(f"{POSTERIOR}__*mvn*.json"))
    before = json.loads(lost.read_text())
    lost.unlink()
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "4 runs, 3 already in" in err and "running 1" in err and "[1/1]" in err
    assert json.loads(lost.read_text())["scores"]["max_abs_z_mean"] == pytest.approx(
        before["scores"]["max_abs_z_mean"], rel=1e-6)  # the same seed gives the same run
    capsys.readouterr()
    assert main([*argv, "--score-only", "--no-reports"]) == 0  # scores the store, runs nothing
    captured = capsys.readouterr()
    assert "4 runs (2 failed) on 2 posteriors" in captured.out and "running" not in captured.err


def test_an_archive_of_the_run_records_resumes_and_scores_the_leaderboard_elsewhere(board, tmp_path, capsys):
    from benchmarks.leaderboard import archive

    store, argv, _ = board
    assert archive.pack(store, tmp_path / "runs.jsonl.gz") == 4
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "runs").mkdir(parents=True)
    mine = next((store / "runs").glob("*.json"))
    (elsewhere / "runs" / mine.name).write_text(json.dumps({"run_id": mine.stem, "status": "made here"}))
    assert archive.unpack(tmp_path / "runs.jsonl.gz", elsewhere) == (3, 1)
    assert json.loads((elsewhere / "runs" / mine.name).read_text())["status"] == "made here"  # never replaced
    (elsewhere / "runs" / mine.name).unlink()
    assert archive.main(["unpack", str(tmp_path / "runs.jsonl.gz"), str(elsewhere)]) == 0
    capsys.readouterr()
    where = argv.index("--store") + 1
    assert main([*argv[:where], str(elsewhere), *argv[where + 1:], "--no-reports"]) == 0
    assert "4 runs, 4 already in" in capsys.readouterr().err  # nothing runs again
    assert main([*argv[:where], str(elsewhere), *argv[where + 1:], "--score-only", "--no-reports"]) == 0
    assert "4 runs (2 failed) on 2 posteriors" in capsys.readouterr().out
    assert archive.main(["unpack", str(tmp_path / "missing.jsonl.gz"), str(elsewhere)]) == 2
    assert "missing.jsonl.gz" in capsys.readouterr().err


def test_the_heat_map_figure_and_method_table_come_from_an_archive(board, tmp_path, capsys):
    from benchmarks.leaderboard import archive, heat_map

    store, _, _ = board
    archive.pack(store, tmp_path / "runs.jsonl.gz")
    capsys.readouterr()
    assert heat_map.main([str(tmp_path / "runs.jsonl.gz"), str(tmp_path / "map.png")]) == 0
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")
            for line in out.splitlines() if line.startswith("| numpyro")}
    good, broken = (rows[f"numpyro svi guide={g}"] for g in ("mvn learning_rate=0.05 num_steps=300",
                                                            "normal learning_rate=1000000.0 num_steps=20"))
    rate = pd.read_csv(store / "methods.csv").set_index("method")["pass_rate"]
    assert good[1:5] == ["2", "2", f"{rate[good[0].lstrip('| ')]:.2f}", "0 (0)"]
    assert broken[1:5] == ["2", "2", "0.00", "2 (0)"]
    assert (tmp_path / "map.png").read_bytes().startswith(b"\x89PNG")
    assert heat_map.main([str(tmp_path / "missing.jsonl.gz"), str(tmp_path / "x.png")]) == 2
    assert "missing.jsonl.gz" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--posteriors", "kidiq-kidscore_momiqq"], "unknown model 'kidiq-kidscore_momiqq'.*did you mean"),
    (["--methods", "numpyro:nutz"], "--methods: unknown method 'nutz'"),
    (["--methods", "numpyro:svi:guide=nomral"], "--methods: .*'nomral'"),
    (["--seeds", "0", "--workers", "0"], "workers=0"),
    (["--score-only"], "holds no run of this leaderboard yet"),
])
def test_bad_names_are_refused_in_one_line_before_anything_runs(tmp_path, capsys, argv, message):
    store = tmp_path / "store"
    assert main(["leaderboard", "--posteriors", POSTERIOR, "--store", str(store), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ppl: error: ") and len(err.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(message, err), err
    assert not (store / "runs").exists()


def test_a_config_with_an_unknown_method_key_names_its_line(tmp_path):
    from inference.sweep import load_config

    path = tmp_path / "board.yaml"
    path.write_text(f"models: [{POSTERIOR}]\nmethods:\n  - numpyro:nuts\n  - {{method: pyro:nuts, max_dims: 5}}\n")
    with pytest.raises(SweepConfigError, match="line 4: .*unknown key 'max_dims'"):
        load_config(path, skip_missing_backends=True)


def test_max_dim_keeps_a_method_to_the_small_posteriors(tmp_path):
    from inference.sweep import load_config

    path = tmp_path / "board.yaml"
    path.write_text(f"models: [{POSTERIOR}, diamonds-diamonds]\nmethods:\n  - numpyro:nuts\n"
                    "  - {method: 'pyro:nuts', max_dim: 10}\n")
    runs = [(r.model, r.backend) for r in load_config(path, skip_missing_backends=True).runs]
    assert runs == [(POSTERIOR, "numpyro"), (POSTERIOR, "pyro"), ("diamonds-diamonds", "numpyro")]


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (make install-browser installs Debian's)")
def test_the_heat_map_renders_in_a_headless_browser(board, tmp_path):
    from PIL import Image

    store, _, _ = board
    shot = tmp_path / "board.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1000,1000", (store / "leaderboard.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    grey = (np.abs(red - 184) < 3) & (np.abs(green - 184) < 3) & (np.abs(blue - 184) < 3)  # failed cells
    assert grey.sum() > 2 * 500  # two grey cells, each some 70 x 40 pixels
    assert ((red < 128) & (green < 128) & (blue < 128)).mean() > 0.005  # text was drawn
