"""Load-time benchmark of the unit readers: 1,000 socket+service pairs, mixed INI/TOML.

Generates the units in a temporary directory, times ``load_units`` (best of a few runs,
after one warm-up so imports are not counted) and prints the figure. Target: < 1 s.

    python bench/bench_units.py [--pairs N] [--runs R]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from activator.units import load_units  # noqa: E402

INI_SOCKET = """\
[Unit]
Description=Benchmark socket {i}
Documentation=man:systemd.socket(5)

[Socket]
ListenStream=127.0.0.1:{port}
ListenStream=/run/bench/{i}.sock
SocketMode=0660
ReceiveBuffer=8M

[Install]
WantedBy=sockets.target
"""

INI_SERVICE = """\
[Unit]
Description=Benchmark service %n
Requires=b{i}.socket
After=network.target

[Service]
Type=notify
ExecStartPre=-/bin/mkdir -p /run/bench
ExecStart=/usr/bin/python3 -c "import sys; print(sys.argv)" --port {port} \\
    --name %p
Environment="A=1 2" B=3
EnvironmentFile=-/etc/default/b{i}
User=nobody
Group=nogroup
LimitNOFILE=1024:524288
Restart=on-failure
RestartSec=2s
TimeoutStopSec=1min 30s
ProtectSystem=full
PrivateTmp=yes
NoNewPrivileges=yes
"""

TOML_SOCKET = """\
[Unit]
Description = "Benchmark socket {i}"

[Socket]
ListenStream = ["127.0.0.1:{port}", "[::1]:{port}"]
ListenDatagram = "127.0.0.1:{port}"
BindIPv6Only = "ipv6-only"

[Install]
WantedBy = "sockets.target"
"""

TOML_SERVICE = """\
[Unit]
Description = "Benchmark service {i}"

[Service]
ExecStart = ["/bin/cat"]
StandardInput = "socket"
User = "nobody"
Environment = {{ A = "1", B = "two words" }}
TimeoutStartSec = 5
LimitNOFILE = 4096
"""


def generate(directory: str, pairs: int) -> None:
    for i in range(pairs):
        port = 10000 + i
        if i % 2:
            with open(os.path.join(directory, f"b{i}.socket"), "w") as f:
                f.write(INI_SOCKET.format(i=i, port=port))
            with open(os.path.join(directory, f"b{i}.service"), "w") as f:
                f.write(INI_SERVICE.format(i=i, port=port))
        else:
            sock = TOML_SOCKET.format(i=i, port=port)
            with open(os.path.join(directory, f"b{i}.socket.toml"), "w") as f:
                f.write(sock)
            with open(os.path.join(directory, f"b{i}.service.toml"), "w") as f:
                f.write(TOML_SERVICE.format(i=i))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--instances", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="activator-bench-") as d:
        generate(d, args.pairs)
        load_units([d])  # warm-up: imports, caches of the OS
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            units, problems = load_units([d])
            times.append(time.perf_counter() - t0)
        errors = [p for p in problems if p.severity == "error"]
        if errors or len(units) != 2 * args.pairs:
            print(f"unexpected: {len(units)} units, {len(errors)} errors, e.g. {errors[:3]}")
            return 1
        best = min(times)
        n = len(units)
        print(
            f"load_units: {n} units ({args.pairs} socket+service pairs, half INI, half TOML): "
            f"best {best * 1000:.0f} ms, median {sorted(times)[len(times) // 2] * 1000:.0f} ms "
            f"({best / n * 1e6:.0f} µs/unit)"
        )
        instantiate(d, args.instances, args.runs)
    return 0


def instantiate(d: str, count: int, runs: int) -> None:
    """UnitSet.instantiate() of an Accept=yes template, once per connection on the event
    loop's path: its fast path copies the template (was a timed assertion in the tests)."""
    with open(os.path.join(d, "echo.socket"), "w") as f:
        f.write("[Socket]\nListenStream=127.0.0.1:7\nAccept=yes\n")
    with open(os.path.join(d, "echo@.service"), "w") as f:
        f.write("[Service]\nExecStart=/bin/cat\nStandardInput=socket\n")
    units, _ = load_units([d])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for n in range(count):
            units.instantiate("echo@.service", f"{n}-127.0.0.1:7-127.0.0.1:{n % 60000 + 1}")
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"instantiate: {count} instances of echo@.service: best {best * 1000:.0f} ms "
          f"({best / count * 1e6:.1f} µs/instance; target ~10)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
