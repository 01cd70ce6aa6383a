"""Ctrl-C at a terminal: one line saying what was interrupted and where, exit status 130, no partial file.

Python turns SIGINT into ``KeyboardInterrupt`` only between bytecodes. Pyro's loops see it at once;
but a compiled JAX loop (NumPyro's warmup and sampling, an SVI scan) holds the main thread inside
XLA until it ends, which can be minutes. So the command line also watches for SIGINT on a thread of
its own (``signal.set_wakeup_fd``): when the main thread has not unwound ``grace`` seconds after the
signal, the watcher deletes the temporary files of writes under way (``ppl_models.atomic``), ends
the worker processes, prints the same line and ends the process with status 130. Results and
checkpoints are written atomically, so what is on disk is either whole or absent.

The line says which command was running (``activity``), how far its progress bars had got, and
where the run's checkpoint is, if it has one.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time

from ppl_models.atomic import remove_in_flight

EXIT_STATUS = 130  # 128 + SIGINT, as shells report it
_activity: dict = {"what": None, "checkpoint": None, "started": None}
_said: list[str] = []  # the line, as it was when the innermost activity was interrupted


@contextlib.contextmanager
def activity(what: str, checkpoint=None):
    """Name what runs inside the block (``"fit eight_schools (numpyro nuts)"``), for the interrupt line."""
    previous = dict(_activity)
    _activity.update(what=what, checkpoint=checkpoint, started=time.monotonic())
    try:
        yield
    except KeyboardInterrupt:
        if not _said:  # the innermost block knows most; its progress bars are still open
            _said.append(message())
        raise
    finally:
        _activity.update(previous)


def progress_note() -> str:
    """Where the open progress bars are (``"warmup 340/1000"``), or ``""`` when none is open."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return ""
    for _ in range(5):  # the set of bars may change while it is copied (this runs on the watcher's thread)
        try:
            bars = list(getattr(tqdm, "_instances", ()))
            break
        except RuntimeError:
            continue
    else:
        return ""
    notes: dict[str, int] = {}  # one entry per distinct note, with how many bars show it
    for bar in sorted(bars, key=lambda b: str(b.desc)):
        # tqdm's desc is the description and ": " ("Compiling.. : " for NumPyro's first bar state)
        desc = " ".join((bar.desc or "").replace(".", " ").split()).rstrip(": ")
        note = f"{desc + ' ' if desc else ''}{bar.n}/{bar.total}" if bar.total else f"{desc} {bar.n}".strip()
        notes[note] = notes.get(note, 0) + 1
    return ", ".join(note if count == 1 else f"{note} (x{count})" for note, count in notes.items())


def close_progress_bars() -> None:
    """Close the open progress bars, so that the next line starts on a line of its own."""
    with contextlib.suppress(ImportError):
        from tqdm import tqdm

        for bar in list(getattr(tqdm, "_instances", ())):
            with contextlib.suppress(Exception):
                bar.close()


def message() -> str:
    """The one line printed on Ctrl-C."""
    parts = [f"interrupted: {_activity['what'] or 'ppl'}"]
    where = progress_note()
    if where:
        parts.append(f"at {where}")
    if _activity["started"] is not None:
        parts.append(f"after {time.monotonic() - _activity['started']:.1f} s")
    line = " ".join(parts)
    checkpoint = _activity["checkpoint"]
    if checkpoint and os.path.exists(checkpoint):  # named once: a sweep's activity names its store already
        line += ("; resume by running the same command" if str(checkpoint) in line
                 else f"; resume from the checkpoint {checkpoint} by running the same command")
    elif checkpoint:
        line += f"; no checkpoint was written yet to {checkpoint}"
    else:
        line += "; nothing was saved (no checkpoint)"
    return line


def _remember() -> None:
    """Keep the line as it reads now, where the progress bars are still open (once per interrupt).
    Nothing may stop the caller (the signal handler, or the watcher) from its own job."""
    if not _said:
        with contextlib.suppress(Exception):
            _said.append(message())


def report(prog: str = "ppl") -> int:
    """Print the interrupt line on stderr (after closing the progress bars), headed by the program's
    name; return the exit status."""
    # the first line remembered: the watcher's thread may remember one more once the block has ended
    line = _said[0] if _said else message()
    _said.clear()
    close_progress_bars()
    print(f"\n{prog}: {line}", file=sys.stderr, flush=True)
    return EXIT_STATUS


def end_process(status: int = EXIT_STATUS) -> None:
    """End this process now, without Python's shutdown: after an interrupt, XLA's threads may still be
    compiling, and finalizing the interpreter under them ended in a segmentation fault. Writes
    under way are removed and worker processes ended first; output is flushed."""
    remove_in_flight()
    for child in multiprocessing.active_children():
        with contextlib.suppress(Exception):
            child.terminate()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _end_now(prog: str) -> None:
    end_process(report(prog))


@contextlib.contextmanager
def watch_sigint(grace: float = 3.0, prog: str = "ppl"):
    """Inside the block, a SIGINT that the main thread has not acted on within ``grace`` seconds
    (it is inside compiled code) ends the process with ``_end_now`` (its line headed by ``prog``).
    Outside the main thread, or where signals cannot be watched, the block runs unwatched."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # pragma: no cover - not the main thread of the main interpreter
        os.close(read_end), os.close(write_end)
        yield
        return
    done = threading.Event()

    def on_sigint(signum, frame):  # the main thread, before anything unwinds and closes the progress bars
        _remember()
        raise KeyboardInterrupt

    previous_handler = signal.signal(signal.SIGINT, on_sigint)

    def watch():
        while not done.is_set():
            try:
                received = os.read(read_end, 64)
            except OSError:
                return
            if not received or done.is_set():
                return
            if signal.SIGINT not in received:
                continue
            _remember()  # in case the main thread cannot run its handler
            if not done.wait(grace):
                _end_now(prog)

    watcher = threading.Thread(target=watch, name="ppl-sigint-watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        signal.signal(signal.SIGINT, previous_handler)
        signal.set_wakeup_fd(previous)
        os.close(write_end)  # wakes the watcher, which then returns
        watcher.join(timeout=1.0)
        os.close(read_end)
