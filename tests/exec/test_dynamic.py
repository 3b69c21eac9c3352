"""DynamicUser=: the allocator (exec/dynamic.py) and a dynamic user's private directories
(exec/directories.py), as systemd's dynamic-user.c and setup_exec_directory() (issue 12)."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import uuid
from pathlib import Path

import pytest

from activator.core.errors import StartError
from activator.exec.directories import make_directories
from activator.exec.dynamic import UID_MAX, UID_MIN, DynamicUsers, dynamic_name
from activator.units.model import ServiceSection


def section(**kw) -> ServiceSection:
    return ServiceSection(ExecStart=(), DynamicUser=True, **kw)


def test_names_come_from_user_or_the_unit() -> None:
    assert dynamic_name("uwsgi-app@demo.service", "www-demo") == "www-demo"
    assert dynamic_name("uwsgi-app@demo.service", None) == "uwsgi-app"
    assert dynamic_name("web.service", None) == "web"
    hashed = dynamic_name("9lives.service", None)  # not a valid user name: hashed
    assert hashed.startswith("_du") and len(hashed) == 19
    assert hashed == dynamic_name("9lives.service", None)


def test_a_name_gets_one_uid_while_held_and_its_lock_file(tmp_path: Path) -> None:
    users = DynamicUsers(str(tmp_path / "dynamic-uid"))
    a = users.acquire("web.service", section())
    b = users.acquire("web@1.service", section(User="web"))  # the same name: shared
    c = users.acquire("api.service", section())
    uid = a.credentials.uid
    assert UID_MIN <= uid <= UID_MAX and a.credentials.gid == uid
    assert b.credentials.uid == uid and c.credentials.uid != uid
    assert (a.credentials.user, a.credentials.home, a.credentials.dynamic) == ("web", "/", True)
    lock = tmp_path / "dynamic-uid" / str(uid)
    assert lock.read_text() == "web\n"
    a.release()
    assert lock.exists()  # b still holds it
    b.release()
    assert not lock.exists()
    c.release()
    assert list((tmp_path / "dynamic-uid").iterdir()) == []


def test_two_activators_never_share_a_uid(tmp_path: Path) -> None:
    """The lock is the file's (flock): a second registry on the same directory — another
    activator on this machine — skips the uid the first holds."""
    d = str(tmp_path / "dynamic-uid")
    first, second = DynamicUsers(d), DynamicUsers(d)
    a = first.acquire("web.service", section())
    b = second.acquire("web.service", section())
    assert a.credentials.uid != b.credentials.uid
    a.release()
    b.release()


def test_a_user_or_group_of_the_system_is_used_as_it_is(tmp_path: Path) -> None:
    users = DynamicUsers(str(tmp_path / "d"))
    nobody = pwd.getpwnam("nobody")
    held = users.acquire("x.service", section(User="nobody", Group="www-data"))
    assert (held.credentials.uid, held.credentials.gid) == (
        nobody.pw_uid,
        grp.getgrnam("www-data").gr_gid,
    )
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []
    held.release()


def test_a_group_of_that_name_without_the_user_is_refused(tmp_path: Path) -> None:
    users = DynamicUsers(str(tmp_path / "d"))
    with pytest.raises(StartError, match="a group of that name exists but no user"):
        users.acquire("x.service", section(User="nogroup"))


def test_a_dynamic_group_beside_the_user_and_supplementary_groups(tmp_path: Path) -> None:
    users = DynamicUsers(str(tmp_path / "d"))
    held = users.acquire(
        "x.service", section(User="dyn-x", Group="dyn-x-grp", SupplementaryGroups=("nogroup",))
    )
    c = held.credentials
    assert UID_MIN <= c.gid <= UID_MAX and c.gid != c.uid
    assert c.groups == (c.gid, grp.getgrnam("nogroup").gr_gid)
    assert len(list((tmp_path / "d").iterdir())) == 2
    held.release()
    assert list((tmp_path / "d").iterdir()) == []


@pytest.fixture
def state_name():
    """A fresh StateDirectory= name; its public link, its private directory and (if this
    test made it) /var/lib/private are removed afterwards."""
    made_private = not os.path.exists("/var/lib/private")
    n = f"activator-test-{uuid.uuid4().hex[:8]}"
    yield n
    for p in (
        f"/var/lib/{n}",
        f"/var/lib/private/{n}",
        f"/var/lib/{n}-app",
        f"/var/lib/private/{n}-app",
    ):
        if os.path.islink(p):
            os.unlink(p)
        shutil.rmtree(p, ignore_errors=True)
    if made_private:
        with __import__("contextlib").suppress(OSError):
            os.rmdir("/var/lib/private")


@pytest.mark.root
def test_state_lives_below_private_behind_a_symlink(tmp_path: Path, state_name: str) -> None:
    users = DynamicUsers(str(tmp_path / "d"))
    sec = section(StateDirectory=(state_name, f"{state_name}-app/inst"))
    held = users.acquire("web.service", sec)
    env = make_directories(sec, held.credentials)
    assert env == {"STATE_DIRECTORY": f"/var/lib/{state_name}:/var/lib/{state_name}-app/inst"}
    assert os.readlink(f"/var/lib/{state_name}") == f"private/{state_name}"
    # uwsgi-app@'s StateDirectory=uwsgi/%i: the link one level down points up and over
    assert os.readlink(f"/var/lib/{state_name}-app/inst") == f"../private/{state_name}-app/inst"
    assert os.stat(f"/var/lib/{state_name}-app/inst").st_uid == held.credentials.uid
    real = os.stat(f"/var/lib/private/{state_name}")
    assert (real.st_uid, real.st_mode & 0o7777) == (held.credentials.uid, 0o755)
    assert os.stat("/var/lib/private").st_mode & 0o7777 == 0o711  # pass through, not list
    uid = held.credentials.uid
    held.release()
    # the next allocation of this unit gets the uid that owns its files (suggested paths)
    again = DynamicUsers(str(tmp_path / "e")).acquire("other-name.service", sec)
    assert again.credentials.uid == uid
    again.release()


@pytest.mark.root
def test_a_plain_state_directory_moves_below_private(tmp_path: Path, state_name: str) -> None:
    """It ran without DynamicUser= before: its files come along, chowned to the new uid."""
    os.mkdir(f"/var/lib/{state_name}")
    Path(f"/var/lib/{state_name}/data").write_text("kept")
    held = DynamicUsers(str(tmp_path / "d")).acquire("web.service", section())
    make_directories(section(StateDirectory=(state_name,)), held.credentials)
    assert os.path.islink(f"/var/lib/{state_name}")
    data = Path(f"/var/lib/private/{state_name}/data")
    assert data.read_text() == "kept" and data.stat().st_uid == held.credentials.uid
    held.release()
