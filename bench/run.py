#!/usr/bin/env python3
"""make bench: activator beside tcpserver, tcpsvd and systemd-socket-activate (issue #6 §1).

    .venv/bin/python bench/run.py               # default run (3 reps, ~10 min on 2 cores)
    .venv/bin/python bench/run.py --quick       # smoke run (1 rep, small N, ~1-2 min)
    .venv/bin/python bench/run.py --only inetd,cold --reps 5 --n 3000
    .venv/bin/python bench/run.py --profile     # also py-spy the activator under load

Builds the C tools into bench/build/, installs the peers from Debian when they are
missing, measures activator and its peers in the same run with the same load client
and the same service, prints one table of ratios with the issue's targets as pass/fail,
and writes bench/results/<tag>.md and .json. See bench/README.md for what each row means.

Run as root (privilege drop to nobody). Loopback only; ports from 20000-31999; every
load loop is bounded in count and time; every process started is stopped and reaped.

Origin: the measuring approach (loadgen runs, /proc sampling, process-group stop, cold
starts) follows the shared yardstick's bench.py (results/baseline.md); this driver is
rewritten for the project's own table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import glob
import hashlib
import json
import os
import platform
import pwd
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(HERE, "build")
RESULTS = os.path.join(HERE, "results")
HOST = "127.0.0.1"
PORT_LO, PORT_HI = 20000, 32000  # below the ephemeral range (32768-60999)
CLK_TCK = os.sysconf("SC_CLK_TCK")
CFLAGS = ["-O2", "-Wall", "-Wextra"]

# C tools: (output, source, extra link flags)
TOOLS = [
    ("svc_hello", "svc_hello.c", []),
    ("loadgen", "loadgen.c", ["-lm"]),
    ("accept_fork", "accept_fork.c", []),
    ("proxyload", "proxyload.c", ["-lpthread"]),
]
# command -> Debian package providing it
NEEDED = {
    "tcpserver": "ucspi-tcp",
    "tcpsvd": "ipsvd",
    "systemd-socket-activate": "systemd",
    "setpriv": "util-linux",
    "gcc": "gcc",
    "make": "make",
}

SECTIONS = ("inetd", "fd3", "limit", "cold", "units", "instances", "logs", "client", "proxy",
            "idle")
ACTIVATOR_ROWS = ("activator-inetd", "activator-fd3", "activator-acl")
SD_PROXYD = "/lib/systemd/systemd-socket-proxyd"  # in Debian's systemd package, off PATH


# ---------------------------------------------------------------- small helpers
def ev_time(ev: dict) -> float | None:
    """A log line's time as Unix seconds: the RFC 3339 ``time`` (an older activator: ``ts``)."""
    if "time" in ev:
        return dt.datetime.fromisoformat(ev["time"]).timestamp()
    return ev.get("ts")


def log(msg: str) -> None:
    print(msg, flush=True)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=0, suffix="") -> str:
    if x is None:
        return "–"
    return f"{x:,.{nd}f}{suffix}"


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


# ---------------------------------------------------------------- setup: peers, build
def ensure_tools(no_install: bool) -> None:
    missing = {pkg for cmd, pkg in NEEDED.items() if shutil.which(cmd) is None}
    if not os.path.exists("/usr/include/stdio.h"):
        missing.add("libc6-dev")
    if not missing:
        return
    pkgs = sorted(missing)
    if no_install or os.geteuid() != 0:
        raise SystemExit(f"missing Debian packages: {' '.join(pkgs)} "
                         f"(apt-get install {' '.join(pkgs)})")
    log(f"installing from Debian: {' '.join(pkgs)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs]
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)


def build_tools() -> None:
    os.makedirs(BUILD, exist_ok=True)
    gcc = os.environ.get("CC", "gcc")
    for out, src, ldflags in TOOLS:
        o, s = os.path.join(BUILD, out), os.path.join(HERE, src)
        if os.path.exists(o) and os.path.getmtime(o) >= os.path.getmtime(s):
            continue
        log(f"building build/{out}")
        subprocess.run([gcc, *CFLAGS, "-o", o, s, *ldflags], check=True)


def find_activator(explicit: str | None) -> str | None:
    for cand in (explicit, os.path.join(os.path.dirname(sys.executable), "activator"),
                 os.path.join(ROOT, ".venv", "bin", "activator")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


# ---------------------------------------------------------------- /proc
def tcp_listen_ports() -> set[int]:
    ports = set()
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(fn) as f:
            next(f)
            for line in f:
                p = line.split()
                if p[3] == "0A":
                    ports.add(int(p[1].rsplit(":", 1)[1], 16))
    return ports


def tcp_listen_addrs() -> set[tuple[str, int]]:
    """(IPv4 address, port) of every TCP listener (/proc/net/tcp: little-endian hex)"""
    out = set()
    with contextlib.suppress(OSError), open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            if p[3] == "0A":
                a, port = p[1].split(":")
                ip = ".".join(str(b) for b in reversed(bytes.fromhex(a)))
                out.add((ip, int(port, 16)))
    return out


def tcp_ports_any() -> set[int]:
    ports = set()
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(fn) as f:
            next(f)
            for line in f:
                ports.add(int(line.split()[1].rsplit(":", 1)[1], 16))
    return ports


_used_ports: set[int] = set()


def pick_ports(k: int) -> list[int]:
    busy = tcp_ports_any() | _used_ports
    free = [p for p in range(PORT_LO, PORT_HI) if p not in busy]
    if len(free) < k:
        raise RuntimeError(f"only {len(free)} free ports in {PORT_LO}-{PORT_HI - 1}")
    got = random.sample(free, k)
    _used_ports.update(got)
    if len(_used_ports) > 8000:  # long runs: forget old picks (their listeners are gone)
        _used_ports.clear()
        _used_ports.update(got)
    return got


#: Ports one loopback address gives the units row; beyond it the next address (127.0.N.1).
PORTS_PER_ADDR = 2000


def pick_listeners(k: int) -> list[tuple[str, int]]:
    """k (address, port) pairs for the units row: 127.0.0.1 up to PORTS_PER_ADDR of them,
    then 127.0.1.1, 127.0.2.1 … (10,000 units need more ports than 20000-31999 hold free
    on one address; every 127/8 address is loopback). A port busy on any address is
    left out on all of them."""
    busy = tcp_ports_any() | _used_ports
    free = [p for p in range(PORT_LO, PORT_HI) if p not in busy]
    per = min(PORTS_PER_ADDR, len(free))
    if per == 0:
        raise RuntimeError(f"no free port in {PORT_LO}-{PORT_HI - 1}")
    out: list[tuple[str, int]] = []
    j = 0
    while len(out) < k:
        host = HOST if j == 0 else f"127.0.{j}.1"
        out += [(host, port) for port in random.sample(free, min(per, k - len(out)))]
        j += 1
    return out


def control_request(path: str, verb: str, units: list[str] | None = None,
                    timeout: float = 30.0) -> tuple[float, dict]:
    """one request on activator's control socket (control/protocol.py: a JSON line each
    way): (seconds from connect to the whole answer, the answer)"""
    import socket as _socket
    req = json.dumps({"v": 1, "verb": verb, "units": units or [], "args": {}}).encode() + b"\n"
    t0 = time.perf_counter()
    with _socket.socket(_socket.AF_UNIX) as c:
        c.settimeout(timeout)
        c.connect(path)
        c.sendall(req)
        chunks = []
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            chunks.append(b)
    dt_s = time.perf_counter() - t0
    return dt_s, json.loads(b"".join(chunks))


def proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_s(pid: int) -> tuple[float, float] | None:
    """(utime+stime, cutime+cstime) of pid in seconds, all threads"""
    st = proc_stat(pid)
    if not st:
        return None
    ut, stime, cut, cst = (int(x) for x in st[11:15])
    return (ut + stime) / CLK_TCK, (cut + cst) / CLK_TCK


def thread_cpu_s(pid: int) -> dict[int, float]:
    """tid -> utime+stime seconds, for every thread of pid"""
    out = {}
    for d in glob.glob(f"/proc/{pid}/task/*"):
        with contextlib.suppress(OSError, IndexError, ValueError), open(f"{d}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
            out[int(os.path.basename(d))] = (int(st[11]) + int(st[12])) / CLK_TCK
    return out


def rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def ctx_switches(pid: int) -> tuple[int, int]:
    """(voluntary + nonvoluntary context switches over all threads, thread count)"""
    total = n = 0
    for st in glob.glob(f"/proc/{pid}/task/*/status"):
        with contextlib.suppress(OSError), open(st) as f:
            n += 1
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total, n


def all_ppids() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, starttime)"""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                out[int(d)] = (int(st[1]), st[19])
    return out


def descendants(pid: int) -> list[tuple[int, str]]:
    table = all_ppids()
    kids: dict[int, list[int]] = {}
    for p, (pp, _) in table.items():
        kids.setdefault(pp, []).append(p)
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append((c, table[c][1]))
            todo.append(c)
    return out


def listen_overflows() -> int | None:
    try:
        lines = read("/proc/net/netstat").splitlines()
        for hdr, val in zip(lines[::2], lines[1::2], strict=False):
            if hdr.startswith("TcpExt:"):
                d = dict(zip(hdr.split()[1:], val.split()[1:], strict=False))
                return int(d.get("ListenOverflows", 0))
    except (OSError, ValueError):
        pass
    return None


def machine() -> dict:
    model = "?"
    with contextlib.suppress(OSError):
        for line in read("/proc/cpuinfo").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    osr = {}
    with contextlib.suppress(OSError):
        for line in read("/etc/os-release").splitlines():
            k, _, v = line.partition("=")
            osr[k] = v.strip('"')
    mem = None
    with contextlib.suppress(OSError, ValueError):
        mem = int(read("/proc/meminfo").split("\n")[0].split()[1]) // 1024
    vers = {}
    for pkg in ("ucspi-tcp", "ipsvd", "systemd"):
        if shutil.which("dpkg-query"):
            r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                               capture_output=True, text=True)
            vers[pkg] = r.stdout.strip() or None
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "os": osr.get("PRETTY_NAME"), "mem_mib": mem, "python": platform.python_version(),
            "packages": vers, "loadavg": read("/proc/loadavg").split()[:3]}


def source_digest() -> str:
    """hash of activator's sources: the tree may change while a run is going on"""
    h = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(ROOT, "activator", "**", "*.[pc]*"),
                                 recursive=True)):
        if path.endswith((".py", ".c")):
            with open(path, "rb") as f:
                h.update(path.encode() + b"\0" + f.read())
    return h.hexdigest()[:12]


def git_rev() -> str | None:
    if shutil.which("git") is None:
        return None
    r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True)
    if r.returncode:
        return None
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + ("+dirty" if dirty else "")


# ---------------------------------------------------------------- processes
LIVE: set[Proc] = set()


