"""Bad input never raises: every problem becomes a Problem line."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from activator.units import build as build_module
from activator.units import directives, load_units

INI_PIECES = st.sampled_from(
    [
        "[Socket]", "[Service]", "[Unit]", "[Install]", "[X-Foo]", "[Bogus", "ListenStream=",
        "ListenStream=80", "ListenDatagram=@x", "Accept=yes", "Service=", "ExecStart=",
        "ExecStart=/bin/true", "Environment=", "#", ";", "\\", "%", "%i", "%%", '"', "'", "=",
        "Symlinks=/a", "Type=oneshot", "ExecStart=-@", " ", "\t", "ProtectSystem=full",
        "CapabilityBoundingSet=~", "LimitNOFILE=1:", "Alias=x.service", "Sockets=a.socket",
    ]
)  # fmt: skip
INI_TEXT = st.lists(st.one_of(INI_PIECES, st.text(max_size=8)), max_size=30).map(
    lambda parts: "".join(p + ("\n" if i % 3 == 2 else "") for i, p in enumerate(parts))
)


@settings(max_examples=200, deadline=None)
@given(INI_TEXT, INI_TEXT, st.booleans())
def test_random_ini_never_raises(sock: str, svc: str, strict: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        Path(d, "x.socket").write_text(sock)
        Path(d, "x.service").write_text(svc)
        Path(d, "x@.service").write_text(svc)
        units, problems = load_units([d], strict=strict)
        for p in problems:
            assert str(p)  # printable
            assert p.path.startswith(d)
        for u in units:
            assert u.name in ("x.socket", "x.service", "x@.service")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.binary(max_size=50))
def test_random_toml_and_binary_never_raise(text: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        Path(d, "x.socket.toml").write_text(text)
        Path(d, "y.service").write_bytes(data)
        Path(d, "y.service.d").mkdir()
        Path(d, "y.service.d", "a.conf.toml").write_text(text)
        units, problems = load_units([d])
        # every problem is printable and located in these files; each file is either a
        # loaded unit or named by a problem, never silently dropped
        for p in problems:
            assert str(p) and p.path.startswith(d)
        names = {u.name for u in units}
        assert names <= {"x.socket", "y.service"}
        for name, path in (("x.socket", "x.socket.toml"), ("y.service", "y.service")):
            assert name in names or any(
                p.path.startswith(os.path.join(d, path)) for p in problems
            ), (name, [str(p) for p in problems])


def test_unreadable_and_odd_files(tmp_path: Path) -> None:
    (tmp_path / "dir.service").mkdir()  # a directory named like a unit: skipped
    os.symlink("/nonexistent/x.service", tmp_path / "dangling.service")
    (tmp_path / "bad name.service").write_text("[Service]\nExecStart=/bin/true\n")
    (tmp_path / "latin1.service").write_bytes(b"[Unit]\nDescription=\xe9\n")
    units, problems = load_units([tmp_path])
    assert len(units) == 0
    got = {(os.path.basename(p.path), p.message) for p in problems}
    assert ("bad name.service", "not a valid unit name") in got
    assert ("latin1.service", "not valid UTF-8 (invalid continuation byte at byte 19)") in got
    assert ("dangling.service", "dangling symlink to /nonexistent/x.service") in got


def test_pydantic_errors_become_located_problems(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A value that slips past a parser still ends as file:line, never a traceback."""
    table = dict(directives.TABLES["Socket"])
    table["MaxConnections"] = directives.Directive(
        "MaxConnections", "MaxConnections", "scalar", lambda v, c: 0
    )
    monkeypatch.setitem(build_module.TABLES, "Socket", table)
    (tmp_path / "t.socket").write_text("[Socket]\nListenStream=80\nMaxConnections=5\n")
    (tmp_path / "t.service").write_text("[Service]\nExecStart=/bin/true\n")
    _, problems = load_units([tmp_path])
    (p,) = problems
    assert (p.where, p.directive) == (3, "MaxConnections")
    assert p.message == '"0": input should be greater than or equal to 1'
