"""Spawn one process with activator's spawn core and print, as JSON, what happened.

Run as ``python spawn_under.py FIELDS`` behind a wrapper (dockerish.py): FIELDS is a JSON
object of ExecSpec fields, strings for bytes; path and argv default to a shell that prints
its own /proc/PID/status, limits, stat and oom_score_adj, so the output says what the
exec'd program really got. Prints {"tolerated", "notes"} or, if the child failed before
exec, {"step", "errno", "exit_code", "message"}; and "status" (the exit code, reaped here)
and "proc" (the parsed /proc files) either way.
"""

from __future__ import annotations

import json
import os
import sys

from activator.exec.spec import ExecSpec, SpawnError, spawn_detailed

SHOW = "for f in status limits stat oom_score_adj; do cat /proc/$$/$f; echo @@; done"


def parse(out: str) -> dict:
    if out.count("@@\n") != 4:
        return {}
    status, limits, stat, oom = out.split("@@\n")[:4]
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    nofile = next(line.split()[3:5] for line in limits.splitlines() if "open files" in line)
    return {
        "status": fields,
        "caps": {k: int(fields[k], 16) for k in fields if k.startswith("Cap")},
        "nofile": [int(v) if v.isdigit() else -1 for v in nofile],
        "nice": int(stat.rsplit(")", 1)[1].split()[16]),  # field 19; 17th after the name
        "oom": int(oom),
    }


def main() -> None:
    fields = json.loads(sys.argv[1])
    fields.setdefault("path", "/bin/sh")
    fields.setdefault("argv", ["sh", "-c", SHOW])
    fields["path"] = fields["path"].encode()
    fields["argv"] = [a.encode() for a in fields["argv"]]
    fields["env"] = [e.encode() for e in fields.get("env", [])]
    fields["rlimits"] = [tuple(r) for r in fields.get("rlimits", [])]
    r, w = os.pipe()
    spec = ExecSpec(**fields, stdout=w, stderr=w, quiet=True)
    try:
        spawned = spawn_detailed(spec)
        pid, result = spawned.pid, {"tolerated": spawned.tolerated, "notes": spawned.notes}
    except SpawnError as e:
        pid = e.pid
        result = {"step": e.step, "errno": e.errno, "exit_code": e.exit_code, "message": str(e)}
    finally:
        os.close(w)
    with os.fdopen(r) as f:
        out = f.read()  # until the child's copies close: it exits, or failed before exec
    result["status"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    result["output"] = out
    result["proc"] = parse(out)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
