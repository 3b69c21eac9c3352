"""What a unit will meet when it runs here, checked when it is loaded (units/checks.py).

Three uses, three sets of checks (``Preflight``'s flags):

- as root, the daemon warns once per service that would run as root — no ``User=``, no
  ``DynamicUser=`` (``--strict`` refuses it): what reads the network should not be root;
- rootless (activator is not root), it refuses a unit whose ``User=``/``Group=``/
  ``SupplementaryGroups=`` names anyone but activator's own user and groups: it could
  only fail at its first start, with a ``setgroups`` error that says nothing of why;
- ``activatorctl verify`` also checks what ``systemd-analyze verify`` checks and more
  that fails at run time: programs that do not exist or are not executable (a command
  with ``-`` may fail, so it is not checked), users and groups that do not exist (a
  ``DynamicUser=`` service's ``User=``/``Group=`` need not).

A value that depends on the instance (``User=%i`` in a template) is not checked: the
template is read for a made-up instance.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass

from ..units.checks import ExecFacts, Located
from ..units.errors import UnitError, q
from .paths import DEFAULT_PATH

_SEARCH = DEFAULT_PATH.split(":")


def _user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, OverflowError):
        return None


def _group(name: str) -> int | None:
    try:
        return grp.getgrgid(int(name)).gr_gid if name.isdigit() else grp.getgrnam(name).gr_gid
    except (KeyError, OverflowError):
        return None


def program_problem(path: str) -> str | None:
    """Why ``path`` (absolute, or a name looked up in systemd's PATH) cannot be executed;
    None when it can."""
    if not path.startswith("/"):
        for d in _SEARCH:
            full = os.path.join(d, path)
            if os.path.isfile(full) and os.access(full, os.X_OK):
                return None
        return f"command {path} not found in {DEFAULT_PATH} (install it, or give its full path)"
    try:
        st = os.stat(path)
    except OSError as e:
        return f"command {path} is not executable: {e.strerror} (install it, or correct the path)"
    if not stat.S_ISREG(st.st_mode):
        return f"command {path} is not executable: not a regular file (correct the path)"
    if not os.access(path, os.X_OK):
        return f"command {path} is not executable: Permission denied (chmod +x {path})"
    return None


@dataclass(frozen=True)
class Preflight:
    """A units.checks.UnitChecks: see the module docstring for what each flag checks."""

    root_warning: bool = False
    rootless_uid: int | None = None  # activator's own uid when it is not root
    rootless_groups: frozenset[int] = frozenset()  # and its groups
    users: bool = False
    programs: bool = False

    @classmethod
    def for_daemon(cls) -> Preflight:
        uid = os.geteuid()
        if uid == 0:
            return cls(root_warning=True)
        return cls(rootless_uid=uid, rootless_groups=frozenset({os.getegid(), *os.getgroups()}))

    def __call__(self, facts: ExecFacts) -> list[UnitError]:
        out: list[UnitError] = []
        if self.root_warning:
            self._root(facts, out)
        if self.rootless_uid is not None:
            self._rootless(facts, self.rootless_uid, self.rootless_groups, out)
        elif self.users:
            self._users(facts, out)
        if self.programs:
            for directive, cmd in facts.commands:
                if cmd.value.ignore_failure or cmd.raw_specifiers:
                    continue
                why = program_problem(cmd.value.path)
                if why is not None:
                    out.append(facts.problem(cmd.entry, directive, why, "error"))
        return out

    @staticmethod
    def _root(facts: ExecFacts, out: list[UnitError]) -> None:
        if facts.kind != "service" or facts.user is not None or facts.dynamic_user:
            return
        if facts.user_refused:
            return  # User= was meant: its error says what is wrong with it
        if not facts.commands or all(c.value.privileged for _, c in facts.commands):
            return
        out.append(
            facts.problem(
                None,
                None,
                "runs as root: it sets neither User= nor DynamicUser= (set User= to an "
                "unprivileged user, or DynamicUser=yes; what reads the network should not "
                "run as root)",
                "warning",
            )
        )

    @staticmethod
    def _rootless(
        facts: ExecFacts, uid: int, own_groups: frozenset[int], out: list[UnitError]
    ) -> None:
        """Rootless: every process runs as activator's own user; nothing else is possible."""
        me = pwd.getpwuid(uid).pw_name if _user(str(uid)) else str(uid)
        why = f"activator runs as {me} (uid {uid}), not as root, and its services run as {me}"

        def refuse(at: Located[str], directive: str, what: str, fix: str) -> None:
            out.append(facts.problem(at.entry, directive, f"{what}: {why}; {fix}", "error"))

        if facts.dynamic_user:
            return  # a user of its own: rootless, that is activator's (README)
        u = facts.user
        if u is not None and not u.raw_specifiers:
            pw = _user(u.value)
            if pw is None or pw.pw_uid != uid:
                refuse(u, "User", f"cannot run as {q(u.value)}",
                       "remove User= or start activator as root")  # fmt: skip
        for directive, located in (("Group", facts.group), *(
            ("SupplementaryGroups", s) for s in facts.supplementary
        )):  # fmt: skip
            if located is None or located.raw_specifiers:
                continue
            gid = _group(located.value)
            if gid is None or gid not in own_groups:
                refuse(located, directive, f"cannot run in group {q(located.value)}",
                       f"remove {directive}= or start activator as root")  # fmt: skip

    @staticmethod
    def _users(facts: ExecFacts, out: list[UnitError]) -> None:
        u = facts.user
        if u is not None and not u.raw_specifiers and not facts.dynamic_user:
            if _user(u.value) is None:
                fix = (
                    f"create it with useradd --system {u.value}, or set DynamicUser=yes"
                    if not u.value.isdigit()
                    else "create a user with that uid, or set DynamicUser=yes"
                )
                why = f"unknown user {q(u.value)} ({fix})"
                out.append(facts.problem(u.entry, "User", why, "error"))
        groups = [("SupplementaryGroups", s) for s in facts.supplementary]
        if facts.group is not None and not facts.dynamic_user:
            groups.insert(0, ("Group", facts.group))
        for directive, g in groups:
            if not g.raw_specifiers and _group(g.value) is None:
                why = f"unknown group {q(g.value)} (create it with groupadd --system {g.value})"
                out.append(facts.problem(g.entry, directive, why, "error"))
