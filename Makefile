# activator — make install | run | test | lint | bench
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: install run test test-fast lint mutate mutate-ci bench bench-quick clean

install: $(STAMP)

# Re-install when the project's metadata or the C spawn core changes.
$(STAMP): pyproject.toml setup.py $(wildcard activator/exec/*.c activator/exec/*.h)
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

lint: install
	$(VENV)/bin/ruff check activator tests bench
	$(VENV)/bin/ruff format --check activator tests
	$(VENV)/bin/mypy

# activator beside tcpserver, tcpsvd and systemd-socket-activate (root; installs the peers).
bench: install
	$(PY) bench/run.py
	$(PY) bench/bench_units.py

bench-quick: install
	$(PY) bench/run.py --quick

clean:
	rm -rf $(VENV) build *.egg-info run bench/build