def set_subreaper() -> None:
    """Orphans of what we start (a service whose supervisor died) come back to us."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_orphans() -> None:
    """Kill and reap children of ours that no running Proc owns (adopted orphans)."""
    me, live = os.getpid(), {p.pid for p in LIVE}
    for pid, (ppid, _) in all_ppids().items():
        if ppid == me and pid not in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def kill_listed(procs: list[tuple[int, str]]) -> None:
    """SIGTERM, then SIGKILL, the listed (pid, starttime) that still exist (same start time)."""
    alive = lambda: [(p, s) for p, s in procs if (st := proc_stat(p)) and st[19] == s  # noqa: E731
                     and st[0] != "Z"]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = alive()
        if not left:
            return
        for p, _ in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
        t0 = time.monotonic()
        while alive() and time.monotonic() - t0 < 1.0:
            time.sleep(0.02)


class Proc:
    """A process started in its own process group, stdout+stderr to a log file."""

    seq = 0

    def __init__(self, name: str, argv: list[str], scratch: str) -> None:
        Proc.seq += 1
        self.name = name
        self.argv = argv
        self.logpath = os.path.join(scratch, "logs", f"{Proc.seq:04d}-{name}.log")
        os.makedirs(os.path.dirname(self.logpath), exist_ok=True)
        self.log = open(self.logpath, "wb")  # noqa: SIM115
        self.t_exec = time.time()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=self.log, start_new_session=True, cwd=scratch)
        self.pid = self.p.pid
        LIVE.add(self)
        self._read_pos = 0
        self.events: list[dict] = []

    def alive(self) -> bool:
        return self.p.poll() is None

    def wait_listen(self, ports: list[int], timeout: float = 10.0) -> float:
        t0 = time.monotonic()
        want = set(ports)
        while time.monotonic() - t0 < timeout:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited {self.p.returncode} before listening: "
                                   f"{self.tail()}")
            if want <= tcp_listen_ports():
                return time.monotonic() - t0
            time.sleep(0.005)
        raise RuntimeError(f"{self.name}: not listening on {sorted(want)[:5]} after {timeout} s")

    def poll_events(self) -> list[dict]:
        """new JSON lines of the log (activator --log-format json)"""
        with open(self.logpath, "rb") as f:
            f.seek(self._read_pos)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._read_pos += end
        new = []
        for line in data[:end].splitlines():
            if line.startswith(b"{"):
                with contextlib.suppress(ValueError):
                    new.append(json.loads(line))
        self.events += new
        return new

    def wait_event(self, name: str, timeout: float = 30.0) -> dict:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            for ev in self.poll_events():
                if ev.get("event") == name:
                    return ev
            if not self.alive():
                self.poll_events()
                raise RuntimeError(f"{self.name} exited {self.p.returncode} before '{name}': "
                                   f"{self.tail()}")
            time.sleep(0.003)
        raise RuntimeError(f"{self.name}: no '{name}' event after {timeout} s: {self.tail()}")

    def tail(self, n: int = 600) -> str:
        with contextlib.suppress(OSError):
            with open(self.logpath, "rb") as f:
                f.seek(max(0, os.path.getsize(self.logpath) - n))
                return f.read().decode(errors="replace").strip().replace("\n", " | ")
        return ""

    def stop(self) -> None:
        if self not in LIVE:
            return
        desc = descendants(self.pid)  # services lead their own sessions: not in our group
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 3.0)):
            if self.p.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.p.wait(wait)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # stragglers of the group
        kill_listed(desc)
        LIVE.discard(self)
        self.log.close()
        reap_orphans()

    def event_counts(self) -> dict[str, int]:
        self.poll_events()
        counts: dict[str, int] = {}
        for ev in self.events:
            counts[ev.get("event", "?")] = counts.get(ev.get("event", "?"), 0) + 1
        return counts

    def notable_events(self, k: int = 5) -> list[dict]:
        skip = {"start", "exit", "listen", "bind", "ready", "accept", "stop"}
        return [e for e in self.events if e.get("event") not in skip][:k]


def stop_all() -> None:
    for p in list(LIVE):
        with contextlib.suppress(Exception):
            p.stop()
    with contextlib.suppress(Exception):
        reap_orphans()


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.max = pid, every, None
        self.ev = threading.Event()

    def run(self) -> None:
        while not self.ev.is_set():
            r = rss_kib(self.pid)
            if r is not None and (self.max is None or r > self.max):
                self.max = r
            self.ev.wait(self.every)

    def stop(self) -> int | None:
        self.ev.set()
        self.join()
        return self.max


# ---------------------------------------------------------------- load client
def loadgen(port: int, n: int, c: int, tlimit: float, warm: int = 0) -> dict:
    argv = [os.path.join(BUILD, "loadgen"), "-H", HOST, "-p", str(port), "-n", str(n),
            "-c", str(c), "-t", str(tlimit), "-T", "10000", "-W", str(warm), "-j"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=tlimit + 40)
    try:  # no successful connection: loadgen prints nan for the percentiles
        return json.loads(r.stdout.replace(":nan", ":null"))
    except json.JSONDecodeError as e:
        raise RuntimeError(f"loadgen failed rc={r.returncode}: {r.stdout} {r.stderr}") from e


def measured_load(proc: Proc, port: int, n: int, c: int, tlimit: float) -> dict:
    """one loadgen run, with the supervisor's CPU (before/after) and max RSS"""
    sampler = RssSampler(proc.pid)
    cpu0, lo0, th0 = cpu_s(proc.pid), listen_overflows(), thread_cpu_s(proc.pid)
    sampler.start()
    r = loadgen(port, n, c, tlimit)
    time.sleep(0.25)  # the last children exit and are reaped
    rss = sampler.stop()
    cpu1, lo1, th1 = cpu_s(proc.pid), listen_overflows(), thread_cpu_s(proc.pid)
    out = {"c": c, "n": n, "rate": r["rate"], "ok": r["ok"], "errors": r["errors"],
           "err": r["err"], "not_started": r["not_started"], "wall_s": r["wall_s"],
           "lat_ms": r["lat_ms"], "ttfb_ms": r["ttfb_ms"], "client_cpu_pct": r["client_cpu_pct"],
           "rss_max_kib": rss, "supervisor_alive": proc.alive(),
           "listen_overflows": (lo1 - lo0) if lo0 is not None and lo1 is not None else None}
    if cpu0 and cpu1 and r["ok"]:
        out["sup_cpu_ms_per_1k"] = 1e6 * (cpu1[0] - cpu0[0]) / r["ok"]
        out["children_cpu_ms_per_1k"] = 1e6 * (cpu1[1] - cpu0[1]) / r["ok"]
        if len(th1) > 1:  # where a multi-threaded supervisor spends it
            out["thread_cpu_ms_per_1k"] = {
                ("main" if tid == proc.pid else f"thread {tid}"):
                1e6 * (t - th0.get(tid, 0.0)) / r["ok"] for tid, t in sorted(th1.items())}
    return out


# ---------------------------------------------------------------- what we run
class Ctx:
    def __init__(self, args, scratch: str, svc: str, activator: str | None,
                 nobody: pwd.struct_passwd) -> None:
        self.args, self.scratch, self.svc, self.activator = args, scratch, svc, activator
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid

    def svc_argv(self, mode: str) -> list[str]:
        """the same service for every row; it refuses the wrong convention or uid
        (--svc-log: in fd3 mode it also writes a log line to stderr per connection)"""
        log_line = ["-L"] if self.args.svc_log and mode == "fd3" else []
        return [self.svc, "-M", mode, "-U", str(self.uid), *log_line]

    def as_nobody(self) -> list[str]:
        """drop privileges once, for the whole server, before it binds (port > 1024)"""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]

    def activator_argv(self, units: str, *extra: str) -> list[str]:
        argv = [self.activator, "--units", units, "--control",
                os.path.join(os.path.dirname(units), "control.sock"), "--log-format", "json",
                *extra]
        if self.args.loop:
            argv += ["--loop", self.args.loop]
        return argv

    def units_dir(self, tag: str) -> str:
        d = tempfile.mkdtemp(prefix=f"{tag}.", dir=self.scratch)
        os.mkdir(os.path.join(d, "units"))
        return os.path.join(d, "units")


SOCKET_UNIT = """\
[Unit]
Description=activator bench socket ({what})

[Socket]
ListenStream={host}:{port}
Accept={accept}
Backlog=4096
{extra}"""

SERVICE_UNIT = """\
[Unit]
Description=activator bench service ({what})

[Service]
ExecStart={cmd}
User=nobody
{extra}"""


def acl_lines(n: int = 1000) -> str:
    """IPAddressAllow= of the activator-acl row: n CIDRs (a fixed seed; 127.0.0.1 the last,
    so loadgen is let in), then deny any: the BPF filter and the lane's table both hold
    all of them."""
    rng = random.Random(16)
    nets = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.0/"
            f"{rng.choice((16, 20, 24))}" for _ in range(n - 1)] + ["127.0.0.1"]
    return f"IPAddressAllow={' '.join(nets)}\nIPAddressDeny=any\n"


def write_pair(units: str, name: str, port: int, mode: str, svc_argv: list[str],
               *, load: bool = True, socket_extra: str = "", service_extra: str = "",
               host: str = HOST) -> None:
    """mode: inetd (Accept=yes, StandardInput=socket), fd3 (Accept=yes, LISTEN_FDS) or
    listen (Accept=no). load=True: MaxConnections=1024 and no trigger limit (see README)."""
    accept = mode in ("inetd", "fd3")
    extra = ""
    if accept and load:
        extra = "MaxConnections=1024\nTriggerLimitBurst=0\n"
    with open(os.path.join(units, f"{name}.socket"), "w") as f:
        f.write(SOCKET_UNIT.format(what=mode, host=host, port=port,
                                   accept="yes" if accept else "no", extra=extra + socket_extra))
    svc = f"{name}@.service" if accept else f"{name}.service"
    with open(os.path.join(units, svc), "w") as f:
        f.write(SERVICE_UNIT.format(what=mode, cmd=shlex.join(svc_argv),
                                    extra=("StandardInput=socket\n" if mode == "inetd" else "")
                                    + service_extra))


def start_row(ctx: Ctx, row: str) -> tuple[Proc, int]:
    """start one Accept=yes row on a fresh port, ready to take connections"""
    port = pick_ports(1)[0]
    a = ctx.args
    if row.startswith("activator-"):
        mode = row.split("-", 1)[1]
        units = ctx.units_dir(row)
        acl = acl_lines() if mode == "acl" else ""
        mode = "inetd" if mode == "acl" else mode
        # LogLevelMax=notice: no start/exit line per connection, as the peers log none
        # (tcpserver -q, tcpsvd without -v); README: "per-connection log lines"
        write_pair(units, "hello", port, mode, ctx.svc_argv(mode), socket_extra=acl,
                   service_extra="LogLevelMax=notice\n")
        p = Proc(row, ctx.activator_argv(units), ctx.scratch)
        try:
            p.wait_event("ready", a.start_timeout)
            p.wait_listen([port])
        except Exception:
            p.stop()
            raise
        return p, port
    svc = ctx.svc_argv("fd3" if row == "sd-activate-fd3" else "inetd")
    if row == "tcpserver":
        argv = ["tcpserver", "-q", "-R", "-H", "-l", "0", "-c", "1024", "-b", "4096",
                "-u", str(ctx.uid), "-g", str(ctx.gid), HOST, str(port), *svc]
    elif row == "tcpsvd":
        argv = ["tcpsvd", "-u", "nobody", "-c", "1024", "-b", "4096", "-l", "0",
                HOST, str(port), *svc]
    elif row == "sd-activate-fd3":
        argv = [*ctx.as_nobody(), "systemd-socket-activate", "-l", f"{HOST}:{port}",
                "--accept", *svc]
    elif row == "limit-spawn":
        argv = [*ctx.as_nobody(), os.path.join(BUILD, "accept_fork"), "-m", "spawn",
                "-b", "4096", HOST, str(port), *svc]
    else:
        raise ValueError(row)
    p = Proc(row, argv, ctx.scratch)
    try:
        p.wait_listen([port])
    except Exception:
        p.stop()
        raise
    return p, port


ROW_NOTES = {
    "activator-inetd": "activator, Accept=yes + StandardInput=socket, User=nobody",
    "activator-fd3": "activator, Accept=yes, connection on fd 3 + LISTEN_FDS=1, User=nobody",
    "activator-acl": "activator-inetd with IPAddressAllow= of 1,000 CIDRs + IPAddressDeny=any "
                     "(BPF filter on the listener, the lane's table)",
    "tcpserver": "tcpserver -q -R -H -l 0 -c 1024 -b 4096 -u 65534 -g 65534 (ucspi-tcp)",
    "tcpsvd": "tcpsvd -u nobody -c 1024 -b 4096 -l 0 (ipsvd)",
    "sd-activate-fd3": "setpriv (nobody) systemd-socket-activate --accept (fd 3 + LISTEN_FDS)",
    "limit-spawn": "setpriv (nobody) accept_fork -m spawn: minimal C accept+posix_spawn loop",
}


