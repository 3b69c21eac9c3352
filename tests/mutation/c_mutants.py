"""Hand-written mutants of the spawn core's child (activator/exec/spawn_child.c).

mutmut does not read C, and the child is where a one-line slip hands a stranger root:
each mutant below is such a slip, written out. The driver applies one to a copy of the
source, builds the extension from it and runs the privilege tests against it; every one
must be killed, unless tests/mutation/equivalent.toml shows that it changes nothing. A mutant whose ``find`` text is no longer in the source is an error (the
set must follow the code, not silently shrink).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CMutant:
    name: str
    what: str
    find: str
    replace: str


C_MUTANTS = (
    CMutant(
        "drop-setgroups",
        "the child keeps root's supplementary groups",
        "    if (s->ngroups >= 0) TRY(setgroups_lenient(s, r), SETGROUPS);\n",
        "",
    ),
    CMutant(
        "keep-saved-uid",
        "setresuid leaves the saved uid 0: the service can setuid(0) back",
        "syscall(SYS_SETRESUID, s->uid, s->uid, s->uid)",
        "syscall(SYS_SETRESUID, s->uid, s->uid, -1)",
    ),
    CMutant(
        "keep-saved-gid",
        "setresgid leaves the saved gid 0",
        "syscall(SYS_SETRESGID, s->gid, s->gid, s->gid)",
        "syscall(SYS_SETRESGID, s->gid, s->gid, -1)",
    ),
    # The two above are equivalent mutants (tests/mutation/equivalent.toml): execve() sets
    # the saved ids to the effective ones, so no program ever runs with a saved id 0. The
    # slip that does survive execve, and hands root back, is keeping the real id:
    CMutant(
        "keep-real-uid",
        "only the effective uid changes: the real uid stays 0 and the service can setuid(0)",
        "syscall(SYS_SETRESUID, s->uid, s->uid, s->uid)",
        "syscall(SYS_SETRESUID, -1, s->uid, s->uid)",
    ),
    CMutant(
        "keep-real-gid",
        "only the effective gid changes: the real gid stays 0",
        "syscall(SYS_SETRESGID, s->gid, s->gid, s->gid)",
        "syscall(SYS_SETRESGID, -1, s->gid, s->gid)",
    ),
    CMutant(
        "drop-setgid",
        "the child keeps root's gid",
        "    if (s->gid >= 0) TRY(syscall(SYS_SETRESGID, s->gid, s->gid, s->gid), SETGID);\n",
        "",
    ),
    CMutant(
        "uid-before-gid",
        "setuid before setgid: the gid change is then refused (or, worse, skipped)",
        "    if (s->gid >= 0) TRY(syscall(SYS_SETRESGID, s->gid, s->gid, s->gid), SETGID);\n"
        "    if (s->uid >= 0) TRY(syscall(SYS_SETRESUID, s->uid, s->uid, s->uid), SETUID);\n",
        "    if (s->uid >= 0) TRY(syscall(SYS_SETRESUID, s->uid, s->uid, s->uid), SETUID);\n"
        "    if (s->gid >= 0) TRY(syscall(SYS_SETRESGID, s->gid, s->gid, s->gid), SETGID);\n",
    ),
    CMutant(
        "skip-fd-move",
        "the passed fds are not moved to 3, 4, … (nor stdio set up, nor the rest closed)",
        "    move_fds(s, r);\n",
        "",
    ),
    CMutant(
        "no-close-range",
        "everything above the passed fds stays open in the service",
        "if (syscall(SYS_close_range, n, ~0U, 0) < 0) {",
        "if (0) {",
    ),
    CMutant(
        "parent-pid",
        "LISTEN_PID (and WATCHDOG_PID) name the parent, not the process that execs",
        "(long)syscall(SYS_getpid)",
        "(long)syscall(SYS_getppid)",
    ),
    CMutant(
        "no-new-privs-ignored",
        "NoNewPrivileges= is not applied",
        "if (s->no_new_privs) TRY(",
        "if (0) TRY(",
    ),
    CMutant(
        "mask-kept",
        "the service starts with every signal blocked",
        "TRY(sigprocmask(SIG_SETMASK, &none, NULL), SIGNALS);",
        "(void)none;",
    ),
    CMutant(
        "nonblocking-inverted",
        "NonBlocking= inverted on the passed fds",
        "if (i >= 3) nb = s->nonblocking;",
        "if (i >= 3) nb = !s->nonblocking;",
    ),
    CMutant(
        "umask-skipped",
        "UMask= not applied",
        "    umask(s->umask);\n",
        "",
    ),
    CMutant(
        "bounding-skipped",
        "CapabilityBoundingSet= not applied",
        "    if (s->has_bounding)\n",
        "    if (0)\n",
    ),
    CMutant(
        "rlimits-skipped",
        "Limit*= not applied",
        "for (int i = 0; i < s->nrlimits; i++) {",
        "for (int i = 0; i < 0; i++) {",
    ),
)
