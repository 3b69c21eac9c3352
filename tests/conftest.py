import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _remove_public_dirs():
    """The scratch directories tests made under /tmp for nobody's programs and files."""
    yield
    from harness import CREATED

    for d in CREATED:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request):
    """The event loop of a real activator process (the --loop it is started with)."""
    return request.param


def pytest_asyncio_loop_factories(config, item):
    """Every in-process ``@pytest.mark.asyncio`` test runs on both loops activator runs on,
    made by the one place that chooses them (core/loops.py)."""
    from activator.core.loops import loop_factory

    return {"asyncio": loop_factory("asyncio"), "uvloop": loop_factory("uvloop")}


@pytest.fixture(params=["lane", "python"])
def accept_path(request):
    """Accept=yes through the C accept lane or the Python path: the environment for Activator."""
    return {"ACTIVATOR_ACCEPT_LANE": "1" if request.param == "lane" else "0"}


@pytest.fixture(scope="session")
def probe():
    """The probe service (tests/probe.py) where nobody can run it."""
    from harness import install_probe, public_dir

    d = public_dir("activator-probe-")
    yield install_probe(d)
    shutil.rmtree(d, ignore_errors=True)