def selected_rows(args, have_activator: bool) -> list[str]:
    rows = []
    if "inetd" in args.sections:
        rows += ["activator-inetd", "activator-acl", "tcpserver", "tcpsvd"]
    if "fd3" in args.sections:
        rows += ["activator-fd3", "sd-activate-fd3"]
    if "limit" in args.sections:
        rows += ["limit-spawn"]
    rows += [r for r in args.rows if r not in rows]
    if not have_activator:
        rows = [r for r in rows if r not in ACTIVATOR_ROWS]
    return rows


# ---------------------------------------------------------------- sections
def show(row: str, r: dict, note: str = "") -> None:
    log(f"  {row:16s} C={r['c']:<3d} {r['rate']:8.1f} conn/s  p50={fmt(r['lat_ms']['p50'], 2):>7s} "
        f"p99={fmt(r['lat_ms']['p99'], 2):>7s} ms  err={r['errors']}"
        f"{' ' + str(r['err']) if r['errors'] else ''}"
        f"{' NOT-STARTED=' + str(r['not_started']) if r['not_started'] else ''}  "
        f"sup={fmt(r.get('sup_cpu_ms_per_1k'), 0)} ms/1k  cli={r['client_cpu_pct']:.0f}%{note}")


def accept_rep(ctx: Ctx, rows: list[str], rep: int) -> dict[str, dict]:
    """One rep of the Accept=yes rows. All rows are started first (an idle supervisor
    blocks in accept/epoll and costs nothing), then for each C every row takes its
    loadgen run in turn, so the runs a ratio compares are seconds apart."""
    a = ctx.args
    recs: dict[str, dict] = {}
    live: dict[str, tuple[Proc, int]] = {}
    try:
        for row in rows:
            recs[row] = {"rep": rep, "conc": {}}
            try:
                live[row] = start_row(ctx, row)
            except Exception as e:
                log(f"  !! {row}: {str(e)[:500]}")
                recs[row]["error"] = str(e)
        time.sleep(0.3)
        for row, (p, _) in live.items():
            recs[row]["rss_idle_kib"] = rss_kib(p.pid)
        if rep == 0 and a.idle_window > 0 and live:  # every row idle at once: one window
            w = min(2.0, a.idle_window)
            w0 = {row: ctx_switches(p.pid)[0] for row, (p, _) in live.items()}
            time.sleep(w)
            for row, (p, _) in live.items():
                recs[row]["idle_wakeups_per_s"] = (ctx_switches(p.pid)[0] - w0[row]) / w
        for row, (_, port) in live.items():
            recs[row]["warmup_errors"] = loadgen(port, a.warmup, 1, 30)["errors"]
        names = list(live)
        for i, c in enumerate(a.conc):
            k = (rep + i) % len(names) if names else 0
            for row in names[k:] + names[:k]:  # rotate the order: drifts spread over rows
                p, port = live[row]
                r = measured_load(p, port, a.n, c, a.tlimit)
                recs[row]["conc"][str(c)] = r
                show(row, r)
                time.sleep(0.2)
        if a.overload_c and rep == 0:
            for row in names:
                p, port = live[row]
                r = measured_load(p, port, a.overload_n, a.overload_c, a.tlimit)
                recs[row]["overload"] = r
                show(row, r, f"  max={fmt(r['lat_ms']['max'], 0)} ms (overload)")
                time.sleep(0.2)
        for row, (p, _) in live.items():
            recs[row]["alive_after"] = p.alive()
    finally:
        for row, (p, _) in live.items():
            p.stop()
            if row.startswith("activator"):
                recs[row]["events"] = p.event_counts()
                recs[row]["notable_events"] = p.notable_events()
    return recs


def cold_section(ctx: Ctx, have_activator: bool) -> dict:
    """Accept=no: connect -> first byte while the service is not yet running"""
    a = ctx.args
    rows = (["activator"] if have_activator else []) + ["sd-activate"]
    res: dict = {r: [] for r in rows}
    for i in range(a.cold):
        for row in rows if i % 2 == 0 else rows[::-1]:
            port = pick_ports(1)[0]
            if row == "activator":
                units = ctx.units_dir("cold")
                write_pair(units, "hello", port, "listen", ctx.svc_argv("listen"))
                p = Proc("cold-activator", ctx.activator_argv(units), ctx.scratch)
            else:
                p = Proc("cold-sd-activate", [*ctx.as_nobody(), "systemd-socket-activate", "-l",
                                              f"{HOST}:{port}", *ctx.svc_argv("listen")],
                         ctx.scratch)
            try:
                if row == "activator":
                    p.wait_event("ready", a.start_timeout)
                p.wait_listen([port])
                time.sleep(0.1)  # idle, service not started yet
                started_before = bool(descendants(p.pid)) if row == "activator" else None
                r = loadgen(port, 1, 1, 15)
                res[row].append({"ok": r["ok"], "ttfb_ms": r["ttfb_ms"]["p50"],
                                 "lat_ms": r["lat_ms"]["p50"], "errors": r["errors"],
                                 "service_running_before": started_before})
            except Exception as e:
                res[row].append({"ok": 0, "error": str(e)})
            finally:
                p.stop()
            if row == "activator" and res[row] and res[row][-1].get("ok"):
                p.poll_events()
                ts = {e.get("event"): ev_time(e) for e in p.events if e.get("unit") in
                      ("hello.socket", "hello.service")}
                if ts.get("trigger") and ts.get("start"):  # activator's own split
                    res[row][-1]["trigger_to_start_ms"] = 1000 * (ts["start"] - ts["trigger"])
    for row in rows:
        t = [x["ttfb_ms"] for x in res[row] if x.get("ok")]
        log(f"  cold {row:12s} p50={fmt(med(t), 2)} ms  max={fmt(max(t) if t else None, 2)} ms  "
            f"failures={sum(1 for x in res[row] if not x.get('ok'))}/{len(res[row])}")
    return res


def proxyload(*argv: str, timeout: float = 120) -> dict:
    r = subprocess.run([os.path.join(BUILD, "proxyload"), *argv], capture_output=True, text=True,
                       timeout=timeout)
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"proxyload {argv} failed rc={r.returncode}: {r.stderr}") from e


PROXY_ROWS = ("activator-proxy", "sd-proxyd", "direct")


def proxy_section(ctx: Ctx) -> dict:
    """X-Activator-ProxyTo= beside systemd-socket-proxyd and no proxy at all: the same server
    (proxyload -s, as nobody), the same client; 1 GiB bulk, 64 B request/response at C=16
    and C=1 (the added latency of one hop)."""
    a = ctx.args
    srv = os.path.join(ctx.scratch, "proxyload")
    shutil.copy2(os.path.join(BUILD, "proxyload"), srv)
    os.chmod(srv, 0o755)
    p_direct, p_sd, p_front, p_back = pick_ports(4)
    procs: list[Proc] = []
    out: dict = {r: {"bulk": [], "rr16": [], "rr1": []} for r in PROXY_ROWS}
    try:
        procs.append(Proc("proxy-direct", [*ctx.as_nobody(), srv, "-s", HOST, str(p_direct)],
                          ctx.scratch))
        procs.append(Proc("proxy-sd", [*ctx.as_nobody(), "systemd-socket-activate", "-l",
                                       f"{HOST}:{p_sd}", SD_PROXYD, f"{HOST}:{p_direct}"],
                          ctx.scratch))
        units = ctx.units_dir("proxy")
        with open(os.path.join(units, "p.socket"), "w") as f:
            f.write(f"[Socket]\nListenStream={HOST}:{p_front}\n"
                    f"X-Activator-ProxyTo={HOST}:{p_back}\n")
        with open(os.path.join(units, "p.service"), "w") as f:
            f.write(f"[Service]\nExecStart={srv} -s {HOST} {p_back}\nUser=nobody\n")
        act = Proc("proxy-activator", ctx.activator_argv(units), ctx.scratch)
        procs.append(act)
        act.wait_event("ready", a.start_timeout)
        for p, port in zip(procs, (p_direct, p_sd, p_front), strict=True):
            p.wait_listen([port])
        ports = dict(zip(PROXY_ROWS, (p_front, p_sd, p_direct), strict=True))
        for port in ports.values():  # warm: the first connection starts the service
            proxyload("-r", HOST, str(port), "16", "50", "64")
        for rep in range(a.proxy_reps):
            order = list(PROXY_ROWS) if rep % 2 == 0 else list(PROXY_ROWS)[::-1]
            for row in order:
                port = str(ports[row])
                out[row]["bulk"].append(proxyload("-b", HOST, port, str(a.proxy_bytes)))
                out[row]["rr16"].append(proxyload("-r", HOST, port, "16", str(a.proxy_rr), "64"))
                out[row]["rr1"].append(proxyload("-r", HOST, port, "1", str(a.proxy_rr), "64"))
        out["activator_status"] = act.event_counts()
    finally:
        for p in procs:
            p.stop()
    for row in PROXY_ROWS:
        x = out[row]
        log(f"  {row:16s} bulk {fmt(med([b['mib_s'] for b in x['bulk']]), 0)} MiB/s  "
            f"rr C=16 {fmt(med([r['rate'] for r in x['rr16']]))}/s "
            f"p50 {fmt(med([r['p50_us'] for r in x['rr16']]), 0)} µs  "
            f"rr C=1 p50 {fmt(med([r['p50_us'] for r in x['rr1']]), 0)} µs")
    return out


def idle_section(ctx: Ctx) -> dict:
    """Scale to zero: a fresh activator's first cold start (Accept=no, svc_hello listen mode),
    then, after X-Activator-IdleStopSec= stopped the service, the next one."""
    a = ctx.args
    res: dict = {"first": [], "after_idle": []}
    for _ in range(a.idle_runs):
        port = pick_ports(1)[0]
        units = ctx.units_dir("idle")
        write_pair(units, "hello", port, "listen", ctx.svc_argv("listen"),
                   service_extra="X-Activator-IdleStopSec=0.3s\n")
        p = Proc("idle-activator", ctx.activator_argv(units), ctx.scratch)
        try:
            p.wait_event("ready", a.start_timeout)
            p.wait_listen([port])
            time.sleep(0.1)  # idle, service not started yet (as the cold row)
            r1 = loadgen(port, 1, 1, 15)
            p.wait_event("exit", 10)  # the service's: svc_hello serves until it is stopped
            if not any(e.get("event") == "idle" for e in p.events):
                raise RuntimeError("the service exited, but not by X-Activator-IdleStopSec=")
            time.sleep(0.1)
            r2 = loadgen(port, 1, 1, 15)
            if r1["ok"] and r2["ok"]:
                res["first"].append(r1["ttfb_ms"]["p50"])
                res["after_idle"].append(r2["ttfb_ms"]["p50"])
        except Exception as e:
            res.setdefault("errors", []).append(str(e)[:300])
        finally:
            p.stop()
    log(f"  cold start p50: first {fmt(med(res['first']), 2)} ms, after an idle stop "
        f"{fmt(med(res['after_idle']), 2)} ms ({len(res['first'])} runs)")
    return res


