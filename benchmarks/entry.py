"""How a benchmark script ends, as the ``ppl`` command does (``inference.cli``):

- bad input (a data file not found, an unknown name, a malformed option: ``PPLError``) is one line
  naming the culprit, exit status 2;
- Ctrl-C is one line saying what was interrupted and how far it had got, exit status 130, with no
  half-written file left (``inference.interrupt``; a compiled JAX loop that holds the main thread is
  ended by the watcher after a grace period);
- a diagnostic's ``InferenceWarning`` (divergences, R-hat, PSIS k-hat) is one line, ``prog: warning:
  ...``, not Python's default of the warning's source file and line and the ``warnings.warn`` call
  beneath it; other warnings keep Python's format.

Every script's ``if __name__ == "__main__"`` calls ``run_benchmark(main)``."""
from __future__ import annotations

import sys
import warnings

from inference import interrupt
from inference.api import InferenceWarning
from ppl_models.errors import PPLError


def run_benchmark(main) -> None:
    """Call ``main()`` and exit with its status (None: 0)."""
    module = getattr(sys.modules["__main__"].__spec__, "name", None) or main.__module__
    prog = module.rsplit(".", 1)[-1]
    try:
        with interrupt.watch_sigint(prog=prog), interrupt.activity(f"python -m {module}"), \
                warnings.catch_warnings():
            warnings.showwarning = _one_line_inference_warnings(prog, warnings.showwarning)
            status = main()
    except KeyboardInterrupt:
        interrupt.end_process(interrupt.report(prog))
    except PPLError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(status or 0)


def _one_line_inference_warnings(prog: str, show):
    """``warnings.showwarning`` that prints an ``InferenceWarning`` as ``prog: warning: message`` and
    hands every other warning to ``show``."""
    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, InferenceWarning):
            print(f"{prog}: warning: {message}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return showwarning
