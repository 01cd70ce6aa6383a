# One command to set up and run the main job (`make demo`), one for the tests (`make test`).
PYTHON ?= python3
PIP = $(PYTHON) -m pip
# Data: the shared folder beside the repository unless PPL_DATA_DIR says otherwise.
export PPL_DATA_DIR ?= $(abspath $(CURDIR)/../shared/data)

.PHONY: install install-dev install-browser demo test lint bench radon-reference

# torch is pinned and installed first: on the project's machines this takes the local
# CPU wheel; an unpinned torch would pull several GB of CUDA packages.
install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .

install-dev:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"

# Debian's headless Chromium, for the test that renders the comparison report (it skips without one)
install-browser:
	@command -v chromium >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)) \
		|| echo "no chromium and no root apt-get: the report's browser test will skip"

# The demo's comparison: NUTS on both backends, and SVI with a full-rank (NumPyro) and a mean-field (Pyro)
# guide, two methods at a time. Pyro's NUTS, the longest by far, starts first, with 400 warmup iterations and
# 400 draws per chain (1600 draws): with the six default methods and 1000 + 1000 it took 64 s on two cores.
DEMO_METHODS = pyro:nuts:num_warmup=400,num_samples=400 numpyro:nuts numpyro:svi:guide=mvn pyro:svi:guide=normal

demo: install
	$(PYTHON) -m inference.cli compare eight_schools-eight_schools_noncentered --workers 2 --methods $(DEMO_METHODS)

# two workers, each test file whole in one of them (CI has two cores)
test: install-dev install-browser
	$(PYTHON) -m pytest -n 2 --dist loadfile

lint:
	$(PYTHON) -m ruff check ppl_models inference benchmarks tests

bench: install
	$(PYTHON) benchmarks/overhead.py

radon-reference: install
	$(PYTHON) benchmarks/make_radon_reference.py
