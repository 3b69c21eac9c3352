# activator — make install | run | test | lint | bench
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: install run test test-fast lint bench bench-quick clean

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

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m 'not slow and not network'

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
