"""Packaging, as a new user meets it (issue 14): the sdist holds everything needed to build
activator and run its tests; without a compiler `pip install` says so in one line; the
wheel builds without setuptools' deprecation banners and runs where no build tool is."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
_TOP = {".venv", "build", "dist", "run", ".git"}  # only at the top: .ci/run is a source
_ANYWHERE = shutil.ignore_patterns("*.egg-info", "__pycache__", "*.so", ".*cache")


def _skip(d: str, names: list[str]) -> set[str]:
    top = set(names) & _TOP if Path(d) == ROOT else set()
    return top | _ANYWHERE(d, names)


def _copy_tree(dst: Path) -> Path:
    """The source tree as a user would get it (no venv, no build products)."""
    shutil.copytree(ROOT, dst, ignore=_skip)
    return dst


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 600)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _tracked() -> set[str] | None:
    """The files git tracks, when this is a checkout (an unpacked sdist is not)."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    r = _run(["git", "-C", str(ROOT), "ls-files"])
    return set(r.stdout.splitlines()) if r.returncode == 0 else None


@pytest.mark.slow
def test_sdist_is_complete_and_its_tests_run(tmp_path):
    r = _run([PY, "-m", "build", "--sdist", "--no-isolation", "--outdir", tmp_path / "dist",
              _copy_tree(tmp_path / "src")])  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    (sdist,) = (tmp_path / "dist").glob("activator-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        tar.extractall(tmp_path / "unpacked", filter="data")
    for needed in ("LICENSE", "Makefile", ".ci/run", "units/echo.socket.toml",
                   "contrib/examples/httpd.py", "tests/harness.py", "man/man8/activator.8",
                   "tools/generate.py", "activator/exec/spawn_child.c"):  # fmt: skip
        assert needed in names, needed
    tracked = _tracked()
    if tracked is not None:  # everything git has but its own files
        missing = {t for t in tracked if not t.startswith(".git")} - names
        assert not missing, sorted(missing)
    assert not [n for n in names if n.endswith((".so", ".pyc"))]
    src = tmp_path / "unpacked" / sdist.name.removesuffix(".tar.gz")
    # builds from the sdist alone, C extension included; then a part of its own suite
    r = _run([PY, "-m", "build", "--wheel", "--no-isolation", "--outdir", src / "dist", src])
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (src / "dist").glob("*.whl")
    site = tmp_path / "site"
    r = _run([PY, "-m", "pip", "install", "--no-deps", "--no-index", "--target", site, wheel])
    assert r.returncode == 0, r.stdout + r.stderr
    env = dict(os.environ, PYTHONPATH=str(site))
    r = _run([PY, "-c", "import activator.exec._spawn as m; print(m.__file__)"], env=env, cwd="/")
    assert r.stdout.startswith(str(site)), r.stdout + r.stderr  # not this checkout's
    subset = ["tests/test_layers.py", "tests/units/test_syntax.py", "tests/control/test_client.py",
              "tests/test_generated.py::test_generated_files_are_current", "tests/spawn/test_names.py"]  # fmt: skip
    r = _run([Path(PY).parent / "pytest", "-q", "-p", "no:cacheprovider", "-x", *subset],
             cwd=src, env=env)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout.splitlines()[-1] and "skipped" not in r.stdout.splitlines()[-1]


@pytest.mark.parametrize("cc", ["broken", "missing"])
def test_without_a_compiler_pip_says_so_in_one_line(tmp_path, cc):
    src = _copy_tree(tmp_path / "src")
    fake = tmp_path / "fakecc"
    fake.write_text("#!/bin/sh\necho 'fakecc: this compiler is broken' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = dict(os.environ, CC=str(fake) if cc == "broken" else "no-such-cc")
    r = _run([PY, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
              "-w", tmp_path / "out", src], env=env)  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode != 0
    ours = [ln.strip() for ln in out.splitlines() if "activator: unable to build" in ln]
    why = (
        "the C compiler " + str(fake) + " fails on a test program (fakecc: this compiler is broken)"
        if cc == "broken"
        else "no C compiler (no-such-cc not found)"
    )
    assert ours == [f"activator: unable to build its C extension: {why}; install a C compiler "
                    "and the Python headers (Debian/Ubuntu: apt-get install gcc python3-dev; "
                    "Fedora: dnf install gcc python3-devel; Alpine: apk add gcc musl-dev "
                    "python3-dev), or install a prebuilt wheel"], out  # fmt: skip
    assert "[1 lines of output]" in out, out  # that line alone, not a build log
    assert "No such file or directory" not in out


# Run inside the mount namespace, by the fresh venv's python: activator from the wheel,
# up and ready (its --ready-fd), answering, stopped with exit 0.
_DRIVER = textwrap.dedent(r"""
    import json, os, select, signal, socket, subprocess, sys
    venv, units = sys.argv[1], sys.argv[2]
    bin = os.path.join(venv, "bin")
    for tool in ("gcc", "cc"):  # the build tools really are gone
        r = subprocess.run(["sh", "-c", f"echo 'int main(void){{return 0;}}' | {tool} -x c -c -o /dev/null -"],
                           capture_output=True)
        assert r.returncode != 0, tool
    r, w = os.pipe()
    control = os.path.join(units, "control.sock")
    p = subprocess.Popen([os.path.join(bin, "activator"), "--units", units, "--control", control,
                          "--ready-fd", str(w)], pass_fds=(w,), stderr=subprocess.PIPE)
    os.close(w)
    try:
        assert select.select([r], [], [], 30)[0] and os.read(r, 10) == b"\n"
        state = subprocess.run([os.path.join(bin, "activatorctl"), "--control", control,
                                "is-system-running"], capture_output=True, text=True, timeout=30)
        with socket.create_connection(("127.0.0.1", int(sys.argv[3])), timeout=10) as c:
            reply = c.makefile("rb").read()
        p.send_signal(signal.SIGTERM)
        log = p.stderr.read().decode()  # to its end: activator has exited
        code = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    loop = log.split(" loop=", 1)[1].split()[0]  # no uvloop installed: asyncio's
    print(json.dumps({"state": state.stdout, "reply": reply.decode(), "exit": code, "loop": loop,
                      "module": __import__("activator.exec._spawn").exec._spawn.__file__}))
""")


def _hide_build_tools(script: str) -> str:
    """A shell script run with no C compiler and no headers: empty directories over where
    gcc keeps its programs and where every header lives (this Python's included)."""
    import sysconfig

    include = sysconfig.get_paths()["include"]
    hide = " && ".join(
        f"mount -t tmpfs -o ro tmpfs {d}"
        for d in ("/usr/lib/gcc", "/usr/include", include)
        if os.path.isdir(d)
    )
    return f"set -e; {hide}; {script}"


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.network
def test_wheel_builds_quietly_and_runs_without_build_tools(tmp_path):
    src = _copy_tree(tmp_path / "src")
    house = tmp_path / "wheelhouse"
    r = _run([PY, "-m", "pip", "wheel", "-v", "--no-build-isolation", "--no-deps", "--no-index",
              "-w", house, src])  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "deprecat" not in out.lower(), [ln for ln in out.splitlines() if "eprecat" in ln]
    # its dependencies, as wheels (a package registry: a user's pip would fetch them too)
    r = _run([PY, "-m", "pip", "download", "-q", "-d", house, "--only-binary=:all:",
              "pydantic>=2.5,<3", "tomli-w>=1.0"])  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    units = tmp_path / "units"
    units.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (units / "hi.socket").write_text(f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n")
    (units / "hi@.service").write_text(
        "[Service]\nExecStart=/bin/echo hi\nStandardInput=socket\nUser=nobody\n"
    )
    venv = tmp_path / "venv"
    (tmp_path / "driver.py").write_text(_DRIVER)
    script = _hide_build_tools(
        f"{PY} -m venv {venv} && {venv}/bin/pip install -q --no-index --find-links {house} "
        f"activator && {venv}/bin/python {tmp_path}/driver.py {venv} {units} {port} && "
        f"man -M {venv}/share/man -w activator activatorctl activator.unit"
    )
    r = _run(["unshare", "--mount", "sh", "-c", script])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(r.stdout.splitlines()[0])
    assert result == {
        "state": "running\n", "reply": "hi\n", "exit": 0, "loop": "asyncio",
        "module": result["module"],
    } and result["module"].startswith(str(venv)), result  # fmt: skip
    pages = r.stdout.splitlines()[1:]
    assert [Path(p).name for p in pages] == ["activator.8", "activatorctl.1", "activator.unit.5"]