def units_section(ctx: Ctx) -> dict:
    """idle RSS, start-up time to `ready`, idle wake-ups and `status` latency with
    10/100/1,000/10,000 units"""
    a = ctx.args
    out: dict = {str(k): [] for k in a.unit_counts}
    for rep in range(a.unit_reps):
        for k in a.unit_counts:
            addrs = pick_listeners(k + 1)
            addrs, mhost, mport = addrs[:k], addrs[k][0], addrs[k][1]
            units = ctx.units_dir(f"units{k}")
            for i, (host, port) in enumerate(addrs):
                mode = "inetd" if i % 2 == 0 else "listen"
                write_pair(units, f"s{i:05d}", port, mode, ctx.svc_argv(mode), load=False,
                           host=host)
            # with the metrics server on (issue 13: the RSS target holds with it)
            p = Proc(f"units-{k}", ctx.activator_argv(units, "--metrics", f"{mhost}:{mport}"),
                     ctx.scratch)
            control = os.path.join(os.path.dirname(units), "control.sock")
            rec: dict = {"rep": rep, "addresses": len({h for h, _ in addrs})}
            try:
                # 10,000 units take longer than --start-timeout's default on main
                ev = p.wait_event("ready", max(a.start_timeout, k / 100))
                t_seen = time.time()
                t_ready = ev_time(ev)
                rec["startup_s"] = (t_ready - p.t_exec) if t_ready else t_seen - p.t_exec
                rec["ready_seen_s"] = t_seen - p.t_exec
                rec["ready_event"] = {k2: v for k2, v in ev.items() if k2 not in ("ts", "time")}
                rec["metrics"] = mport
                rec["startup_cpu_s"] = sum(cpu_s(p.pid) or (0.0, 0.0))
                listening = tcp_listen_addrs()
                rec["listening"] = sum(1 for x in addrs if x in listening)
                time.sleep(1.0)
                rec["rss_kib"] = rss_kib(p.pid)
                kids = [c for c, (pp, _) in all_ppids().items() if pp == p.pid]
                rec["children_rss_kib"] = sum(rss_kib(c) or 0 for c in kids)
                if rep == 0 and a.idle_window > 0:
                    w0, nthreads = ctx_switches(p.pid)
                    time.sleep(a.idle_window)
                    w1, _ = ctx_switches(p.pid)
                    rec["idle_wakeups"] = w1 - w0
                    rec["idle_window_s"] = a.idle_window
                    rec["idle_wakeups_per_s"] = (w1 - w0) / a.idle_window
                    rec["threads"] = nthreads
                # `activatorctl status` of one socket: the daemon's answer (a request on
                # the control socket, median of 21) and the whole command (interpreter
                # start-up included, median of 5); `list-units --all`: every unit, once
                one = [f"s{k - 1:05d}.socket"]  # the last by name
                ts = []
                for _ in range(21):
                    dt_s, ans = control_request(control, "status", one)
                    if not ans.get("ok"):
                        raise RuntimeError(f"status {one[0]}: {ans}")
                    ts.append(dt_s)
                rec["status_ms"] = 1000 * statistics.median(ts)
                ctl = os.path.join(os.path.dirname(ctx.activator or ""), "activatorctl")
                if os.access(ctl, os.X_OK):
                    cs = []
                    for _ in range(5):
                        t0 = time.perf_counter()
                        r = subprocess.run([ctl, "--control", control, "status", one[0]],
                                           capture_output=True, timeout=60)
                        cs.append(time.perf_counter() - t0)
                        if r.returncode not in (0, 3):
                            raise RuntimeError(f"activatorctl status: {r.stderr[-300:]!r}")
                    rec["status_cmd_ms"] = 1000 * statistics.median(cs)
                dt_s, ans = control_request(control, "list-units", None)
                rec["list_units_ms"] = 1000 * dt_s
                rec["alive"] = p.alive()
            except Exception as e:
                rec["error"] = str(e)
            finally:
                p.stop()
                rec["events"] = p.event_counts()
                rec["notable_events"] = p.notable_events(3)
            out[str(k)].append(rec)
            rss_mib = (rec.get("rss_kib") or 0) / 1024
            log(f"  units={k:<5d} start-up {fmt(rec.get('startup_s'), 3)} s  listening "
                f"{rec.get('listening', '–')}/{k}  RSS {fmt(rss_mib, 1)} MiB"
                f"  status {fmt(rec.get('status_ms'), 2)} ms"
                f" (command {fmt(rec.get('status_cmd_ms'), 0)} ms)"
                + (f"  wake-ups {rec['idle_wakeups']} in {a.idle_window:g} s"
                   if "idle_wakeups" in rec else "")
                + (f"  ERROR {rec['error'][:300]}" if "error" in rec else ""))
    return out


HOLD_SERVICE = """\
[Service]
ExecStart=/bin/cat
User=nobody
StandardInput=socket
"""


def raise_nofile(want: int) -> int:
    """RLIMIT_NOFILE of this process (and so of what it starts) raised to ``want`` where
    root may (up to fs.nr_open); the soft limit it got."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    with contextlib.suppress(OSError, ValueError):
        cap = int(read("/proc/sys/fs/nr_open"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, cap), max(hard, min(want, cap))))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def _hold_connections(port: int, n: int, conc: int, deadline: float,
                            release: asyncio.Event, report: dict,
                            up_flag: threading.Event | None = None) -> dict:
    """n connections to 127.0.0.1:port, at most ``conc`` being set up at once; each sends a
    line and waits for its echo (the instance, /bin/cat, runs), then stays open until
    ``release``. Errors: no connection, no echo within 10 s. Bounded by ``deadline``."""
    gate = asyncio.Semaphore(conc)
    held: list[asyncio.StreamWriter] = []
    errors: dict[str, int] = {}
    up = asyncio.Event()

    async def one(i: int) -> None:
        async with gate:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
                w.write(b"%d\n" % i)
                line = await asyncio.wait_for(r.readline(), 10)
                if line != b"%d\n" % i:
                    raise RuntimeError(f"echo {line[:40]!r}")
                held.append(w)
            except Exception as e:
                key = type(e).__name__ + (f" {e.errno}" if isinstance(e, OSError) else "")
                errors[key] = errors.get(key, 0) + 1
            if len(held) + sum(errors.values()) == n:
                up.set()

    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    try:
        await asyncio.wait_for(up.wait(), max(1.0, deadline - time.monotonic()))
    except TimeoutError:
        errors["deadline"] = n - len(held) - sum(errors.values())
    out = {"held": len(held), "errors": errors, "setup_s": time.monotonic() - t0}
    report.update(out)
    if up_flag is not None:
        up_flag.set()
    await release.wait()
    for w in held:
        w.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return out


def instances_section(ctx: Ctx) -> dict:
    """N concurrent Accept=yes instances held open: one socket (MaxConnections= N+16), a
    service that keeps its connection (/bin/cat as nobody, StandardInput=socket), N client
    connections that each see their line echoed and stay open. Supervisor RSS with them
    all up against before (after one connection: the first plans the lane), per instance;
    errors; RSS once they are all gone. The lane and the event-loop path each."""
    a = ctx.args
    out: dict = {"n": a.instances, "paths": {}}
    have = raise_nofile(3 * a.instances + 4096)
    pid_max = int(read("/proc/sys/kernel/pid_max"))
    out["nofile"], out["pid_max"] = have, pid_max
    n = min(a.instances, have - 256)  # the client's fds (the daemon's own: see "fds")
    if n < a.instances:
        log(f"  RLIMIT_NOFILE {have}: {n} instances, not {a.instances}")
    out["n"] = n
    for path in ("lane", "loop"):
        recs = out["paths"].setdefault(path, [])
        for rep in range(a.unit_reps):
            port = pick_ports(1)[0]
            units = ctx.units_dir(f"inst-{path}")
            with open(os.path.join(units, "hold.socket"), "w") as f:
                f.write(SOCKET_UNIT.format(what="hold", host=HOST, port=port, accept="yes",
                                           extra=f"MaxConnections={n + 16}\n"
                                                 "TriggerLimitBurst=0\n"))
            with open(os.path.join(units, "hold@.service"), "w") as f:
                f.write(HOLD_SERVICE)
            os.environ["ACTIVATOR_ACCEPT_LANE"] = "1" if path == "lane" else "0"
            try:
                p = Proc(f"instances-{path}", ctx.activator_argv(units), ctx.scratch)
            finally:
                del os.environ["ACTIVATOR_ACCEPT_LANE"]
            control = os.path.join(os.path.dirname(units), "control.sock")
            rec: dict = {"rep": rep, "n": n}
            release = asyncio.Event()
            loop = asyncio.new_event_loop()
            result: dict = {}
            th: threading.Thread | None = None
            try:
                p.wait_event("ready", a.start_timeout)
                p.wait_listen([port])
                warm = loop.run_until_complete(_hold_connections(
                    port, 1, 1, time.monotonic() + 20, _set(release), {}))
                if warm["held"] != 1:
                    raise RuntimeError(f"the first connection: {warm['errors']}")
                _await_status(control, "hold.socket", lambda s: s["NConnections"] == 0, 30)
                rec["rss0_kib"] = rss_kib(p.pid)
                release = asyncio.Event()
                up = threading.Event()
                budget = max(60.0, n / 50)
                th = threading.Thread(target=loop.run_until_complete, args=(_hold_connections(
                    port, n, 64, time.monotonic() + budget, release, result, up),))
                th.start()
                if not up.wait(budget + 30):
                    raise RuntimeError(f"the client did not finish within {budget + 30:g} s")
                time.sleep(1.0)  # the last instances' set-up is done: RSS with all of them
                rec["rss_kib"] = rss_kib(p.pid)
                st = _status(control, "hold.socket")
                rec["connections"], rec["refused"] = st["NConnections"], st["NRefused"]
                rec["instances_seen"] = sum(1 for pp, _ in all_ppids().values() if pp == p.pid)
                rec["threads"] = ctx_switches(p.pid)[1]
                with contextlib.suppress(OSError):
                    rec["fds"] = len(os.listdir(f"/proc/{p.pid}/fd"))
                loop.call_soon_threadsafe(release.set)
                th.join(120)
                rec.update(result)
                rec["errors_n"] = sum(result.get("errors", {}).values()) + rec["refused"]
                _await_status(control, "hold.socket", lambda s: s["NConnections"] == 0,
                              max(60.0, n / 100))
                time.sleep(1.0)
                rec["rss_after_kib"] = rss_kib(p.pid)
                if rec.get("rss0_kib") and rec.get("rss_kib") and rec.get("held"):
                    rec["kib_per_instance"] = (rec["rss_kib"] - rec["rss0_kib"]) / rec["held"]
                rec["alive"] = p.alive()
            except Exception as e:
                rec["error"] = str(e)[:500]
                if th is not None and th.is_alive():
                    loop.call_soon_threadsafe(release.set)
                    th.join(120)
            finally:
                p.stop()
                if th is None or not th.is_alive():
                    loop.close()
                rec["notable_events"] = p.notable_events(3)
            recs.append(rec)
            log(f"  {path:4s} N={n}: held {rec.get('held', '–')}, errors "
                f"{rec.get('errors_n', '–')} {rec.get('errors') or ''}, RSS "
                f"{fmt((rec.get('rss0_kib') or 0) / 1024, 1)} → "
                f"{fmt((rec.get('rss_kib') or 0) / 1024, 1)} MiB "
                f"({fmt(rec.get('kib_per_instance'), 2)} KiB/instance), after "
                f"{fmt((rec.get('rss_after_kib') or 0) / 1024, 1)} MiB, set-up "
                f"{fmt(rec.get('setup_s'), 1)} s"
                + (f"  ERROR {rec['error'][:300]}" if "error" in rec else ""))
    return out


def _set(ev: asyncio.Event) -> asyncio.Event:
    ev.set()  # the warm-up connection is released as soon as it is up
    return ev


def _status(control: str, unit: str) -> dict:
    _, ans = control_request(control, "status", [unit])
    if not ans.get("ok"):
        raise RuntimeError(f"status {unit}: {ans}")
    res = ans.get("result")
    return res[0] if isinstance(res, list) else res


def _await_status(control: str, unit: str, cond, timeout: float) -> dict:
    """poll `status` (bounded) until cond(its answer)"""
    t_end = time.monotonic() + timeout
    while True:
        st = _status(control, unit)
        if cond(st):
            return st
        if time.monotonic() > t_end:
            raise RuntimeError(f"{unit}: no such state within {timeout:g} s: {st}")
        time.sleep(0.2)


LOG_SERVICE = """\
[Service]
Type=oneshot
ExecStart={cmd}
User=nobody
"""


def logs_section(ctx: Ctx) -> dict:
    """the cost of a service's output: one service writes --log-mb MiB of 100-byte lines
    to stdout; activator reads them (StandardOutput=journal) and logs each as a JSON line.
    activator's CPU (utime+stime) from the start request to the service's exit line, per MiB;
    once with the output captured, once with StandardOutput=null (the start alone)."""
    a = ctx.args
    out: dict = {"mb": a.log_mb, "runs": []}
    for rep in range(a.unit_reps):
        for mode in ("journal", "null"):
            units = ctx.units_dir(f"logs-{mode}")
            with open(os.path.join(units, "chatter.service"), "w") as f:
                f.write(LOG_SERVICE.format(cmd=f"{ctx.svc} -W {a.log_mb}")
                        + ("StandardOutput=null\n" if mode == "null" else ""))
            p = Proc(f"logs-{mode}", ctx.activator_argv(units), ctx.scratch)
            rec: dict = {"rep": rep, "mode": mode}
            try:
                p.wait_event("ready", a.start_timeout)
                c0, t0 = cpu_s(p.pid), time.monotonic()
                ctl = os.path.join(os.path.dirname(ctx.activator), "activatorctl")
                subprocess.run([ctl, "--control", os.path.join(os.path.dirname(units),
                               "control.sock"), "start", "chatter.service"],
                               check=True, capture_output=True, timeout=300)
                while True:
                    ev = p.wait_event("exit", 300)
                    if ev.get("unit") == "chatter.service":
                        break
                wall = time.monotonic() - t0
                c1 = cpu_s(p.pid)
                rec["cpu_s"] = sum(c1) - sum(c0)
                rec["wall_s"] = wall
                rec["lines"] = p.event_counts().get("output", 0)
                rec["rss_kib"] = rss_kib(p.pid)
            except Exception as e:
                rec["error"] = str(e)
            finally:
                p.stop()
            out["runs"].append(rec)
            log(f"  logs {mode:7s} {a.log_mb} MiB: activator CPU {fmt(rec.get('cpu_s'), 2)} s, "
                f"wall {fmt(rec.get('wall_s'), 2)} s, output lines {rec.get('lines', '–')}"
                + (f"  ERROR {rec['error'][:300]}" if "error" in rec else ""))
    return out


def per_pair_kib(units: dict) -> dict[str, float]:
    """idle RSS growth per socket+service pair between consecutive unit counts (KiB)"""
    rss = {int(k): med([x.get("rss_kib") for x in recs]) for k, recs in units.items()}
    ks = sorted(k for k, v in rss.items() if v)
    return {f"{a}→{b}": (rss[b] - rss[a]) / (b - a) for a, b in zip(ks, ks[1:], strict=False)}


def client_section(ctx: Ctx) -> dict:
    """the client's own ceiling: svc_hello binds itself, no spawning"""
    port = pick_ports(1)[0]
    p = Proc("client-check", [ctx.svc, "-l", f"{HOST}:{port}"], ctx.scratch)
    try:
        p.wait_listen([port])
        r = loadgen(port, ctx.args.client_n, 16, 30, warm=20)
    finally:
        p.stop()
    log(f"  client ceiling C=16: {r['rate']:.0f} conn/s at {r['client_cpu_pct']:.0f}% of a core")
    return {"c": 16, "n": ctx.args.client_n, "rate": r["rate"], "errors": r["errors"],
            "client_cpu_pct": r["client_cpu_pct"], "p50_ms": r["lat_ms"]["p50"]}


