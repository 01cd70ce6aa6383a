"""The comparison report: one self-contained HTML page, checked in a headless browser."""
import re
import shutil
import subprocess

import numpy as np
import pytest

import inference

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    directory = tmp_path_factory.mktemp("report")
    table = inference.compare("eight_schools-eight_schools_noncentered", [
        ("numpyro", "nuts", dict(num_warmup=200, num_samples=200, num_chains=2)),
        ("numpyro", "svi", dict(guide="normal", num_steps=500, learning_rate=0.05)),
    ], report=directory)
    return directory / "report.html", table


def test_the_report_holds_the_table_and_every_figure_in_one_file(report):
    path, table = report
    page = path.read_text()
    for title in ("Scores against the reference", "Every method against the reference: posterior means",
                  "Marginal densities",
                  "Pair plot", "MCMC diagnostics: numpyro nuts", "Loss traces"):
        assert title in page, title
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert images == ["forest plot", "marginal densities", "pair plot", "rank plot", "energy plot", "loss traces"]
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing outside the file
    assert "energy_distance" in page and "numpyro svi guide=normal" in page
    assert table.index.tolist() == ["numpyro nuts num_chains=2 num_samples=200 num_warmup=200",
                                    "numpyro svi guide=normal learning_rate=0.05 num_steps=500"]


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (make install-browser installs Debian's)")
def test_the_report_renders_in_a_headless_browser(report, tmp_path):
    from PIL import Image

    path, _ = report
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1200,2400", path.as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2400, 1200)
    ink = pixels < 128  # text and plot lines on a white page
    assert 0.01 < ink.mean() < 0.5
    rows_with_ink = ink.any(axis=1).mean()
    assert rows_with_ink > 0.5  # the page fills the window: the table and figures rendered, not an error line
