"""What systemd would start for multi-user.target in a rootfs, read from the rootfs itself.

The oracle of the boot test, written apart from activator's loader so the two can
disagree: a small reading of the unit files (only the keys that decide what starts and
in which order) and of the ``*.wants/``/``*.requires/`` links that ``deb-systemd-helper``
made. Debian's ``systemctl --root=DIR list-dependencies`` would be the better oracle,
but systemd 252 refuses it offline ("Verb 'list-dependencies' cannot be used with
--root="); ``systemctl --root=DIR list-unit-files --state=enabled`` works, and the test
checks this oracle against it.

What systemd would skip in a container is taken out by the conditions this reading
understands (``ConditionPathExists=``, ``ConditionPathIsDirectory=``,
``ConditionVirtualization=``); a unit with any other condition makes the oracle refuse
to judge, rather than guess. Targets absent from the rootfs (an image without the
systemd package has none) get systemd's own dependencies (systemd.special(7)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SEARCH_PATH = (
    "etc/systemd/system",
    "run/systemd/system",
    "usr/local/lib/systemd/system",
    "usr/lib/systemd/system",
    "lib/systemd/system",
)

#: systemd 252's units/*.target, the dependencies only (Requires= and Wants= alike pull in).
BUILTIN_TARGET_PULLS = {
    "multi-user.target": ("basic.target",),
    "network-online.target": ("network.target",),
    "basic.target": (
        "sysinit.target", "sockets.target", "timers.target", "paths.target", "slices.target",
    ),
    "sysinit.target": ("local-fs.target", "swap.target"),
}  # fmt: skip
BUILTIN_TARGET_AFTER = {
    "multi-user.target": ("basic.target",),
    "network-online.target": ("network.target",),
    "basic.target": ("sysinit.target", "sockets.target", "paths.target", "slices.target"),
    "sysinit.target": ("local-fs.target", "swap.target"),
}

PULLS = ("Requires", "Wants", "BindsTo", "Upholds")
NEEDS = ("Requires", "BindsTo", "Requisite")
#: systemd's standard targets: present even where no file defines them (activator has
#: them built in; systemd ships them).
STANDARD_TARGETS = {
    *BUILTIN_TARGET_PULLS, "sockets.target", "timers.target", "paths.target",
    "slices.target", "local-fs.target", "swap.target", "network.target",
    "network-pre.target", "remote-fs.target", "remote-fs-pre.target", "nss-lookup.target",
    "nss-user-lookup.target", "rpcbind.target", "time-set.target", "time-sync.target",
    "getty.target", "default.target", "printer.target",
}  # fmt: skip
PLACEHOLDER_SUFFIXES = (".mount", ".automount", ".device", ".swap", ".path", ".timer",
                        ".slice", ".scope")  # fmt: skip
UNDERSTOOD_CONDITIONS = {
    "ConditionPathExists",
    "ConditionPathIsDirectory",
    "ConditionVirtualization",
}


class OracleError(AssertionError):
    """The rootfs holds something this reading cannot judge."""


@dataclass
class UnitFile:
    name: str
    path: Path | None
    keys: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def get(self, section: str, key: str) -> list[str]:
        return self.keys.get((section, key), [])

    def words(self, section: str, key: str) -> list[str]:
        return [w for v in self.get(section, key) for w in v.split()]

    @property
    def default_dependencies(self) -> bool:
        v = self.get("Unit", "DefaultDependencies")
        return not v or v[-1].lower() not in ("no", "false", "0", "off")


def parse(text: str) -> dict[tuple[str, str], list[str]]:
    """systemd's INI, enough for dependency keys: sections, continuations, resets."""
    keys: dict[tuple[str, str], list[str]] = {}
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if value == "":
            keys[(section, key)] = []
        else:
            keys.setdefault((section, key), []).append(value)
    return keys


