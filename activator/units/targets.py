"""systemd's standard targets, for when the search path has none (systemd.special(7)).

A container image built without the systemd package has no /lib/systemd/system/*.target,
yet its units say ``WantedBy=multi-user.target`` and ``After=network.target``. These are
the definitions systemd 252 ships (units/*.target), reduced to what matters here: the
dependencies and ordering between targets. A real .target file on the search path
always wins over one of these.

``BOOT_TARGETS`` are the targets whose ``WantedBy=``/``RequiredBy=`` make a unit in a
``--units`` directory start at boot without ``--systemd`` ("as if enabled").
"""

from __future__ import annotations

import re

BOOT_TARGETS = ("default.target", "multi-user.target", "sockets.target")

#: default.target when the search path has no default.target symlink or file.
DEFAULT_TARGET = "multi-user.target"

_DOC = "Documentation=man:systemd.special(7)"

BUILTIN_TARGETS: dict[str, str] = {
    "basic.target": f"""[Unit]
Description=Basic System
{_DOC}
Requires=sysinit.target
Wants=sockets.target timers.target paths.target slices.target
After=sysinit.target sockets.target paths.target slices.target tmp.mount
""",
    "sysinit.target": f"""[Unit]
Description=System Initialization
{_DOC}
Wants=local-fs.target swap.target
After=local-fs.target swap.target emergency.service emergency.target
Conflicts=emergency.service emergency.target
""",
    "sockets.target": f"[Unit]\nDescription=Sockets\n{_DOC}\n",
    "timers.target": f"[Unit]\nDescription=Timer Units\n{_DOC}\n",
    "paths.target": f"[Unit]\nDescription=Path Units\n{_DOC}\n",
    "slices.target": f"[Unit]\nDescription=Slice Units\n{_DOC}\n",
    "swap.target": f"[Unit]\nDescription=Swaps\n{_DOC}\n",
    "local-fs-pre.target": f"""[Unit]
Description=Preparation for Local File Systems
{_DOC}
RefuseManualStart=yes
""",
    "local-fs.target": f"""[Unit]
Description=Local File Systems
{_DOC}
DefaultDependencies=no
Conflicts=shutdown.target
After=local-fs-pre.target
""",
    "remote-fs-pre.target": f"""[Unit]
Description=Preparation for Remote File Systems
{_DOC}
RefuseManualStart=yes
""",
    "remote-fs.target": f"""[Unit]
Description=Remote File Systems
{_DOC}
After=remote-fs-pre.target
DefaultDependencies=no
Conflicts=shutdown.target
""",
    "network-pre.target": f"""[Unit]
Description=Preparation for Network
{_DOC}
RefuseManualStart=yes
""",
    "network.target": f"""[Unit]
Description=Network
{_DOC}
After=network-pre.target
RefuseManualStart=yes
""",
    "network-online.target": f"""[Unit]
Description=Network is Online
{_DOC}
Requires=network.target
After=network.target
""",
    "nss-lookup.target": f"""[Unit]
Description=Host and Network Name Lookups
{_DOC}
RefuseManualStart=yes
""",
    "nss-user-lookup.target": f"""[Unit]
Description=User and Group Name Lookups
{_DOC}
RefuseManualStart=yes
""",
    "rpcbind.target": f"[Unit]\nDescription=RPC Port Mapper\n{_DOC}\nRefuseManualStart=yes\n",
    "time-set.target": f"""[Unit]
Description=System Time Set
{_DOC}
RefuseManualStart=yes
""",
    "time-sync.target": f"""[Unit]
Description=System Time Synchronized
{_DOC}
RefuseManualStart=yes
After=time-set.target
Wants=time-set.target
""",
    "getty-pre.target": f"[Unit]\nDescription=Preparation for Logins\n{_DOC}\n",
    "getty.target": f"[Unit]\nDescription=Login Prompts\n{_DOC}\n",
    "cryptsetup.target": f"[Unit]\nDescription=Local Encrypted Volumes\n{_DOC}\n",
    "remote-cryptsetup.target": f"[Unit]\nDescription=Remote Encrypted Volumes\n{_DOC}\n",
    "integritysetup.target": f"[Unit]\nDescription=Local Integrity Protected Volumes\n{_DOC}\n",
    "veritysetup.target": f"[Unit]\nDescription=Local Verity Protected Volumes\n{_DOC}\n",
    "multi-user.target": f"""[Unit]
Description=Multi-User System
{_DOC}
Requires=basic.target
Conflicts=rescue.service rescue.target
After=basic.target rescue.service rescue.target
""",
    "graphical.target": f"""[Unit]
Description=Graphical Interface
{_DOC}
Requires=multi-user.target
Wants=display-manager.service
Conflicts=rescue.service rescue.target
After=multi-user.target rescue.service rescue.target display-manager.service
""",
    "rescue.target": f"""[Unit]
Description=Rescue Mode
{_DOC}
Requires=sysinit.target rescue.service
After=sysinit.target rescue.service
""",
    "emergency.target": f"""[Unit]
Description=Emergency Mode
{_DOC}
Requires=emergency.service
After=emergency.service
""",
    "shutdown.target": f"""[Unit]
Description=System Shutdown
{_DOC}
DefaultDependencies=no
RefuseManualStart=yes
""",
    "final.target": f"""[Unit]
Description=Late Shutdown Services
{_DOC}
DefaultDependencies=no
RefuseManualStart=yes
After=shutdown.target
""",
}
for _n in ("sound", "printer", "bluetooth", "smartcard", "usb-gadget"):
    BUILTIN_TARGETS[f"{_n}.target"] = (
        f"[Unit]\nDescription={_n.title()}\n{_DOC}\nDefaultDependencies=no\nStopWhenUnneeded=yes\n"
    )


#: systemd's own plumbing that has no place in a container activator runs (matched on the
#: unit name without its suffix): activator is the log (journald), there are no devices
#: (udev), no logins (logind, gettys), no SysV compatibility (initctl, utmp), no boot
#: (fsck, remount, firstboot, repart, pcrphase, volatile root, sleep and power states), and
#: the kernel and clock are the host's, not the container's (sysctl, modules, binfmt, clock,
#: random seed, /dev nodes). systemd skips most of these in a container through their
#: Condition*=; activator does not run them at all: they count as present, with a warning,
#: so what depends on them still starts. systemd-tmpfiles-setup runs: images rely on it.
PLUMBING = re.compile(
    r"(systemd-(journald(-[a-z-]+)?|journal-flush|udevd(-[a-z]+)?|udev-trigger|udev-settle"
    r"|logind|user-sessions"
    r"|initctl|update-utmp|update-utmp-runlevel|ask-password-console|ask-password-wall"
    r"|sysctl|modules-load|binfmt|timesyncd|time-wait-sync|random-seed|remount-fs|firstboot"
    r"|machine-id-commit|sysusers|hwdb-update|boot-check-no-failures|pstore|repart|pcrphase"
    r"|pcrphase-sysinit|fsck|fsck-root|fsckd|quotacheck|tmpfiles-setup-dev|vconsole-setup"
    r"|backlight|rfkill|volatile-root|network-generator|sysext|(hybrid-)?sleep|suspend"
    r"|hibernate|halt|poweroff|reboot|kexec|exit)"
    r"|kmod-static-nodes|(serial-|console-|container-)?getty(-static)?|autovt)(@.*)?"
)


def is_plumbing(name: str) -> bool:
    """A service or socket of systemd's own that activator does not run (see PLUMBING)."""
    stem, _, suffix = name.rpartition(".")
    return suffix in ("service", "socket") and PLUMBING.fullmatch(stem) is not None
