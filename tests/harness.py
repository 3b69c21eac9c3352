"""Running a real activator in tests: start it, wait on its log lines, talk to it, stop it.

Nothing here sleeps to wait: every wait reads activator's own JSON log lines or a
socket, bounded by a deadline. Every process started is killed and reaped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
PROBE_SRC = Path(__file__).with_name("probe.py")
LOG_SCHEMA = Path(__file__).parents[1] / "docs" / "log-events.schema.json"
_validator = None


def event_time(event: dict) -> float:
    """A log line's RFC 3339 ``time`` as Unix seconds."""
    import datetime

    return datetime.datetime.fromisoformat(event["time"]).timestamp()


def log_line_problems(line: bytes) -> list[str]:
    """What is wrong with one line of activator's JSON log: not JSON, or not what
    docs/log-events.schema.json says of its event (issue 13: every line the suite's
    activators write is checked here)."""
    global _validator
    if _validator is None:
        import jsonschema

        schema = json.loads(LOG_SCHEMA.read_text())
        _validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.FormatChecker()
        )
    try:
        record = json.loads(line)
    except ValueError:
        return [f"not a JSON line: {line[:200]!r}"]
    return [
        f"{record.get('event')}: {e.message} in {line[:300]!r}"
        for e in _validator.iter_errors(record)
    ]


#: The reason of a skip that CI lets through (tests/conftest.py fails every other skip under
#: CI=true): a privilege this machine, itself a container, withholds and no package brings.
IMPOSSIBLE = "impossible on this machine: "


def impossible_here(reason: str) -> None:
    """Skip, also in CI, for a privilege the machine withholds; ``reason`` names it.
    Anything else a test lacks must be installed by .ci/run, and fails in CI."""
    import pytest

    pytest.skip(IMPOSSIBLE + reason)


#: Every public_dir() of this test session; tests/conftest.py removes them at the end.
CREATED: list[Path] = []