def profile_section(ctx: Ctx, rows: list[str], tag: str) -> dict:
    """py-spy the activator under load (a separate run: sampling slows it down)"""
    a = ctx.args
    pyspy = shutil.which("py-spy") or shutil.which(
        "py-spy", path=os.path.dirname(sys.executable))
    if not pyspy:
        log("  py-spy not found (.venv/bin/python -m pip install py-spy); no profile")
        return {}
    out = {}
    for row in [r for r in rows if r in ACTIVATOR_ROWS]:
        p, port = start_row(ctx, row)
        raw = os.path.join(RESULTS, f"{tag}-pyspy-{row}.txt")
        try:
            spy = subprocess.Popen([pyspy, "record", "--pid", str(p.pid), "--rate", "500",
                                    "--format", "raw", "--output", raw, "--nonblocking",
                                    "--threads"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
            time.sleep(1.0)
            r = loadgen(port, max(a.n, 8000), 16, a.tlimit)
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        finally:
            p.stop()
        out[row] = {"rate_under_profiler": r["rate"], "raw": os.path.relpath(raw, ROOT),
                    **summarize_pyspy(raw)}
        log(f"  profile {row}: {out[row].get('samples', 0)} samples -> {raw}")
    return out


def summarize_pyspy(path: str, k: int = 15) -> dict:
    """Main thread only. py-spy counts a thread as busy while it waits inside a C call (here:
    vfork until the child has exec'd), so samples inside the spawn core's C call are counted
    apart and the top frames are over the rest: the Python work per connection."""
    if not os.path.exists(path):
        return {}
    self_t: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = in_spawn = other_threads = 0

    def func(frame: str) -> str:  # "f (file.py:12)" -> "f (file.py)"
        name, _, where = frame.partition(" (")
        return f"{name} ({where.split(':')[0].rstrip(')')})" if where else frame

    for line in read(path).splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        if not frames[0].startswith("thread ") or "MainThread" not in frames[0]:
            other_threads += int(n)
            continue
        frames = frames[1:]
        if not frames:
            continue
        if frames[-1].startswith("_call (activator/execcore.py"):
            in_spawn += int(n)
            continue
        total += int(n)
        self_t[frames[-1]] = self_t.get(frames[-1], 0) + int(n)
        for f in {func(f) for f in frames}:
            incl[f] = incl.get(f, 0) + int(n)

    def top(d, k):
        return [{"frame": f, "pct": 100 * c / total} for f, c in
                sorted(d.items(), key=lambda x: -x[1])[:k]]

    if not total:
        return {}
    for root in ("<module> (activator)", "main (activator/cli.py)", "run (activator/loops.py)",
                 "Runner.run (asyncio/runners.py)"):  # the frames every sample has
        incl.pop(root, None)
    return {"samples": total, "samples_in_spawn_call": in_spawn,
            "samples_other_threads": other_threads,
            "top_self": top(self_t, k), "top_inclusive": top(incl, 2 * k)}


# ---------------------------------------------------------------- aggregation
def aggregate(runs: dict, conc: list[int]) -> dict:
    agg = {}
    for row, reps in runs.items():
        reps = [r for r in reps if r and "conc" in r]
        if not reps:
            continue
        g: dict = {"conc": {}}
        for c in map(str, conc):
            xs = [r["conc"][c] for r in reps if c in r["conc"]]
            if not xs:
                continue
            g["conc"][c] = {
                "rate": med([x["rate"] for x in xs]),
                "rates": [x["rate"] for x in xs],
                "p50_ms": med([x["lat_ms"]["p50"] for x in xs]),
                "p99_ms": med([x["lat_ms"]["p99"] for x in xs]),
                "max_ms": max(x["lat_ms"]["max"] for x in xs),
                "errors": sum(x["errors"] for x in xs),
                "not_started": sum(x["not_started"] for x in xs),
                "conns": sum(x["ok"] + x["errors"] for x in xs),
                "sup_cpu_ms_per_1k": med([x.get("sup_cpu_ms_per_1k") for x in xs]),
                "children_cpu_ms_per_1k": med([x.get("children_cpu_ms_per_1k") for x in xs]),
                "sup_main_thread_ms_per_1k": med([(x.get("thread_cpu_ms_per_1k") or {}).get("main")
                                                  for x in xs]),
                "sup_other_threads_ms_per_1k": med([
                    sum(v for k, v in x["thread_cpu_ms_per_1k"].items() if k != "main")
                    for x in xs if x.get("thread_cpu_ms_per_1k")]),
                "client_cpu_pct": med([x["client_cpu_pct"] for x in xs]),
                "client_cpu_pct_max": max(x["client_cpu_pct"] for x in xs),
                "rss_max_kib": max(x["rss_max_kib"] or 0 for x in xs),
            }
        g["rss_idle_kib"] = med([r.get("rss_idle_kib") for r in reps])
        g["idle_wakeups_per_s"] = med([r.get("idle_wakeups_per_s") for r in reps])
        ov = [r["overload"] for r in reps if r.get("overload")]
        if ov:
            o = ov[0]
            g["overload"] = {"c": o["c"], "n": o["n"], "rate": o["rate"], "errors": o["errors"],
                             "err": o["err"], "not_started": o["not_started"],
                             "p50_ms": o["lat_ms"]["p50"], "p99_ms": o["lat_ms"]["p99"],
                             "max_ms": o["lat_ms"]["max"],
                             "listen_overflows": o["listen_overflows"]}
        g["client_cpu_pct_max"] = max([x["client_cpu_pct_max"] for x in g["conc"].values()]
                                      + ([ov[0]["client_cpu_pct"]] if ov else []), default=None)
        g["alive_after"] = all(r.get("alive_after", True) for r in reps)
        ev: dict[str, int] = {}
        for r in reps:
            for k2, v in (r.get("events") or {}).items():
                ev[k2] = ev.get(k2, 0) + v
        g["events"] = ev or None
        agg[row] = g
    return agg


def rep_ratio(runs: dict, a: str, b: str, c: str) -> float | None:
    """median over reps of rate(a) / rate(b), each pair from the same rep"""
    ra = {r["rep"]: r["conc"][c]["rate"] for r in runs.get(a, []) if r and c in r.get("conc", {})}
    rb = {r["rep"]: r["conc"][c]["rate"] for r in runs.get(b, []) if r and c in r.get("conc", {})}
    return med([ra[k] / rb[k] for k in ra if k in rb and rb[k]])


# ---------------------------------------------------------------- the table
def build_table(data: dict, args) -> list[dict]:
    agg, runs = data["accept"], data["accept_runs"]
    rows: list[dict] = []

    def add(measure, act, peers, ratio, target="", result="info"):
        rows.append({"measure": measure, "activator": act, "peers": peers, "ratio": ratio,
                     "target": target, "result": result})

    def verdict(value, ok):
        return "n/a" if value is None else ("PASS" if ok(value) else "FAIL")

    def cc(row, c, key):
        return ((agg.get(row) or {}).get("conc", {}).get(c) or {}).get(key)

    C = [str(c) for c in args.conc]
    for mode, act, peers, tgt_peer, tgt in (
        ("inetd", "activator-inetd", ["tcpserver", "tcpsvd"], "tcpserver", 0.95),
        ("fd3", "activator-fd3", ["sd-activate-fd3"], "sd-activate-fd3", 1.2),
    ):
        if act not in agg and not any(p in agg for p in peers):
            continue
        pl = [p for p in peers if p in agg]
        for c in C:
            ratios = [rep_ratio(runs, act, p, c) for p in pl]
            applies = mode == "fd3" or c != "1"
            r_t = rep_ratio(runs, act, tgt_peer, c)
            add(f"{mode}: conn/s, C={c}", fmt(cc(act, c, "rate")),
                " · ".join(f"{p} {fmt(cc(p, c, 'rate'))}" for p in pl),
                " · ".join(fmt(r, 2, "×") for r in ratios),
                f"≥ {tgt}× {tgt_peer}" if applies else "",
                verdict(r_t, lambda v, t=tgt: v >= t) if applies else "info")
        for c in C:
            a50, a99 = cc(act, c, "p50_ms"), cc(act, c, "p99_ms")
            add(f"{mode}: latency p50 / p99 ms, C={c}", f"{fmt(a50, 2)} / {fmt(a99, 2)}",
                " · ".join(f"{p} {fmt(cc(p, c, 'p50_ms'), 2)} / {fmt(cc(p, c, 'p99_ms'), 2)}"
                           for p in pl),
                " · ".join(fmt(a50 / cc(p, c, "p50_ms") if a50 and cc(p, c, "p50_ms") else None,
                               2, "×") for p in pl))

        def errs(row):
            g = agg.get(row)
            if not g:
                return "–"
            e = sum(x["errors"] for x in g["conc"].values())
            ns = sum(x["not_started"] for x in g["conc"].values())
            n = sum(x["conns"] for x in g["conc"].values())
            return f"{e}/{n}" + (f" (+{ns} not started: time limit)" if ns else "")

        add(f"{mode}: errors, C={','.join(C)}", errs(act),
            " · ".join(f"{p} {errs(p)}" for p in pl), "")
    cm = "16" if "16" in C else C[len(C) // 2]
    for act, peer, tgt in (("activator-inetd", "tcpserver", 1.5),
                           ("activator-fd3", "sd-activate-fd3", None)):
        a_cpu, p_cpu = cc(act, cm, "sup_cpu_ms_per_1k"), cc(peer, cm, "sup_cpu_ms_per_1k")
        if a_cpu is None and p_cpu is None:
            continue
        others = ["tcpsvd"] if peer == "tcpserver" and "tcpsvd" in agg else []
        r = a_cpu / p_cpu if a_cpu is not None and p_cpu else None
        add(f"supervisor CPU ms per 1,000 conns ({act.split('-')[1]}, C={cm})", fmt(a_cpu, 0),
            " · ".join(f"{p} {fmt(cc(p, cm, 'sup_cpu_ms_per_1k'), 0)}" for p in [peer, *others]),
            fmt(r, 2, "×"), f"≤ {tgt}× {peer}" if tgt else "",
            verdict(r, lambda v, t=tgt: v <= t) if tgt else "info")
    for act, peers in (("activator-inetd", ["tcpserver", "tcpsvd"]),
                       ("activator-fd3", ["sd-activate-fd3"])):
        o = (agg.get(act) or {}).get("overload")
        if not o and not any((agg.get(p) or {}).get("overload") for p in peers):
            continue

        def ov(row):
            x = (agg.get(row) or {}).get("overload")
            if not x:
                return "–"
            return (f"{x['errors']} err, {fmt(x['rate'])}/s, p99 {fmt(x['p99_ms'], 0)} ms"
                    + (f", +{x['not_started']} not started" if x["not_started"] else ""))

        add(f"overload C={args.overload_c}, Backlog=4096 ({act.split('-')[1]})", ov(act),
            " · ".join(f"{p} {ov(p)}" for p in peers if (agg.get(p) or {}).get("overload")), "",
            "0 errors", verdict(o and o["errors"] + o["not_started"], lambda v: v == 0)
            if o else "n/a")
    cold = data.get("cold") or {}
    if cold:
        def cp50(row):
            return med([x["ttfb_ms"] for x in cold.get(row, []) if x.get("ok")])

        a, s = cp50("activator"), cp50("sd-activate")
        fails = sum(1 for x in cold.get("activator", []) if not x.get("ok"))
        r = a / s if a and s else None
        add(f"cold activation (Accept=no) connect→first byte p50 ms, {args.cold} starts",
            fmt(a, 2) + (f" ({fails} failed)" if fails else ""),
            f"systemd-socket-activate {fmt(s, 2)}", fmt(r, 2, "×"),
            "≤ 1.2× systemd-socket-activate", verdict(r, lambda v: v <= 1.2))
    edge_rows(data, args, add, verdict, rep_ratio_fn=lambda a_, b_, c_: rep_ratio(runs, a_, b_, c_))
    units = data.get("units") or {}
    ts_rss = (agg.get("tcpserver") or {}).get("rss_idle_kib")
    # issue 17's targets: idle RSS ≤ 24 MiB at 100 units, ≤ 30 MiB at 1,000; start-up
    # < 0.5 s at 1,000 units and < 5 s at 10,000
    rss_target = {"100": 24, "1000": 30}
    for k, recs in units.items():
        rss = med([x.get("rss_kib") for x in recs])
        peer = f"{k} × tcpserver {fmt(int(k) * ts_rss / 1024, 1)}" if ts_rss else ""
        ok_all = all("error" not in x for x in recs)
        lim = rss_target.get(k)
        add(f"idle RSS MiB, {k} socket units (+{k} services)",
            fmt(rss / 1024 if rss else None, 1) + ("" if ok_all else " (errors)"), peer,
            fmt(rss / (int(k) * ts_rss) if rss and ts_rss else None, 2, "×"),
            f"≤ {lim} MiB" if lim else "",
            verdict(rss, lambda v, lim=lim: v <= lim * 1024) if lim else "info")
    for span, kib in per_pair_kib(units).items():
        add(f"idle RSS per socket+service pair, {span} units (KiB)", fmt(kib, 1), "", "",
            "≤ 7 KiB" if span == "100→1000" else "",
            verdict(kib, lambda v: v <= 7) if span == "100→1000" else "info")
    st_target = {"1000": 0.5, "10000": 5.0}
    for k, recs in units.items():
        st = med([x.get("startup_s") for x in recs])
        lis = min([x.get("listening", 0) for x in recs], default=0)
        lim = st_target.get(k)
        add(f"start-up, exec → `ready`, {k} units (s)",
            fmt(st, 3) + ("" if lis == int(k) else f" ({lis}/{k} listening)"), "", "",
            f"< {lim:g} s" if lim else "",
            verdict(st, lambda v, lis=lis, k=k, lim=lim: v < lim and lis == int(k))
            if lim else "info")
    sl = {k: med([x.get("status_ms") for x in recs]) for k, recs in units.items()}
    if any(sl.values()):
        add(f"`status` of one socket, answer ms ({' / '.join(sl)} units)",
            " / ".join(fmt(v, 2) for v in sl.values()), "", "", "", "info")
    sa = {k: med([x.get("list_units_ms") for x in recs]) for k, recs in units.items()}
    if any(sa.values()):
        add(f"`list-units`, every unit, answer ms ({' / '.join(sa)} units)",
            " / ".join(fmt(v, 1) for v in sa.values()), "", "", "", "info")
    inst = data.get("instances") or {}
    for path, recs in (inst.get("paths") or {}).items():
        # issue 17: ≤ 2 KiB of supervisor RSS per instance held open, 0 errors
        kib = med([x.get("kib_per_instance") for x in recs])
        errs = max([x.get("errors_n", 0) for x in recs], default=0)
        held = min([x.get("held", 0) for x in recs], default=0)
        add(f"{inst.get('n')} Accept=yes instances held open ({path} path): RSS KiB per "
            "instance, errors", f"{fmt(kib, 2)}, {errs} errors ({held} held)", "", "",
            "≤ 2 KiB, 0 errors",
            verdict(kib, lambda v, e=errs, h=held: v <= 2 and e == 0 and h == inst.get("n")))
    wk = {k: next((x for x in recs if "idle_wakeups" in x), None) for k, recs in units.items()}
    wk = {k: v for k, v in wk.items() if v}
    if wk:
        peers_w = [f"{p} {fmt((agg.get(p) or {}).get('idle_wakeups_per_s'), 1)}"
                   for p in ("tcpserver", "sd-activate-fd3")
                   if (agg.get(p) or {}).get("idle_wakeups_per_s") is not None]
        add(f"wake-ups/s idle ({' / '.join(wk)} units, {args.idle_window:g} s)",
            " / ".join(fmt(v["idle_wakeups_per_s"], 1) for v in wk.values()),
            " · ".join(peers_w), "", "0",
            "PASS" if all(v["idle_wakeups"] == 0 for v in wk.values()) else "FAIL")
    lg = data.get("logs") or {}
    if lg.get("runs"):
        def of(mode, key):
            return med([x.get(key) for x in lg["runs"] if x["mode"] == mode and "error" not in x])

        cj, cn, wj = of("journal", "cpu_s"), of("null", "cpu_s"), of("journal", "wall_s")
        per_mb = (cj - (cn or 0)) / lg["mb"] if cj is not None else None
        add(f"service output: activator CPU ms per MiB captured ({lg['mb']} MiB of 100-byte "
            "lines, JSON log)", fmt(per_mb * 1000 if per_mb is not None else None, 0),
            "", "", "", "info")
        add("service output: MiB/s captured and logged",
            fmt(lg["mb"] / wj if wj else None, 1), "", "", "", "info")
    cl = {r: g.get("client_cpu_pct_max") for r, g in agg.items()}
    if cl:
        act = [f"{fmt(cl[r], 0)} ({r.split('-')[1]})" for r in ACTIVATOR_ROWS if r in cl]
        add("load client CPU, % of one core (max over runs)", " · ".join(act) or "–",
            " · ".join(f"{r} {fmt(v, 0)}" for r, v in cl.items() if r not in ACTIVATOR_ROWS),
            "", "≪ 100 (not the bottleneck)",
            "PASS" if all(v is not None and v < 60 for v in cl.values()) else "CHECK")
    if data.get("client"):
        x = data["client"]
        add("load client ceiling (no spawning, C=16) conn/s", "", f"{fmt(x['rate'])} at "
            f"{fmt(x['client_cpu_pct'], 0)}% of a core", "")
    if "limit-spawn" in agg:
        add(f"ceiling: minimal C accept+posix_spawn loop conn/s, C={'/'.join(C)}",
            " / ".join(fmt(cc("activator-inetd", c, "rate")) for c in C),
            "limit-spawn " + " / ".join(fmt(cc("limit-spawn", c, "rate")) for c in C),
            " / ".join(fmt(rep_ratio(runs, "activator-inetd", "limit-spawn", c), 2, "×")
                       for c in C))
    return rows


def edge_rows(data: dict, args, add, verdict, rep_ratio_fn) -> None:
    """The rows of issue 16: the allow list's cost, the proxy, scale to zero."""
    C = [str(c) for c in args.conc]
    if "activator-acl" in data["accept"] and "activator-inetd" in data["accept"]:
        for c in C[1:] or C:
            plain = rep_ratio_fn("activator-inetd", "tcpserver", c)
            acl = rep_ratio_fn("activator-acl", "tcpserver", c)
            same = rep_ratio_fn("activator-acl", "activator-inetd", c)
            add(f"inetd with a 1,000-CIDR allow list: conn/s ratio to tcpserver, C={c}",
                fmt(acl, 2, "×"), f"without the list {fmt(plain, 2, '×')}",
                fmt(same, 2, "×") + " of without", "unchanged (≥ 0.95× of without)",
                verdict(same, lambda v: v >= 0.95))
    px = data.get("proxy") or {}
    if px.get("direct", {}).get("bulk"):
        def m(row, kind, key):
            return med([x[key] for x in px[row][kind]])

        def ratio(x, y):
            return fmt(x / y if x and y else None, 2, "×")

        ab, sb, db = (m(r, "bulk", "mib_s") for r in PROXY_ROWS)
        add(f"proxy bulk {args.proxy_bytes / 2**30:g} GiB, MiB/s", fmt(ab, 0),
            f"systemd-socket-proxyd {fmt(sb, 0)} · direct {fmt(db, 0)}",
            f"{ratio(ab, sb)} · {ratio(ab, db)}",
            "≥ 1.5× proxyd, ≥ 0.8× direct",
            verdict(ab and sb and db and (ab / sb, ab / db), lambda v: v[0] >= 1.5 and v[1] >= 0.8))
        ar, sr, dr = (m(r, "rr16", "rate") for r in PROXY_ROWS)
        add("proxy 64 B request/response, C=16, round trips/s", fmt(ar),
            f"systemd-socket-proxyd {fmt(sr)} · direct {fmt(dr)}",
            f"{ratio(ar, sr)} · {ratio(ar, dr)}")
        for kind, cname in (("rr16", "16"), ("rr1", "1")):
            a50, s50, d50 = (m(r, kind, "p50_us") for r in PROXY_ROWS)
            added = a50 - d50 if a50 is not None and d50 is not None else None
            add(f"proxy added p50 latency, 64 B, C={cname} (µs over direct)", fmt(added, 0),
                f"systemd-socket-proxyd {fmt(s50 - d50 if s50 and d50 else None, 0)} "
                f"(p50 {fmt(s50, 0)}; direct {fmt(d50, 0)})", "", "≤ 100 µs",
                verdict(added, lambda v: v <= 100))
    idle = data.get("idle") or {}
    if idle.get("first"):
        f, i = med(idle["first"]), med(idle["after_idle"])
        add(f"cold start after an idle stop, p50 ms ({len(idle['first'])} runs)", fmt(i, 2),
            f"first cold start {fmt(f, 2)}", fmt(i / f if i and f else None, 2, "×"),
            "≤ 1.2× first", verdict(i / f if i and f else None, lambda v: v <= 1.2))


def table_md(rows: list[dict]) -> str:
    L = ["| measure | activator | peers | ratio (activator ÷ peer) | target | result |",
         "|---|---:|---|---:|---|---|"]
    for r in rows:
        L.append(f"| {r['measure']} | {r['activator']} | {r['peers']} | {r['ratio']} | "
                 f"{r['target']} | {r['result']} |")
    return "\n".join(L)


def details_md(data: dict, args) -> str:
    agg = data["accept"]
    C = [str(c) for c in args.conc]
    L = ["## Accept=yes rows in detail\n",
         "Medians over reps. conn/s; latency connect()→EOF; CPU per 1,000 connections from "
         "/proc/PID/stat: *sup* = utime+stime of the supervisor process, *children* = "
         "cutime+cstime (reaped: fork, exec, the service); client = loadgen's CPU, % of one "
         "core.\n",
         "| row | " + " | ".join(f"C={c} conn/s | p50 / p99 ms" for c in C)
         + " | errors | sup / children ms/1k (C=" + (C[1] if len(C) > 1 else C[0])
         + ") | RSS idle / max KiB | client % max | events |",
         "|---|" + "---:|---:|" * len(C) + "---:|---:|---:|---:|---|"]
    cm = C[1] if len(C) > 1 else C[0]
    for row, g in agg.items():
        cells = []
        for c in C:
            x = g["conc"].get(c) or {}
            cells += [fmt(x.get("rate")), f"{fmt(x.get('p50_ms'), 2)} / {fmt(x.get('p99_ms'), 2)}"]
        x = g["conc"].get(cm) or {}
        errs = sum(v["errors"] for v in g["conc"].values())
        ev = ", ".join(f"{k} {v}" for k, v in sorted((g.get("events") or {}).items()))
        rss_max = max(v["rss_max_kib"] for v in g["conc"].values())
        split = ""
        if x.get("sup_other_threads_ms_per_1k") is not None:
            split = (f" (main thread {fmt(x.get('sup_main_thread_ms_per_1k'), 0)} + other threads "
                     f"{fmt(x['sup_other_threads_ms_per_1k'], 0)})")
        L.append(f"| {row} | " + " | ".join(cells) + f" | {errs} | "
                 f"{fmt(x.get('sup_cpu_ms_per_1k'), 0)}{split} / "
                 f"{fmt(x.get('children_cpu_ms_per_1k'), 0)}"
                 f" | {fmt(g['rss_idle_kib'])} / {fmt(rss_max)}"
                 f" | {fmt(g['client_cpu_pct_max'], 0)} | {ev or '–'} |")
    L.append("\n| row | command |\n|---|---|")
    for row in agg:
        L.append(f"| {row} | {ROW_NOTES.get(row, row)} |")
    runs = data["accept_runs"]
    odd = [(row, r.get("error"), r.get("notable_events") or []) for row, reps in runs.items()
           for r in reps if r.get("error") or [e for e in r.get("notable_events") or []
                                               if e.get("event") not in ("shutdown", "stop")]]
    if odd:
        L.append("\nUnexpected in the Accept=yes runs (first of each rep):\n")
        for row, err, evs in odd:
            ev = next((e for e in evs if e.get("event") not in ("shutdown", "stop")), None)
            what = err or json.dumps(
                {k: v for k, v in (ev or {}).items() if k not in ("ts", "time")})
            L.append(f"- {row}: `{what[:300]}`")
    ov = {r: g["overload"] for r, g in agg.items() if g.get("overload")}
    if ov:
        L.append(f"\n## Overload: C={args.overload_c}, N={args.overload_n} (first rep)\n")
        L.append("| row | conn/s | p50 ms | p99 ms | max ms | errors | ListenOverflows (system) |")
        L.append("|---|---:|---:|---:|---:|---|---:|")
        for r, o in ov.items():
            e = ", ".join(f"{k} {v}" for k, v in o["err"].items() if v)
            L.append(f"| {r} | {fmt(o['rate'])} | {fmt(o['p50_ms'], 1)} | {fmt(o['p99_ms'], 1)} | "
                     f"{fmt(o['max_ms'], 0)} | {o['errors']}{' (' + e + ')' if e else ''}"
                     f"{' +' + str(o['not_started']) + ' not started' if o['not_started'] else ''}"
                     f" | {fmt(o['listen_overflows'])} |")
    cold = data.get("cold") or {}
    if cold:
        L.append("\n## Cold activation (Accept=no)\n")
        L.append("Fresh start, listening, idle 100 ms, one connection: connect()→first byte with "
                 "the service not yet running (activation = spawn of the service + its accept).\n")
        L.append("| row | p50 ms | p90 ms | max ms | ok | activator log: trigger → start p50 ms |"
                 "\n|---|---:|---:|---:|---:|---:|")
        for r, xs in cold.items():
            t = sorted(x["ttfb_ms"] for x in xs if x.get("ok"))
            p90 = t[min(len(t) - 1, int(0.9 * len(t)))] if t else None
            ts = med([x.get("trigger_to_start_ms") for x in xs])
            L.append(f"| {r} | {fmt(med(t), 2)} | {fmt(p90, 2)} | {fmt(t[-1] if t else None, 2)} "
                     f"| {len(t)}/{len(xs)} | {fmt(ts, 2)} |")
        errs = [x["error"] for xs in cold.values() for x in xs if x.get("error")]
        if errs:
            L.append(f"\nfirst failure: `{errs[0][:300]}`")
    units = data.get("units") or {}
    if units:
        L.append("\n## Units: idle RSS, start-up, wake-ups, status latency (the scaling table)\n")
        L.append("N socket units (half Accept=yes inetd, half Accept=no, one loopback TCP "
                 f"listener each: 127.0.0.1, then 127.0.1.1 … per {PORTS_PER_ADDR} ports) + N "
                 "services. start-up = `ts` of the `ready` event − time of exec (CPU: the "
                 "daemon's and its reaped children's at ready); RSS 1 s after ready (loader: "
                 "its children's then); wake-ups = voluntary + nonvoluntary context switches "
                 "of all threads while idle; status = a `status` request for one socket on "
                 "the control socket (median of 21), command = `activatorctl status` (median "
                 "of 5), list-units = `list-units` once.\n")
        L.append("| units | start-up s (median, all) | CPU s | listening | RSS MiB | KiB/pair "
                 "| loader RSS MiB | threads | wake-ups (window) | status ms | command ms "
                 "| list-units ms | errors |"
                 "\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        ppk = per_pair_kib(units)
        prev = None
        for k, recs in units.items():
            w = next((x for x in recs if "idle_wakeups" in x), {})
            errs = "; ".join(x["error"][:200] for x in recs if "error" in x)
            sts = ", ".join(fmt(x.get("startup_s"), 3) for x in recs)
            rss = med([x.get("rss_kib") for x in recs])
            kids = med([x.get("children_rss_kib") for x in recs])
            pp = ppk.get(f"{prev}→{k}") if prev else None
            prev = k
            L.append(f"| {k} | {fmt(med([x.get('startup_s') for x in recs]), 3)} ({sts}) | "
                     f"{fmt(med([x.get('startup_cpu_s') for x in recs]), 2)} | "
                     f"{min(x.get('listening', 0) for x in recs)}/{k} | "
                     f"{fmt(rss / 1024 if rss else None, 1)} | {fmt(pp, 1)} | "
                     f"{fmt(kids / 1024 if kids else None, 1)} | {w.get('threads', '–')} | "
                     f"{w.get('idle_wakeups', '–')} ({fmt(w.get('idle_window_s'), 0)} s) | "
                     f"{fmt(med([x.get('status_ms') for x in recs]), 2)} | "
                     f"{fmt(med([x.get('status_cmd_ms') for x in recs]), 0)} | "
                     f"{fmt(med([x.get('list_units_ms') for x in recs]), 0)} | "
                     f"{errs or '–'} |")
    inst = data.get("instances") or {}
    if inst.get("paths"):
        L.append("\n## Accept=yes instances held open\n")
        L.append(f"One Accept=yes socket (MaxConnections= N+16), `/bin/cat` as nobody "
                 "(StandardInput=socket) per connection; the client opens N connections (64 "
                 "in set-up at once), each sees its line echoed, all stay open. RSS before = "
                 "after one connection and its end (the first plans the lane); RSS held = 1 s "
                 "after the last echo; after = 1 s after all are gone. RLIMIT_NOFILE "
                 f"{inst.get('nofile')}, pid_max {inst.get('pid_max')}.\n")
        L.append("| path | N | held | errors | RSS before MiB | held MiB | KiB/instance | "
                 "after MiB | set-up s | threads | fds |\n|---|---:|---:|---|---:|---:|---:|"
                 "---:|---:|---:|---:|")
        for path, recs in inst["paths"].items():
            for x in recs:
                L.append(f"| {path} | {x.get('n')} | {x.get('held', '–')} | "
                         f"{x.get('errors_n', '–')} {x.get('errors') or ''} "
                         f"{x.get('error', '')[:200]} | "
                         f"{fmt((x.get('rss0_kib') or 0) / 1024, 1)} | "
                         f"{fmt((x.get('rss_kib') or 0) / 1024, 1)} | "
                         f"{fmt(x.get('kib_per_instance'), 2)} | "
                         f"{fmt((x.get('rss_after_kib') or 0) / 1024, 1)} | "
                         f"{fmt(x.get('setup_s'), 1)} | {x.get('threads', '–')} | "
                         f"{x.get('fds', '–')} |")
    prof = data.get("profile") or {}
    for row, p in prof.items():
        if not p.get("samples"):
            continue
        L.append(f"\n## py-spy: {row} at C=16 ({fmt(p['rate_under_profiler'])} conn/s under the "
                 f"profiler; raw: `{p['raw']}`)\n")
        L.append(f"Main thread: {p['samples_in_spawn_call']} samples inside the spawn core's C "
                 f"call (`_spawn.spawn`: vfork until the child has exec'd — mostly waiting, which "
                 f"py-spy counts as busy), {p['samples']} samples elsewhere; the tables are over "
                 f"the latter. Other threads: {p['samples_other_threads']} samples. For CPU "
                 f"time, trust the per-thread utime+stime in the detail table.\n")
        L.append("| self % | line |\n|---:|---|")
        for f in p["top_self"]:
            L.append(f"| {f['pct']:.1f} | `{f['frame']}` |")
        L.append("\n| inclusive % | function |\n|---:|---|")
        for f in p["top_inclusive"]:
            L.append(f"| {f['pct']:.1f} | `{f['frame']}` |")
    return "\n".join(L)


def report_md(data: dict, args) -> str:
    m = data["meta"]
    mc = m["machine"]
    head = [f"# activator bench — {m['tag']}\n",
            f"{m['date']}, activator {m.get('git') or '?'} (sources "
            f"{m.get('source_digest_start')}, `{m.get('activator')}`, loop "
            f"{args.loop or 'auto'}); {mc['nproc']} CPUs ({mc['cpu_model']}), kernel "
            f"{mc['kernel']}, {mc['os']}; peers: "
            + ", ".join(f"{k} {v}" for k, v in mc["packages"].items())
            + f". {m['reps']} reps, N={args.n} connections per run, "
            f"C={','.join(map(str, args.conc))}"
            f"; wall time {m['wall_s']:.0f} s; loadavg {' '.join(mc['loadavg'])} → "
            f"{' '.join(m['loadavg_end'])}.\n",
            ("**Warning:** activator's sources changed during this run (digest "
             f"{m.get('source_digest_start')} → {m.get('source_digest_end')}); the activator "
             "rows may mix versions.\n"
             if m.get("source_digest_start") != m.get("source_digest_end") else ""),
            "Every Accept=yes row runs the same service (`svc_hello -M MODE -U 65534`: it "
            "refuses the wrong calling convention or uid) as nobody. Ratios are activator ÷ "
            "peer, medians of per-rep ratios (pairs measured seconds apart in the same rep). "
            "See bench/README.md.\n",
            table_md(data["table"]), ""]
    return "\n".join(head) + "\n" + details_md(data, args) + "\n"


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="activator beside tcpserver, tcpsvd and systemd-socket-activate",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 rep, N=1000, 5 cold starts, 2 s idle window")
    ap.add_argument("--reps", type=int, help="repetitions of the Accept=yes rows (default 3)")
    ap.add_argument("--n", type=int, help="connections per loadgen run (default 4000)")
    ap.add_argument("--conc", default="1,16,64", help="concurrencies (default 1,16,64)")
    ap.add_argument("--only", help=f"comma list of sections {','.join(SECTIONS)} and/or rows "
                                   f"{','.join(ROW_NOTES)} (default: all sections)")
    ap.add_argument("--skip", help="comma list of sections/rows to leave out")
    ap.add_argument("--json", metavar="FILE", help="also write the JSON results to FILE")
    ap.add_argument("--tag", help="results/<tag>.md|.json (default quick-/run-<timestamp>)")
    ap.add_argument("--loop", choices=("auto", "asyncio", "uvloop"),
                    help="activator --loop (default: activator's own default)")
    ap.add_argument("--activator", help="activator executable (default .venv/bin/activator)")
    ap.add_argument("--no-activator", action="store_true", help="peers only")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install")
    ap.add_argument("--cold", type=int, help="cold starts per row (default 20)")
    ap.add_argument("--overload-c", type=int, default=256, help="0 = skip the overload run")
    ap.add_argument("--overload-n", type=int, help="connections of the overload run (2000)")
    ap.add_argument("--units", dest="unit_counts", default="10,100,1000,10000",
                    help="unit counts of the scaling table: RSS, start-up, wake-ups, status "
                    "latency (default 10,100,1000,10000)")
    ap.add_argument("--instances", type=int,
                    help="concurrent Accept=yes instances of the instances section (10000; "
                    "--quick 1000; 0 skips it)")
    ap.add_argument("--unit-reps", type=int, help="start-ups per unit count (default 3)")
    ap.add_argument("--idle-window", type=float, help="seconds to count idle wake-ups (5)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--tlimit", type=float, default=30.0, help="time limit per loadgen run (s)")
    ap.add_argument("--start-timeout", type=float, default=30.0)
    ap.add_argument("--client-n", type=int, default=20000)
    ap.add_argument("--proxy-reps", type=int, help="proxy runs per row (default 3)")
    ap.add_argument("--proxy-bytes", type=int, default=1 << 30, help="bulk bytes (1 GiB)")
    ap.add_argument("--proxy-rr", type=int, help="round trips per connection (2000)")
    ap.add_argument("--idle-runs", type=int, help="activators for the idle row (default 10)")
    ap.add_argument("--svc-log", action="store_true",
                    help="fd3 rows: the service also writes a line to stderr per connection")
    ap.add_argument("--log-mb", type=int, default=16,
                    help="MiB the logs section's service writes (default 16)")
    ap.add_argument("--profile", action="store_true",
                    help="extra run of the activator rows under py-spy (not measured)")
    ap.add_argument("--keep-scratch", action="store_true")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is not met")
    ap.add_argument("--report-only", metavar="JSON",
                    help="rewrite the table and the .md of an earlier run from its JSON")
    a = ap.parse_args(argv)
    q = a.quick
    for k, full, quick in (("reps", 3, 1), ("n", 4000, 1000), ("cold", 20, 5),
                           ("overload_n", 2000, 1000), ("unit_reps", 3, 1),
                           ("idle_window", 5.0, 2.0), ("proxy_reps", 3, 1),
                           ("proxy_rr", 2000, 1000), ("idle_runs", 10, 3),
                           ("instances", 10000, 1000)):
        if getattr(a, k) is None:
            setattr(a, k, quick if q else full)
    if q:
        a.client_n = min(a.client_n, 10000)
    a.conc = [int(c) for c in a.conc.split(",")]
    a.unit_counts = [int(c) for c in a.unit_counts.split(",") if c]
    items = set(a.only.split(",")) if a.only else set(SECTIONS)
    items -= set(a.skip.split(",")) if a.skip else set()
    unknown = items - set(SECTIONS) - set(ROW_NOTES)
    if unknown:
        ap.error(f"unknown in --only/--skip: {','.join(sorted(unknown))}")
    a.sections = [s for s in SECTIONS if s in items]
    a.rows = [r for r in ROW_NOTES if r in items]
    if a.skip:
        a.skip_rows = set(a.skip.split(","))
    else:
        a.skip_rows = set()
    return a


def searchable_by_all(path: str) -> bool:
    """every directory from / to path is o+x (nobody can reach what is inside)"""
    path = os.path.realpath(path)
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def report_only(path: str) -> int:
    with open(path) as f:
        data = json.load(f)
    args = argparse.Namespace(**data["meta"]["args"])
    data["table"] = build_table(data, args)
    md = path[: -len(".json")] + ".md" if path.endswith(".json") else path + ".md"
    with open(md, "w") as f:
        f.write(report_md(data, args))
    log(table_md(data["table"]))
    log(f"\nwrote {md}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report_only:
        return report_only(args.report_only)
    if os.geteuid() != 0:
        log("warning: not root; privilege drop to nobody will fail (run as root)")
    ensure_tools(args.no_install)
    build_tools()
    set_subreaper()
    activator = None if args.no_activator else find_activator(args.activator)
    if activator is None and not args.no_activator:
        log("warning: activator not found (make install); running the peers only")
    nobody = pwd.getpwnam("nobody")

    scratch = tempfile.mkdtemp(prefix="activator-bench.")
    if not searchable_by_all(os.path.dirname(scratch)):  # e.g. TMPDIR under /root
        os.rmdir(scratch)
        scratch = tempfile.mkdtemp(prefix="activator-bench.", dir="/tmp")
    os.chmod(scratch, 0o755)  # the service runs as nobody: it must reach the binary
    svc = os.path.join(scratch, "svc_hello")
    shutil.copy2(os.path.join(BUILD, "svc_hello"), svc)
    os.chmod(svc, 0o755)
    ctx = Ctx(args, scratch, svc, activator, nobody)
    tag = args.tag or ("quick-" if args.quick else "run-") + time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(RESULTS, exist_ok=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.monotonic()
    meta = {"tag": tag, "date": dt.datetime.now().isoformat(timespec="seconds"),
            "machine": machine(), "git": git_rev(), "activator": activator, "reps": args.reps,
            "source_digest_start": source_digest(),
            "args": {k: v for k, v in vars(args).items() if k != "skip_rows"}}
    data: dict = {"meta": meta}
    rows = [r for r in selected_rows(args, activator is not None) if r not in args.skip_rows]
    runs: dict = {r: [] for r in rows}
    interrupted = False
    try:
        if activator and any(r in ACTIVATOR_ROWS for r in rows) or (
                activator and ({"cold", "units"} & set(args.sections))):
            log(f"activator: {activator} (git {meta['git']})")
        for rep in range(args.reps if rows else 0):
            la = read("/proc/loadavg").split()[0]
            log(f"== Accept=yes rep {rep + 1}/{args.reps} (loadavg {la})")
            if float(la) > 0.7:
                log("   note: the machine is busy with other work: expect noise")
            for row, rec in accept_rep(ctx, rows, rep).items():
                runs[row].append(rec)
        sections = [
            ("cold", "cold activation (Accept=no)", "cold" in args.sections and args.cold,
             lambda: cold_section(ctx, activator is not None)),
            ("units", "units: RSS, start-up, idle wake-ups",
             "units" in args.sections and activator, lambda: units_section(ctx)),
            ("instances", f"{args.instances} concurrent Accept=yes instances held open",
             "instances" in args.sections and activator and args.instances,
             lambda: instances_section(ctx)),
            ("logs", "service output: activator's cost per MiB",
             "logs" in args.sections and activator, lambda: logs_section(ctx)),
            ("client", "load client ceiling", "client" in args.sections,
             lambda: client_section(ctx)),
            ("proxy", "proxy: X-Activator-ProxyTo= vs systemd-socket-proxyd vs direct",
             "proxy" in args.sections and activator, lambda: proxy_section(ctx)),
            ("idle", "scale to zero: cold start after an idle stop",
             "idle" in args.sections and activator, lambda: idle_section(ctx)),
            ("profile", "py-spy profile (separate, unmeasured run)", args.profile and activator,
             lambda: profile_section(ctx, [r for r in ACTIVATOR_ROWS if r in rows], tag)),
        ]
        for key, title, wanted, fn in sections:
            if not wanted:
                continue
            log(f"== {title}")
            try:
                data[key] = fn()
            except Exception as e:  # one broken section must not lose the others
                log(f"  !! {key}: {str(e)[:500]}")
                data.setdefault("section_errors", {})[key] = str(e)
                stop_all()
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping everything, writing what was measured")
    finally:
        stop_all()
        if not args.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            log(f"scratch kept: {scratch}")
    meta["wall_s"] = time.monotonic() - t0
    meta["loadavg_end"] = read("/proc/loadavg").split()[:3]
    meta["interrupted"] = interrupted
    meta["source_digest_end"] = source_digest()
    if meta["source_digest_end"] != meta["source_digest_start"]:
        log("warning: activator's sources changed during the run (someone edited activator/); "
            "the activator rows may mix versions")
    data["accept_runs"] = runs
    data["accept"] = aggregate(runs, args.conc)
    data["table"] = build_table(data, args)
    jp, mp = os.path.join(RESULTS, f"{tag}.json"), os.path.join(RESULTS, f"{tag}.md")
    for path in [jp] + ([args.json] if args.json else []):
        with open(path, "w") as f:
            json.dump(data, f, indent=1, default=str)
    with open(mp, "w") as f:
        f.write(report_md(data, args))
    log("")
    log(table_md(data["table"]))
    log(f"\nwrote {os.path.relpath(mp)} and {os.path.relpath(jp)}"
        + (f" and {args.json}" if args.json else "") + f" ({meta['wall_s']:.0f} s)")
    fails = [r["measure"] for r in data["table"] if r["result"] == "FAIL"]
    if fails:
        log(f"{len(fails)} target(s) not met: " + "; ".join(fails))
    if interrupted:
        return 130
    return 1 if args.check and fails else 0


if __name__ == "__main__":
    sys.exit(main())
