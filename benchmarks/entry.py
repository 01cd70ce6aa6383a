"""How a benchmark script ends, as the ``ppl`` command does (``inference.cli``):

- bad input (a data file not found, an unknown name, a malformed option: ``PPLError``) is one line
  naming the culprit, exit status 2;
- Ctrl-C is one line saying what was interrupted and how far it had got, exit status 130, with no
  half-written file left (``inference.interrupt``; a compiled JAX loop that holds the main thread is
  ended by the watcher after a grace period).

Every script's ``if __name__ == "__main__"`` calls ``run_benchmark(main)``."""
from __future__ import annotations

import sys

from inference import interrupt
from ppl_models.errors import PPLError


def run_benchmark(main) -> None:
    """Call ``main()`` and exit with its status (None: 0)."""
    module = getattr(sys.modules["__main__"].__spec__, "name", None) or main.__module__
    prog = module.rsplit(".", 1)[-1]
    try:
        with interrupt.watch_sigint(prog=prog), interrupt.activity(f"python -m {module}"):
            status = main()
    except KeyboardInterrupt:
        interrupt.end_process(interrupt.report(prog))
    except PPLError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(status or 0)
