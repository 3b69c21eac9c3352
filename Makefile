# activator — make install | run | test | lint | fuzz | soak | chaos | mutate | bench | wheel | sdist | docs
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: install run test test-fast image-test lint fuzz soak chaos mutate mutate-ci bench bench-quick wheel sdist docs clean

install: $(STAMP)

# Re-install when the project's metadata or the C spawn core changes.
$(STAMP): pyproject.toml setup.py $(wildcard activator/exec/*.c activator/exec/*.h activator/runtime/*.c)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: install
	mkdir -p run
	$(VENV)/bin/activator --units units --control run/control.sock

# -ra: the summary lists every skip (under CI=true a skip fails: tests/conftest.py)
test: install
	$(PY) -m pytest -q -ra

test-fast: install
	$(PY) -m pytest -q -m 'not slow and not network'

# Plant one bug at a time in the code that decides credentials, fds, environment, restarts
# and the control socket's peer check, and in the C child; the tests must notice (README
# "Tests"). All of it: under 20 minutes on 2 cores. CI runs the C set and a sample.
mutate: install
	$(PY) tests/mutation/mutate.py

mutate-ci: install
	$(PY) tests/mutation/mutate.py --sample 8

# contrib/docker/Dockerfile built offline with podman from a Debian base made here, run as a
# container with activator as PID 1 (root; tests/containers/test_image.py says what it checks).
image-test: install
	$(PY) -m pytest -q tests/containers/test_image.py

lint: install
	$(VENV)/bin/ruff check activator tests bench
	$(VENV)/bin/ruff format --check activator tests
	$(VENV)/bin/mypy

# The fuzzers of tests/fuzz (unit files, value parsers, control protocol, command lines)
# for FUZZ_SECONDS in all; the test suite runs them for 30 s. Each test may take its
# share plus two minutes before pytest-timeout calls it a hang.
FUZZ_SECONDS ?= 600
fuzz: install
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest -q -p no:cacheprovider \
		--timeout=$$(( $(FUZZ_SECONDS) + 120 )) tests/fuzz

# The reliability suites at full scale (root; hours for soak, see tests/soak/test_soak.py);
# `make test` runs short versions of both. Figures go to RELIABILITY_RESULTS as JSON lines.
RELIABILITY_RESULTS ?= $(CURDIR)/build/reliability-$(shell date +%Y%m%d-%H%M%S).jsonl
soak: install
	mkdir -p build
	SOAK_SCALE=full RELIABILITY_RESULTS=$(RELIABILITY_RESULTS) $(PY) -m pytest -q \
		-p no:cacheprovider --timeout=36000 -rA tests/soak

chaos: install
	mkdir -p build
	CHAOS_SCALE=full RELIABILITY_RESULTS=$(RELIABILITY_RESULTS) $(PY) -m pytest -q \
		-p no:cacheprovider --timeout=3600 -rA -m chaos tests

# activator beside tcpserver, tcpsvd and systemd-socket-activate (root; installs the peers).
bench: install
	$(PY) bench/run.py
	$(PY) bench/bench_units.py

bench-quick: install
	$(PY) bench/run.py --quick

# A wheel for this machine in dist/ (the C extension built here: it then installs and runs
# where no compiler is; manylinux wheels: cibuildwheel, settings in pyproject.toml).
wheel: install
	$(PY) -m build --wheel --no-isolation --outdir dist .

sdist: install
	$(PY) -m build --sdist --no-isolation --outdir dist .

# The manual pages and the bash completion, from README.md and the verb table.
docs: install
	$(PY) tools/generate.py

clean:
	rm -rf $(VENV) build dist *.egg-info run bench/build
