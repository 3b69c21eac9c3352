import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import IMPOSSIBLE  # noqa: E402


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _fail_skip(report) -> None:
    """Under CI=true a skip is a failure: CI installs every prerequisite (.ci/run), so a
    skip there means a test silently did not run."""
    if not _in_ci() or not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    if IMPOSSIBLE in reason:  # harness.impossible_here()
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI=true, where every prerequisite must be installed (.ci/run): {reason}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result())


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
