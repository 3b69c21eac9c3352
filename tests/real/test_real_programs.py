"""Real consumers of the protocol, unchanged, started by activator from unit files (issue #4).

- libsystemd: a C program calling sd_listen_fds_with_names() and sd_notify(), built here
  with gcc -lsystemd;
- python-systemd (Debian's python3-systemd under /usr/bin/python3): listen_fds_with_names(),
  notify() with READY=1, and FDSTORE=1 with the fd, across a restart;
- gunicorn from PyPI, serving HTTP as nobody from the listener it finds in LISTEN_FDS, and
  telling activator READY=1 (Type=notify);
- git daemon --inetd, one per connection (Accept=yes, StandardInput=socket), with git clone.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

import pytest
from harness import SYSTEM_PYTHON, Activator, free_port, public_dir, read_line
from programs import compile_c, need, pip_install

pytestmark = pytest.mark.root

NOBODY = pwd.getpwnam("nobody")

SD_PROGRAM = r"""
#include <stdio.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

int main(void) {
    char **names = NULL, line[1024];
    int n = sd_listen_fds_with_names(1, &names), off;
    if (n <= 0) return 2;
    off = snprintf(line, sizeof line, "n=%d", n);
    for (int i = 0; i < n; i++)
        off += snprintf(line + off, sizeof line - off, " %s:%s", names[i],
                        sd_is_socket(SD_LISTEN_FDS_START + i, AF_UNSPEC, SOCK_STREAM, 1) > 0
                            ? "listening" : "?");
    sd_notifyf(0, "READY=1\nSTATUS=%s", line);
    int c = accept(SD_LISTEN_FDS_START, NULL, NULL);
    dprintf(c, "%s\n", line);
    close(c);
    sd_notify(0, "STOPPING=1");
    return 0;
}
"""


@pytest.fixture(scope="module")
def programs():
    d = public_dir("activator-real-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_libsystemd_listen_fds_with_names_and_notify(programs, loop_kind):
    exe = compile_c(SD_PROGRAM, programs / f"sdprog-{loop_kind}", "-lsystemd")
    port = free_port()
    path = f"{programs}/sd-{loop_kind}.sock"
    units = {
        "sd.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nListenStream={path}\n"
        "FileDescriptorName=web\n",
        "sd.service": f"[Service]\nType=notify\nExecStart={exe}\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        assert read_line(("127.0.0.1", port)) == b"n=2 web:listening web:listening\n"
        pid = a.wait_for("start", unit="sd.service")["pid"]
        assert a.wait_for("ready", unit="sd.service")["pid"] == pid
        a.wait_for("stop", unit="sd.service", by="notify")  # STOPPING=1
        a.wait_for("exit", unit="sd.service", pid=pid, status=0)
        assert a.status("sd.service")["status_text"] == "n=2 web:listening web:listening"


PY_SYSTEMD = """
import os, socket, sys
from systemd import daemon
fds = daemon.listen_fds_with_names()
if "conn" in fds.values():
    conn = socket.socket(fileno=[fd for fd, name in fds.items() if name == "conn"][0])
    conn.sendall(b"again %d %s\\n" % (os.getpid(), ",".join(sorted(fds.values())).encode()))
    conn.close()
    daemon.notify("READY=1")
    sys.exit(0)
