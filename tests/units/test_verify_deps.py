"""Issue 11: `activatorctl verify` understands dependencies offline, as systemd-analyze
verify does: a needed unit that does not exist fails the start it would be pulled into,
an ordering cycle is reported, targets and wants directories load."""

from __future__ import annotations

import io

from activator.cli.offline import run_verify


def verify(tmp_path, files: dict[str, str]) -> tuple[int, str]:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    out = io.StringIO()
    return run_verify([str(tmp_path)], out=out), out.getvalue()


def test_missing_requirement_is_an_error_with_systemds_words(tmp_path):
    rc, text = verify(
        tmp_path,
        {
            "a.service": "[Unit]\nRequires=nothere.service\n[Service]\nExecStart=/bin/true\n",
            "b.service": "[Unit]\nWants=nothere.service\n[Service]\nExecStart=/bin/true\n",
        },
    )
    assert rc == 1
    assert "Failed to create a.service/start: Unit nothere.service not found." in text
    assert "b.service/start" not in text  # Wants= of nothing is fine


def test_ordering_cycle_is_a_warning(tmp_path):
    rc, text = verify(
        tmp_path,
        {
            "a.service": "[Unit]\nAfter=b.service\n[Service]\nExecStart=/bin/true\n",
            "b.service": "[Unit]\nAfter=a.service\nWants=a.service\n[Service]\nExecStart=/bin/true\n",
        },
    )
    assert rc == 0
    assert "Found ordering cycle: " in text and "a.service/start" in text


def test_targets_wants_dirs_and_placeholders(tmp_path):
    rc, text = verify(
        tmp_path,
        {
            "app.target": "[Unit]\nDescription=app\nWants=web.service\n",
            "app.target.wants/db.service": "",  # a link's name is what counts
            "web.service": "[Unit]\nRequires=data.mount\n[Service]\nExecStart=/bin/true\n",
            "db.service": "[Service]\nExecStart=/bin/true\n",
        },
    )
    assert rc == 0, text
    assert "data.mount counts as present" in text  # a placeholder, with its warning
    assert "3 units loaded" in text