def public_dir(prefix: str = "activator-test-") -> Path:
    """A directory every user can read and traverse (nobody's programs live here)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    d.chmod(0o755)
    CREATED.append(d)
    return d


def install_probe(d: Path) -> str:
    dst = d / "probe.py"
    shutil.copy(PROBE_SRC, dst)
    dst.chmod(0o755)
    return str(dst)


def hold_units(port: int, name: str = "h", socket_extra: str = "", answer: str = "done"):
    """An Accept=yes socket on loopback whose instances, as nobody, wait for a line and then
    answer ``answer``: instances a test holds open for as long as it needs them."""
    return {
        f"{name}.socket": f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n{socket_extra}",
        f"{name}@.service": f"[Service]\nExecStart=/bin/sh -c 'read x; echo {answer}'\n"
        "User=nobody\nStandardInput=socket\n",
    }


def free_port(host: str = "127.0.0.1") -> int:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_session(
    argv: list[str], timeout: float = 30, input: str | None = None, **kw
) -> subprocess.CompletedProcess:
    """Run argv in a session of its own, text in and out; on timeout kill the whole session
    (not only argv[0]: mmdebstrap, podman and unshare leave children), then raise."""
    p = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kw,
    )
    try:
        out, err = p.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


class Activator:
    """A running activator process with its unit dir and control socket."""

    def __init__(
        self,
        units: dict[str, str],
        *,
        loop: str = "asyncio",
        extra_args=(),
        env=None,
        wrapper: list[str] | Callable[[Path], list[str]] | None = None,
        pass_fds: tuple[int, ...] = (),
        nofile: int | None = None,
        user: int | None = None,
        python: str | None = None,
        control: str | None = None,
        default_control: str | None = None,
        ready_timeout: float = 20,
    ) -> None:
        """``user``: run activator as that uid (and its primary group, no others): rootless;
        its directory becomes its own. ``python``: the interpreter (one ``user`` may run,
        with ``env`` giving PYTHONPATH: see ``rootless_env()``). ``control``: the control
        socket's path (another activator's, to start where it stopped: its state record);
        ``default_control``: where it will be without ``--control`` (activator's default
        is tested)."""
        self.dir = public_dir()
        self.unit_dir = self.dir / "units"
        self.unit_dir.mkdir()
        for name, text in units.items():
            p = self.unit_dir / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        if user is not None:
            os.chown(self.dir, user, -1)
        self.control = default_control or control or str(self.dir / "control.sock")
        cmd = [
            python or sys.executable,
            "-m",
            "activator",
            "--units",
            str(self.unit_dir),
            *(() if default_control else ("--control", self.control)),
            "--loop",
            loop,
            "--log-format",
            "json",
            *extra_args,
        ]
        if callable(wrapper):  # a wrapper that needs to know the directory (a chroot binds it)
            wrapper = wrapper(self.dir)
        if wrapper:
            cmd = [*wrapper, *cmd]
        full_env = dict(os.environ)
        full_env.update(env or {})

        def limit_fds() -> None:  # `ulimit -n` for activator alone
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        ids = {}
        if user is not None:
            import pwd

            ids = {"user": user, "group": pwd.getpwuid(user).pw_gid, "extra_groups": []}
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            start_new_session=True,
            pass_fds=pass_fds,
            preexec_fn=limit_fds if nofile is not None else None,
            **ids,
        )
        with contextlib.suppress(OSError):  # room for a burst of lines (a chatty service)
            fcntl.fcntl(self.proc.stderr.fileno(), 1031, 1 << 20)  # F_SETPIPE_SZ
        self.events: list[dict] = []
        self.log_problems: list[str] = []  # lines that break the log's schema
        self._raw: list[bytes] = []
        self._eof = False
        # A thread reads the log all the time: a test that is busy elsewhere (a flood) must
        # never leave activator blocked on a full stderr pipe.
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        try:
            # activator's own ready line names no unit (a service's READY=1 does)
            self.ready = self.wait_for("ready", timeout=ready_timeout, unit=None)
        except BaseException:
            self.close()
            raise
        # the activator process itself (behind a wrapper such as unshare --fork, its child;
        # a wrapper that execs activator has none)
        self.pid = self.proc.pid
        if wrapper:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                self.pid = int((f.read().split() or [self.proc.pid])[0])

    # -- log lines
    def _read_log(self) -> None:
        for line in self.proc.stderr:
            self._raw.append(line)  # checked against the schema at the end (check_log)
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "raw", "line": line.decode(errors="replace").rstrip()}
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read(self, deadline: float) -> bool:
        """Wait until more log lines arrive (True), the deadline passes (False) or EOF (EOFError)."""
        with self._cond:
            seen = len(self.events)
            while len(self.events) == seen and not self._eof:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return False
                self._cond.wait(timeout)
            if len(self.events) == seen:
                raise EOFError(f"activator exited ({self.proc.poll()}); log:\n{self.log_text()}")
            return True

    def wait_for(self, event: str, timeout: float = 10, start: int = 0, **match) -> dict:
        """The first log event at index >= start with this name and fields; bounded."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.events):
                e = self.events[i]
                i += 1
                if e.get("event") == event and all(e.get(k) == v for k, v in match.items()):
                    return e
            if time.monotonic() >= deadline or self._eof:
                raise TimeoutError(f"no {event} {match} within {timeout}s; log:\n{self.log_text()}")
            try:
                self._read(deadline)
            except EOFError:
                self._eof = True

    def drain(self, timeout: float = 0.0) -> None:
        deadline = time.monotonic() + timeout
        with contextlib.suppress(EOFError):
            while not self._eof and self._read(deadline):
                pass

    def until(self, check, timeout: float = 10, what: str = "the condition"):
        """Poll ``check()`` until it returns something true, and return that; bounded.

        Between tries it waits for activator's next log line, at most 50 ms: most of what a
        test waits for (an exit, a count going down) comes with a line. Raises TimeoutError
        naming ``what`` with the last log lines."""
        deadline = time.monotonic() + timeout
        while True:
            got = check()
            if got:
                return got
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"not {what} within {timeout}s; log:\n{self.log_text()}")
            with contextlib.suppress(EOFError):
                self._read(min(deadline, now + 0.05))

    def barrier(self, timeout: float = 30) -> None:
        """Return once every line activator logged before this call has been read.

        A reload that finds no change is the marker: activator answers it after logging
        ``daemon-reload``, in order after everything it logged before. Only for a test whose
        unit files are as activator last read them."""
        n = len(self.events)
        self.ctl("reload", check=True)
        self.wait_for("daemon-reload", timeout=timeout, start=n, applied=True)

    def count(self, event: str, **match) -> int:
        return sum(
            1
            for e in self.events
            if e.get("event") == event and all(e.get(k) == v for k, v in match.items())
        )

    def log_text(self) -> str:
        return "\n".join(json.dumps(e) for e in self.events[-60:])

    # -- control
    def ctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [sys.executable, "-m", "activator.cli.ctl", "--control", self.control, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"activatorctl {args} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def status(self, unit: str) -> dict:
        r = self.ctl("--json", "status", unit)
        answer = json.loads(r.stdout)
        if not isinstance(answer, list):  # an error answer: say which
            raise AssertionError(f"activatorctl status {unit}: {answer}")
        return answer[0]

    # -- stop
    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then read the log to its end; returns the exit status (bounded)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        with contextlib.suppress(EOFError):
            while time.monotonic() < deadline and not self._eof:
                self._read(deadline)
        try:
            return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        self._reader.join(timeout=10)
        self.proc.stderr.close()
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Activator:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.proc.poll() is None:
                self.stop()
        finally:
            self.close()
        if exc[0] is None:
            self.check_log()

    def check_log(self) -> None:
        """Every line activator wrote is what docs/log-events.schema.json allows."""
        for line in self._raw:
            if len(self.log_problems) >= 20:
                break
            self.log_problems += log_line_problems(line)
        if self.log_problems:
            raise AssertionError(
                "activator wrote log lines its schema does not allow:\n"
                + "\n".join(self.log_problems)
            )


def rootless_env() -> dict[str, str] | None:
    """PYTHONPATH for running this checkout's activator under Debian's /usr/bin/python3 as
    another user (the venv's interpreter may live where only root can run it); None when
    that user could not read the checkout or the interpreter is another minor version."""
    import site
    import sysconfig

    root = str(Path(__file__).resolve().parent.parent)
    paths = [root, *site.getsitepackages()]
    if (
        not os.path.exists(SYSTEM_PYTHON)
        or sysconfig.get_python_version()
        != subprocess.run(
            [SYSTEM_PYTHON, "-c", "import sysconfig; print(sysconfig.get_python_version())"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    ):
        return None
    for p in paths:  # every directory up to / must be enterable by others
        while p != "/":
            if not os.stat(p).st_mode & 0o001:
                return None
            p = os.path.dirname(p)
    return {"PYTHONPATH": ":".join(paths)}


def read_line(addr, timeout: float = 10.0, send: bytes | None = None, family=None) -> bytes:
    """Connect, optionally send, read until EOF; bounded."""
    if family is None:
        family = (
            socket.AF_UNIX
            if isinstance(addr, str)
            else (socket.AF_INET6 if ":" in addr[0] else socket.AF_INET)
        )
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        if send:
            s.sendall(send)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def read_all(c: socket.socket) -> bytes:
    """Everything a connected socket receives until EOF (bounded by its own timeout)."""
    data = b""
    while chunk := c.recv(65536):
        data += chunk
    return data


def recv_exactly(c: socket.socket, n: int) -> bytes:
    """``n`` bytes, failing at an early EOF."""
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


def read_report(addr, **kw) -> dict:
    data = read_line(addr, **kw)
    return json.loads(data.decode().splitlines()[0])