class Rootfs:
    """The unit files of one root directory, read the way systemd's search path reads them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, UnitFile] = {}

    def _in_root(self, p: Path) -> Path:
        """p with its symlinks resolved inside the root (an absolute link means the root's)."""
        for _ in range(40):
            if not p.is_symlink():
                return p
            target = Path(p.readlink())
            p = self.root / target.relative_to("/") if target.is_absolute() else p.parent / target
        raise OracleError(f"symlink loop at {p}")

    def unit(self, name: str) -> UnitFile:
        if name not in self._cache:
            path = None
            for d in SEARCH_PATH:
                p = self.root / d / name
                if p.is_symlink() or p.exists():
                    path = self._in_root(p)
                    break
            keys = {}
            if path is not None and path.is_file():
                keys = parse(path.read_text())
                for d in SEARCH_PATH:  # drop-ins: all of the search path
                    for conf in sorted((self.root / d / f"{name}.d").glob("*.conf")):
                        for k, v in parse(conf.read_text()).items():
                            keys[k] = v if not v else keys.get(k, []) + v
            self._cache[name] = UnitFile(name, path, keys)
        return self._cache[name]

    def linked(self, name: str, kind: str) -> list[str]:
        """The units linked in NAME.wants/ (kind "wants") or NAME.requires/, all dirs."""
        out: list[str] = []
        for d in SEARCH_PATH:
            p = self.root / d / f"{name}.{kind}"
            if p.is_dir():
                out += sorted(x.name for x in p.iterdir() if x.name not in out)
        return out

    def pulls(self, name: str) -> list[str]:
        u = self.unit(name)
        out = [w for k in PULLS for w in u.words("Unit", k)]
        out += self.linked(name, "wants") + self.linked(name, "requires")
        if u.path is None:
            out += BUILTIN_TARGET_PULLS.get(name, ())
        if name.endswith(".service") or name.endswith(".socket"):
            if u.default_dependencies:
                out.append("sysinit.target")
        if name.endswith(".service"):
            out += u.words("Service", "Sockets")
        return list(dict.fromkeys(out))

    def skipped(self, name: str) -> bool:
        """Whether systemd, in a container, would skip the unit by one of its conditions."""
        u = self.unit(name)
        for section, key in u.keys:
            if section == "Unit" and key.startswith("Condition"):
                if key not in UNDERSTOOD_CONDITIONS:
                    raise OracleError(f"{name}: {key}= is beyond this oracle")
        for v in u.get("Unit", "ConditionPathExists"):
            neg, path = v.startswith("!"), v.lstrip("!|")
            if (self.root / path.lstrip("/")).exists() == neg:
                return True
        for v in u.get("Unit", "ConditionPathIsDirectory"):
            neg, path = v.startswith("!"), v.lstrip("!|")
            if (self.root / path.lstrip("/")).is_dir() == neg:
                return True
        for v in u.get("Unit", "ConditionVirtualization"):
            # a container: "container", "!container", yes/no and the container names
            neg, what = v.startswith("!"), v.lstrip("!|")
            holds = what in ("yes", "container", "true", "1") or what not in (
                "no", "vm", "false", "0",
            )  # fmt: skip
            if holds == neg:
                return True
        return False

    def exists(self, name: str) -> bool:
        """Whether systemd (or activator, for what a container lacks) has such a unit."""
        return (
            self.unit(name).path is not None
            or name in STANDARD_TARGETS
            or name.endswith(PLACEHOLDER_SUFFIXES)
        )

    def unstartable(self, name: str, seen: frozenset[str] = frozenset()) -> bool:
        """systemd does not enqueue a start of a unit that Requires=/BindsTo=/Requisite= a
        unit that does not exist (or one that cannot start for that reason)."""
        if name in seen:
            return False
        for dep in (w for k in NEEDS for w in self.unit(name).words("Unit", k)):
            if not self.exists(dep) or self.unstartable(dep, seen | {name}):
                return True
        return False

    def closure(self, start: str = "multi-user.target") -> set[str]:
        """Every unit a start of `start` pulls in, less what its conditions skip and what
        needs a unit that does not exist."""
        seen: set[str] = set()
        todo = [start]
        while todo:
            name = todo.pop()
            if name in seen or not self.exists(name) or self.skipped(name):
                continue
            if self.unstartable(name):
                continue
            seen.add(name)
            todo += self.pulls(name)
        return seen

    def service_of(self, socket: str) -> str:
        named = self.unit(socket).words("Socket", "Service")
        return named[-1] if named else socket.removesuffix(".socket") + ".service"

    def after(self, name: str, started: set[str]) -> set[str]:
        """What `name` is ordered after, among started units: After=, the other side's
        Before=, and systemd's implicit orderings (a socket before its service, default
        dependencies, a target after what it wants)."""
        u = self.unit(name)
        out = set(u.words("Unit", "After"))
        out |= {o for o in started if name in self.unit(o).words("Unit", "Before")}
        if u.path is None:
            out |= set(BUILTIN_TARGET_AFTER.get(name, ()))
        if name.endswith(".service"):
            out |= {s for s in started if s.endswith(".socket") and self.service_of(s) == name}
            out |= set(u.words("Service", "Sockets"))
            if u.default_dependencies:
                out |= {"sysinit.target", "basic.target"}
        if name.endswith(".socket") and u.default_dependencies:
            out.add("sysinit.target")
        if name.endswith(".target") and u.default_dependencies:
            out |= {
                w for w in self.pulls(name) if w in started and self.unit(w).default_dependencies
            }
        if name == "sockets.target":
            out |= {
                s for s in started if s.endswith(".socket") and self.unit(s).default_dependencies
            }
        return (out & started) - {name}
