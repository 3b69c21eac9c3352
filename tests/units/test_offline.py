"""activatorctl verify / import, offline (activator.cli.offline)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from activator.cli.offline import run_import, run_verify
from activator.units import load_units

REPO = Path(__file__).parent.parent.parent


def test_example_units_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    out = io.StringIO()
    assert run_verify(["units"], strict=True, out=out) == 0, out.getvalue()
    assert out.getvalue() == "8 units loaded, 0 errors, 0 warnings\n"


def test_example_units_content() -> None:
    units, _ = load_units([REPO / "units"])
    assert units.sockets["echo.socket"].Socket.Accept
    assert units.service_of("echo.socket") == "echo@.service"
    httpd = units.services["httpd.service"].Service.ExecStart[0]
    script = Path(httpd.argv[1])
    assert script.is_file() and script.resolve() == (REPO / "contrib/examples/httpd.py").resolve()
    kinds = {
        (type(x).__name__, getattr(x, "type", None))
        for s in units.sockets.values()
        for x in s.Socket.Listen
    }
    assert ("UnixListen", "stream") in kinds and ("InetListen", "datagram") in kinds
    # hardened (issues 12, 15): each example a dynamic user of its own (none runs as root
    # or nobody; rootless serves them), no new privileges, a process limit, private files
    for svc in units.services.values():
        s = svc.Service
        assert s.DynamicUser and not s.User, svc.name
        assert s.NoNewPrivileges and s.LimitNPROC is not None and s.UMask == 0o077, svc.name
    ini = [p for p in (REPO / "units").iterdir() if p.suffix in (".socket", ".service")]
    assert len(ini) >= 2  # at least one pair in systemd's own syntax


def test_verify_json(tmp_path: Path) -> None:
    (tmp_path / "web.socket").write_text("[Socket]\nListenStream=99999\n")
    out = io.StringIO()
    assert run_verify([str(tmp_path)], json=True, out=out) == 1
    doc = json.loads(out.getvalue())
    assert doc["errors"] == 1 and doc["warnings"] == 0 and doc["loaded"] == 0 and doc["units"] == []
    (p,) = doc["problems"]
    assert p == {
        "path": str(tmp_path / "web.socket"), "where": 2, "directive": "ListenStream",
        "message": '"99999": port must be 1-65535', "severity": "error", "unit": "web.socket",
    }  # fmt: skip


def test_import_writes_toml_that_loads_equal(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "web.socket").write_text("[Socket]\nListenStream=8080\nSocketMode=0660\n")
    (src / "web.service").write_text("[Service]\nExecStart=/bin/web %%d\nPrivateTmp=yes\n")
    (src / "web.service.d").mkdir()
    (src / "web.service.d" / "user.conf").write_text("[Service]\nUser=www-data\n")
    out_dir = tmp_path / "out"
    out = io.StringIO()
    rc = run_import([str(src / "web.socket"), str(src / "web.service")], str(out_dir), out=out)
    assert rc == 0, out.getvalue()
    text = out.getvalue()
    assert "warning: ignored, not carried out by activator: PrivateTmp= (sandboxing)" in text
    assert f"{src}/web.service -> {out_dir}/web.service.toml" in text
    assert sorted(p.name for p in out_dir.iterdir()) == ["web.service.toml", "web.socket.toml"]
    assert 'User = "www-data"' in (out_dir / "web.service.toml").read_text()  # drop-in merged
    a, _ = load_units([src])
    b, problems = load_units([out_dir])
    # what it says is kept, what activator ignores too (with the same warning)
    assert [p.message for p in problems] == [
        "ignored, not carried out by activator: PrivateTmp= (sandboxing)"
    ]
    for name in ("web.socket", "web.service"):
        assert a.get(name).model_dump(exclude={"path", "dropins"}) == b.get(name).model_dump(
            exclude={"path", "dropins"}
        )


def test_import_refuses_to_overwrite_and_bad_units(tmp_path: Path) -> None:
    (tmp_path / "web.socket").write_text("[Socket]\nListenStream=8080\n")
    (tmp_path / "bad.socket").write_text("[Socket]\nListenStream=nowhere\n")
    out = io.StringIO()
    assert run_import([str(tmp_path / "web.socket")], str(tmp_path / "o"), out=out) == 0
    before = (tmp_path / "o" / "web.socket.toml").read_text()
    out = io.StringIO()
    rc = run_import(
        [str(tmp_path / "web.socket"), str(tmp_path / "bad.socket")], str(tmp_path / "o"), out=out
    )
    assert rc == 1
    lines = out.getvalue().splitlines()
    assert f"{tmp_path}/o/web.socket.toml: already exists, not overwritten" in lines
    assert f"{tmp_path}/bad.socket: not imported (fix the errors above)" in lines
    assert (tmp_path / "o" / "web.socket.toml").read_text() == before


def test_import_default_outdir_is_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.service").write_text("[Service]\nExecStart=/bin/true\n")
    monkeypatch.chdir(tmp_path)
    assert run_import(["a.service"], None, out=io.StringIO()) == 0
    assert (tmp_path / "a.service.toml").is_file()
