"""The ``ppl`` command as a person runs it: in a terminal (a pseudo-terminal, so that progress bars
switch on), interrupted with Ctrl-C (SIGINT to a real process), from a folder of its own."""
import fcntl
import io
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals and SIGINT are POSIX")


def in_terminal(argv, cwd, until=None, timeout=120.0):
    """Run ``argv`` with a pseudo-terminal as stdin, stdout and stderr; with ``until``, send SIGINT once
    the output contains it. Returns (exit status, output, seconds from the signal to the exit)."""
    master, slave = pty.openpty()
    # 40 rows of 100 columns: with the size a new pseudo-terminal has (0 x 0), tqdm draws empty bars
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    # a person's terminal: NumPyro turns its progress bars off where CI or PYTEST_XDIST_WORKER is set
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_XDIST_WORKER")}
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                               start_new_session=True)
    os.close(slave)
    output, signalled, deadline = b"", None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the process has ended
                break
            if not chunk:
                break
            output += chunk
        if until is not None and signalled is None and until in output.decode(errors="replace"):
            process.send_signal(signal.SIGINT)
            signalled = time.monotonic()
        if process.poll() is not None and not select.select([master], [], [], 0.2)[0]:
            break
    else:
        process.kill()
        pytest.fail(f"{argv} did not end within {timeout} s:\n{output.decode(errors='replace')[-2000:]}")
    os.close(master)
    status = process.wait(timeout=30)
    return status, output.decode(errors="replace"), (time.monotonic() - signalled if signalled else None)


PPL = [sys.executable, "-m", "inference.cli"]


def test_parallel_float64_chains_with_the_progress_bar_end_cleanly(tmp_path):
    # NumPyro's progress bar calls back into Python from XLA's threads; with two float64 chains in
    # parallel this crashed at the end of sampling ("Expected: int64, Actual: int32")
    status, output, _ = in_terminal([*PPL, "fit", "eight_schools-eight_schools_noncentered", "--backend", "numpyro",
                                     "--method", "nuts", "--num-chains", "2", "--num-warmup", "50",
                                     "--num-samples", "50", "--dtype", "float64"], cwd=tmp_path)
    assert status == 0, output[-3000:]
    assert "Running chain 1" in output  # the bars were on
    assert "Traceback" not in output and "CpuCallback" not in output
    assert "mu " in output and "tau " in output and "r_hat" in output
    saved = list((tmp_path / "runs" / "eight_schools-eight_schools_noncentered").glob("*.npz"))
    assert len(saved) == 1 and f"saved {saved[0].relative_to(tmp_path)}" in output


def test_ctrl_c_stops_numpyro_nuts_with_one_line_and_status_130(tmp_path):
    status, output, seconds = in_terminal(
        [*PPL, "fit", "eight_schools-eight_schools_noncentered", "--backend", "numpyro", "--method", "nuts",
         "--num-chains", "1", "--num-warmup", "100", "--num-samples", "10000000", "--out", str(tmp_path / "out")],
        cwd=tmp_path, until="sample:", timeout=120)
    assert status == 130, output[-3000:]
    assert seconds < 10
    lines = [line for line in output.splitlines() if line.startswith("ppl: interrupted")]
    assert len(lines) == 1, output[-3000:]
    assert "fit eight_schools-eight_schools_noncentered (numpyro nuts) at sample " in lines[0]
    assert lines[0].endswith("; nothing was saved (no checkpoint)")
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no partial file


def test_sigint_the_main_thread_cannot_act_on_ends_the_process_after_the_grace(tmp_path):
    # A compiled JAX loop holds the main thread in XLA, where KeyboardInterrupt cannot reach it (seen
    # with NumPyro NUTS on posteriordb's LDA, one chain, no progress bar: it ended 3.3 s after Ctrl-C,
    # by the watcher). Here the main thread is made deaf to SIGINT: the watcher ends the process, and
    # removes the file being written.
    script = textwrap.dedent("""
        import signal, sys, time
        from inference import interrupt
        from ppl_models.atomic import atomic_write

        with interrupt.watch_sigint(grace=0.5), interrupt.activity("a compiled loop"):
            signal.signal(signal.SIGINT, lambda *_: None)  # the signal is seen, and nothing is done
            with atomic_write(sys.argv[1]) as f:
                f.write(b"partial")
                print("looping", flush=True)
                time.sleep(60)
    """)
    target = tmp_path / "result.npz"
    status, output, seconds = in_terminal([sys.executable, "-c", script, str(target)], cwd=tmp_path,
                                          until="looping")
    assert status == 130, output
    assert seconds < 10
    assert "ppl: interrupted: a compiled loop after" in output
    assert list(tmp_path.iterdir()) == []  # neither the target nor its temporary file


def test_the_interrupt_line_names_a_sweeps_store_once(tmp_path):
    from inference import interrupt

    with interrupt.activity(f"leaderboard into {tmp_path}", checkpoint=str(tmp_path)):
        line = interrupt.message()
    assert line.count(str(tmp_path)) == 1 and line.endswith("; resume by running the same command"), line
    with interrupt.activity("fit eight_schools (numpyro nuts)", checkpoint=str(tmp_path)):
        assert interrupt.message().endswith(f"; resume from the checkpoint {tmp_path} by running the same command")
    with interrupt.activity("fit eight_schools (numpyro nuts)", checkpoint=str(tmp_path / "not yet")):
        assert interrupt.message().endswith(f"; no checkpoint was written yet to {tmp_path / 'not yet'}")


def test_the_interrupt_line_reads_numpyros_bar_descriptions_in_words():
    from tqdm import tqdm

    from inference import interrupt

    bars = [tqdm(total=2000, file=io.StringIO()) for _ in range(2)]
    try:
        for bar in bars:
            bar.set_description("Compiling.. ")  # as numpyro.util.progress_bar_factory sets it
        assert interrupt.progress_note() == "Compiling 0/2000 (x2)"
        bars[0].set_description("warmup"), bars[0].update(340)
        assert interrupt.progress_note() == "Compiling 0/2000, warmup 340/2000"
    finally:
        for bar in bars:
            bar.close()