assert daemon.notify("READY=1\\nSTATUS=first")
conn, _ = socket.socket(fileno=min(fds)).accept()
conn.sendall(b"first %d %s\\n" % (os.getpid(), ",".join(fds.values()).encode()))
daemon.notify("FDSTORE=1\\nFDNAME=conn", fds=[conn.fileno()])
os._exit(3)
"""


def test_python_systemd_notify_and_fd_store(programs, loop_kind):
    need(
        subprocess.run([SYSTEM_PYTHON, "-c", "import systemd.daemon"]).returncode == 0,
        "python-systemd (Debian package python3-systemd)",
    )
    script = programs / "pysd.py"
    script.write_text(PY_SYSTEMD)
    script.chmod(0o644)
    port = free_port()
    units = {
        "p.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "p.service": f"[Service]\nType=notify\nExecStart={SYSTEM_PYTHON} {script}\nUser=nobody\n"
        "FileDescriptorStoreMax=1\nRestart=on-failure\nRestartSec=0\n",
    }
    with Activator(units, loop=loop_kind) as a:
        first, again = read_line(("127.0.0.1", port)).decode().splitlines()
        first, again = first.split(), again.split()
        assert first[0] == "first" and first[2] == "p.socket"
        assert again[0] == "again" and again[2] == "conn,p.socket" and again[1] != first[1]
        a.wait_for("exit", unit="p.service", pid=int(first[1]), status=3)
        a.wait_for("restart", unit="p.service", result="exit-code")
        a.wait_for("exit", unit="p.service", pid=int(again[1]), status=0)


@pytest.fixture(scope="module")
def gunicorn(programs):
    target = programs / "site"
    pip_install(target, "gunicorn")
    (target / "hello.py").write_text(
        "def app(environ, start_response):\n"
        "    body = b'hello from %d\\n' % __import__('os').getuid()\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain'),"
        " ('Content-Length', str(len(body)))])\n"
        "    return [body]\n"
    )
    (target / "hello.py").chmod(0o644)
    return target


@pytest.mark.slow
def test_gunicorn_serves_http_as_nobody(gunicorn, loop_kind):
    port = free_port()
    units = {
        "web.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\n",
        "web.service": f"[Service]\nType=notify\nUser=nobody\nEnvironment=PYTHONPATH={gunicorn}\n"
        f"ExecStart={SYSTEM_PYTHON} -m gunicorn --workers 2 --chdir {gunicorn} hello:app\n"
        "TimeoutStopSec=20\n",
    }
    with Activator(units, loop=loop_kind) as a:
        for _ in range(3):
            reply = read_line(
                ("127.0.0.1", port), send=b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", timeout=30
            )
            head, _, body = reply.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), reply
            assert body == b"hello from %d\n" % NOBODY.pw_uid
        arbiter = a.wait_for("start", unit="web.service")["pid"]
        assert a.wait_for("ready", unit="web.service", timeout=30)["pid"] == arbiter
        assert a.status("web.service")["status_text"] == "Gunicorn arbiter booted"
        assert a.count("start", unit="web.service") == 1  # the workers are its own children
        a.ctl("stop", "web.service", check=True)
        a.wait_for("exit", unit="web.service", pid=arbiter)
        assert a.status("web.service")["state"] == "inactive"


def test_git_daemon_inetd_clone(programs, loop_kind, tmp_path):
    git = shutil.which("git")
    need(git is not None, "git (Debian package git)")
    base = programs / f"git-{loop_kind}"
    base.mkdir()
    base.chmod(0o755)
    run = dict(check=True, capture_output=True, timeout=60)
    src = tmp_path / "src"
    subprocess.run([git, "init", "-q", str(src)], **run)
    (src / "README").write_text("served by git daemon --inetd under activator\n")
    subprocess.run([git, "-C", str(src), "add", "README"], **run)
    subprocess.run(
        [
            git,
            "-C",
            str(src),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.org",
            "commit",
            "-q",
            "-m",
            "one",
        ],
        **run,
    )
    subprocess.run([git, "clone", "-q", "--bare", str(src), str(base / "repo.git")], **run)
    for root, dirs, files in os.walk(base):  # git refuses a repository someone else owns
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), NOBODY.pw_uid, NOBODY.pw_gid)
    port = free_port()
    units = {
        "git.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n",
        "git@.service": f"[Service]\nExecStart={git} daemon --inetd --export-all "
        f"--base-path={base}\nStandardInput=socket\nStandardError=journal\nUser=nobody\n",
    }
    with Activator(units, loop=loop_kind) as a:
        for n in range(2):
            dest = tmp_path / f"clone{n}"
            r = subprocess.run(
                [git, "clone", "-q", f"git://127.0.0.1:{port}/repo.git", str(dest)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert r.returncode == 0, r.stderr + a.log_text()
            assert (dest / "README").read_text().startswith("served by git daemon")
        starts = [
            e
            for e in a.events
            if e.get("event") == "start" and e.get("unit", "").startswith("git@")
        ]
        assert [e["unit"].split("-")[0] for e in starts] == ["git@0", "git@1"]
        for e in starts:  # one git daemon per connection, each done when its client is
            a.wait_for("exit", unit=e["unit"], pid=e["pid"], status=0)
        assert a.status("git.socket")["NConnections"] == 0
