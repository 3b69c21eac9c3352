import shutil

import pytest
from harness import install_probe, public_dir


@pytest.fixture(scope="session")
def probe():
    """The probe service (tests/probe.py) where nobody can run it."""
    d = public_dir("activator-probe-")
    yield install_probe(d)
    shutil.rmtree(d, ignore_errors=True)
