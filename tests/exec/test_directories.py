"""*Directory= and PIDFile= as root, against what a service can plant: symlinks.

A service owns its directories and may put symlinks in them, or replace one of them
with a symlink while it is down; it may write its PID file as a symlink to root's file.
Root must never follow such a link (systemd's chase() discipline, reference: the
architecture review of the layering issue)."""

from __future__ import annotations

import os
import pwd
import shutil
import uuid

import pytest

from activator.core.errors import StartError
from activator.exec.directories import make_directories, remove_runtime_directories
from activator.exec.pidfile import PidFileError, read_pidfile
from activator.exec.users import resolve
from activator.units.model import ServiceSection

pytestmark = pytest.mark.root
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def name():
    """A fresh name under /run, removed afterwards (with whatever a test put there)."""
    n = f"activator-test-{uuid.uuid4().hex[:8]}"
    yield n
    for root in ("/run", "/var/lib"):
        p = os.path.join(root, n)
        if os.path.islink(p):
            os.unlink(p)
        shutil.rmtree(p, ignore_errors=True)


def section(**kw) -> ServiceSection:
    return ServiceSection(ExecStart=(), User="nobody", **kw)


def test_directories_are_made_owned_and_named(name):
    env = make_directories(section(RuntimeDirectory=(f"{name}/a",)), resolve("nobody", None))
    path = f"/run/{name}/a"
    assert env == {"RUNTIME_DIRECTORY": path}
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (NOBODY.pw_uid, NOBODY.pw_gid, 0o755)
    parent = os.stat(f"/run/{name}")
    assert (parent.st_uid, parent.st_mode & 0o7777) == (0, 0o755)  # missing parents: root's


def test_a_directory_replaced_by_a_symlink_is_refused(name, tmp_path):
    """The service swapped its StateDirectory= for a link to root's files: refused, and the
    target keeps its owner and mode."""
    target = tmp_path / "precious"
    target.mkdir(mode=0o700)
    os.symlink(target, f"/var/lib/{name}")
    with pytest.raises(StartError, match="is a symbolic link"):
        make_directories(section(StateDirectory=(name,)), resolve("nobody", None))
    st = os.stat(target)
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o700)


def test_a_symlinked_parent_is_refused(name, tmp_path):
    os.symlink(tmp_path, f"/run/{name}")
    with pytest.raises(StartError, match="is a symbolic link"):
        make_directories(section(RuntimeDirectory=(f"{name}/sub",)), resolve("nobody", None))
    assert not (tmp_path / "sub").exists()


def test_chown_of_a_tree_follows_no_symlink(name, tmp_path):
    """A changed User= chowns the tree; a link inside it to root's file stays root's."""
    secret = tmp_path / "secret"
    secret.write_text("root's")
    d = f"/run/{name}"
    os.mkdir(d)
    os.symlink(secret, f"{d}/link")
    with open(f"{d}/own", "w") as f:
        f.write("x")
    make_directories(section(RuntimeDirectory=(name,)), resolve("nobody", None))
    assert os.stat(f"{d}/own").st_uid == NOBODY.pw_uid
    assert os.lstat(f"{d}/link").st_uid == NOBODY.pw_uid  # the link itself
    assert os.stat(secret).st_uid == 0  # not what it points to


def test_a_file_in_the_way_is_named(name):
    with open(f"/run/{name}", "w"):
        pass
    with pytest.raises(StartError, match="exists and is not a directory"):
        make_directories(section(RuntimeDirectory=(name,)), None)


def test_removal_follows_no_symlink(name, tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "file").write_text("x")
    os.symlink(keep, f"/run/{name}")
    remove_runtime_directories(section(RuntimeDirectory=(name,)))
    assert (keep / "file").exists()
    os.unlink(f"/run/{name}")
    os.makedirs(f"/run/{name}/sub")
    os.symlink(keep, f"/run/{name}/sub/link")
    remove_runtime_directories(section(RuntimeDirectory=(name,)))
    assert not os.path.lexists(f"/run/{name}") and (keep / "file").exists()


# ---------------------------------------------------------------- PIDFile=


def test_pidfile_owner_comes_from_the_file_read(tmp_path):
    p = tmp_path / "x.pid"
    p.write_text(f"{os.getpid()}\n")
    assert read_pidfile(str(p)) == (os.getpid(), True)
    os.chown(p, NOBODY.pw_uid, NOBODY.pw_gid)
    assert read_pidfile(str(p)) == (os.getpid(), False)


def test_a_symlinked_pidfile_is_never_root_s(tmp_path):
    """A link (the service's, maybe) to a root-owned file: the pid is not trusted."""
    real = tmp_path / "root.pid"
    real.write_text("1\n")
    link = tmp_path / "svc.pid"
    os.symlink(real, link)
    assert read_pidfile(str(link)) == (1, False)


def test_pidfile_that_is_not_a_file(tmp_path):
    fifo = tmp_path / "fifo.pid"
    os.mkfifo(fifo)
    with pytest.raises(PidFileError, match="not a regular file"):
        read_pidfile(str(fifo))  # opened without blocking: no writer needed
    (tmp_path / "empty.pid").write_text("")
    with pytest.raises(PidFileError, match="no pid in it"):
        read_pidfile(str(tmp_path / "empty.pid"))
    with pytest.raises(PidFileError, match="No such file"):
        read_pidfile(str(tmp_path / "missing.pid"))
