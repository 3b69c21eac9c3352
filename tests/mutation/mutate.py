"""`make mutate`: plant one small bug at a time and check that the tests notice.

Python: mutmut (2.x) makes the mutants of the functions tests/mutation/areas.py names,
one area at a time, and only that area's tests run against each. C: the hand-written
mutants of the spawn core's child (tests/mutation/c_mutants.py), each built into a
temporary extension, against the privilege tests.

Nothing is mutated in place: each worker has its own copy of the tree (under a temporary
directory), imported through PYTHONPATH, so the checkout and other test runs are never
touched. Prints ``mutation: K of N killed`` per area, then each survivor; a survivor listed
in tests/mutation/equivalent.toml is an equivalent mutant (the reason is printed). Any
other survivor, or an area under 90% killed of its non-equivalent mutants, makes the exit
status 1.

    python tests/mutation/mutate.py                  # everything (make mutate)
    python tests/mutation/mutate.py --sample 8       # CI: the C set, 8 per Python area
    python tests/mutation/mutate.py --area plan --list
"""

from __future__ import annotations

import argparse
import ast
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from areas import AREAS, C_TESTS, Area, Target  # noqa: E402
from c_mutants import C_MUTANTS  # noqa: E402


def _spawn_sources() -> tuple[str, ...]:
    """The extension's C sources as setup.py lists them: one list, so a new file is never
    missing from the mutants' builds (an undefined symbol at import fails every mutant)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "SOURCES" for t in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    raise SystemExit("mutate: setup.py has no SOURCES list")


SPAWN_SOURCES = _spawn_sources()
# How setuptools builds the extension, read once here: sysconfig fills its cache lazily,
# which is not safe from the worker threads.
TOOLCHAIN = (
    sysconfig.get_config_var("CC").split(),
    sysconfig.get_config_var("LDSHARED").split(),
    sysconfig.get_paths()["include"],
    sysconfig.get_config_var("EXT_SUFFIX"),
)
TARGET_SCORE = 0.90


@dataclass
class Mutant:
    area: str
    file: str
    line: int  # 1-based
    before: str
    after: str
    source: str  # the whole mutated file (Python) or spawn_child.c (C)
    name: str = ""  # C mutants
    outcome: str = ""  # killed, timeout, survived, error
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Workers:
    """Copies of the tree, one per job, handed out through a queue."""

    base: Path
    copies: queue.Queue[Path] = field(default_factory=queue.Queue)


# ------------------------------------------------------------------ making the mutants


def _ranges(source: str, target: Target) -> list[tuple[int, int]]:
    """1-based inclusive line ranges of the target's functions, docstrings left out."""
    tree = ast.parse(source)
    found: dict[str, ast.AST] = {}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                found[prefix + child.name] = child

    walk(tree, "")
    lines = source.splitlines()
    out = []
    for name in target.functions:
        fn = found.get(name)
        if fn is None:
            raise SystemExit(f"mutate: no function {name} in {target.file}")
        assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        start, end = fn.body[0].lineno, fn.end_lineno or fn.lineno
        first = fn.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            start = (first.end_lineno or first.lineno) + 1  # not the docstring
        cut = (target.until or {}).get(name)
        if cut is not None:
            hits = [i + 1 for i in range(start - 1, end) if cut in lines[i]]
            if not hits:
                raise SystemExit(f"mutate: {name} in {target.file} has no line with {cut!r}")
            end = hits[0] - 1
        out.append((start, end))
    return out


def python_mutants(
    area: Area, sample: int | None = None, seed: str = ""
) -> tuple[list[Mutant], int]:
    """The area's mutants (at most ``sample`` of them, drawn with ``seed``) and how many
    there are in all. mutmut lists them cheaply; making each one parses the file again, so
    only the drawn ones are made."""
    import mutmut  # the dev extra has it; imported here so --help works without it

    candidates = []
    for target in area.targets:
        source = (ROOT / target.file).read_text()
        ranges = _ranges(source, target)
        ctx = mutmut.Context(source=source, filename=target.file)
        for mid in mutmut.list_mutations(ctx):
            if any(a <= mid.line_number + 1 <= b for a, b in ranges):
                candidates.append((target.file, source, mid))
    total = len(candidates)
    if sample is not None and total > sample:
        rng = random.Random(f"{seed}-{area.name}")
        candidates = sorted(rng.sample(candidates, sample), key=lambda c: c[2].line_number)
    out: list[Mutant] = []
    for file, source, mid in candidates:
        m_ctx = mutmut.Context(source=source, filename=file, mutation_id=mid)
        mutated, n = mutmut.mutate(m_ctx)
        if n != 1 or mutated == source:
            total -= 1
            continue
        try:  # mutmut sometimes writes what is not Python ("*argv" → "/argv"): no mutant
            compile(mutated, file, "exec")
        except SyntaxError:
            total -= 1
            continue
        line = mid.line_number + 1
        before, after = source.splitlines()[line - 1], mutated.splitlines()[line - 1]
        out.append(Mutant(area.name, file, line, before, after, mutated))
    return out, total


def c_mutants() -> list[Mutant]:
    path = "activator/exec/spawn_child.c"
    source = (ROOT / path).read_text()
    out = []
    for cm in C_MUTANTS:
        if source.count(cm.find) != 1:
            raise SystemExit(f"mutate: C mutant {cm.name}: its text is not in {path} once")
        line = source[: source.index(cm.find)].count("\n") + 1
        mutated = source.replace(cm.find, cm.replace)
        out.append(
            Mutant("c", path, line, cm.find.strip(), cm.replace.strip(), mutated, name=cm.name)
        )
    return out


def equivalents() -> dict[tuple[str, str, str], str]:
    with open(HERE / "equivalent.toml", "rb") as f:
        data = tomllib.load(f)
    return {
        (e["file"], e["line"].strip(), e["mutant"].strip()): e["why"]
        for e in data.get("equivalent", [])
    }


# ------------------------------------------------------------------ running them


def make_workers(jobs: int) -> Workers:
    base = Path(tempfile.mkdtemp(prefix="activator-mutate-"))
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    built = [p.relative_to(ROOT) for p in (ROOT / "activator/exec").glob("_spawn*.so")]
    if not built:
        raise SystemExit("mutate: the extension is not built (make install)")
    w = Workers(base)
    for j in range(jobs):
        copy = base / f"w{j}"
        for rel in [*(os.fsdecode(f) for f in files if f), *map(str, built)]:
            src = ROOT / rel
            if src.is_file():
                dst = copy / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        w.copies.put(copy)
    return w


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """killed / survived / timeout / error, the seconds it took, the tail of the output."""
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-p", "no:hypothesispytest", "-o", "addopts=--strict-markers", *tests]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", time.monotonic() - t0, ""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    took = time.monotonic() - t0
    tail = out.decode(errors="replace").strip().splitlines()[-3:]
    if proc.returncode == 0:
        return "survived", took, "\n".join(tail)
    if proc.returncode == 1:
        return "killed", took, "\n".join(tail)
    return "error", took, "\n".join(tail)  # 2-5: interrupted, usage, nothing collected


def build_spawn(copy: Path, spawn_child: str) -> None:
    """The extension of this copy, rebuilt with the given spawn_child.c (the other sources
    are compiled once per copy)."""
    cc, ldshared, inc, suffix = TOOLCHAIN
    cflags = ["-O2", "-fPIC", "-Wall", f"-I{inc}", f"-I{copy / 'activator/exec'}"]
    objs = copy / "build-mutate"
    objs.mkdir(exist_ok=True)
    for name in SPAWN_SOURCES:
        if name == "spawn_child.c":
            continue
        obj = objs / (name + ".o")
        if not obj.exists():
            subprocess.run(
                [*cc, *cflags, "-c", str(copy / "activator/exec" / name), "-o", str(obj)],
                check=True,
            )
    src = objs / "spawn_child.c"
    src.write_text(spawn_child)
    subprocess.run([*cc, *cflags, "-c", str(src), "-o", str(objs / "spawn_child.c.o")], check=True)
    so = copy / "activator/exec" / ("_spawn" + suffix)
    tmp = so.with_suffix(".tmp")
    objects = [str(objs / (n + ".o")) for n in SPAWN_SOURCES]
    subprocess.run([*ldshared, *objects, "-o", str(tmp)], check=True)
    tmp.replace(so)


def run_one(w: Workers, m: Mutant, tests: tuple[str, ...], timeout: float) -> Mutant:
    copy = w.copies.get()
    try:
        return _run_one(copy, m, tests, timeout)
    finally:
        w.copies.put(copy)
        print("." if m.outcome in ("killed", "timeout") else (m.outcome or "?")[0].upper(),
              end="", file=sys.stderr, flush=True)  # fmt: skip


def _run_one(copy: Path, m: Mutant, tests: tuple[str, ...], timeout: float) -> Mutant:
    if m.area == "c":
        original = (copy / m.file).read_text()  # the copy's own source is never changed
        try:
            build_spawn(copy, m.source)
        except subprocess.CalledProcessError as e:
            m.outcome, m.detail = "error", f"build failed: {e}"
            return m
        try:
            m.outcome, m.seconds, m.detail = run_tests(copy, tests, timeout)
        finally:
            build_spawn(copy, original)
        return m
    path = copy / m.file
    original = path.read_text()
    path.write_text(m.source)
    try:
        m.outcome, m.seconds, m.detail = run_tests(copy, tests, timeout)
    finally:
        path.write_text(original)
    return m


def baseline(w: Workers, tests: tuple[str, ...], what: str) -> float:
    copy = w.copies.get()
    try:
        outcome, took, tail = run_tests(copy, tests, 900)
    finally:
        w.copies.put(copy)
    if outcome != "survived":
        raise SystemExit(f"mutate: the tests of {what} fail without any mutant:\n{tail}")
    return took


# ------------------------------------------------------------------ the report


def report(area: str, what: str, done: list[Mutant], equiv: dict) -> bool:
    """Prints the area's line and its survivors; False when one is not explained."""
    killed = [m for m in done if m.outcome in ("killed", "timeout")]
    survived = [m for m in done if m.outcome == "survived"]
    errors = [m for m in done if m.outcome == "error"]
    explained = [m for m in survived if (m.file, m.before.strip(), m.after.strip()) in equiv]
    n = len(done)
    pct = 100.0 * len(killed) / n if n else 100.0
    print(
        f"mutation: {len(killed)} of {n} killed ({pct:.1f}%) — {area}: {what}"
        + (f"; {len(explained)} equivalent, explained" if explained else "")
    )
    for m in survived:
        why = equiv.get((m.file, m.before.strip(), m.after.strip()))
        tag = "equivalent" if why else "SURVIVED"
        label = m.name or f"{m.file}:{m.line}"
        print(f"  {tag} {label}\n      - {m.before.strip()}\n      + {m.after.strip()}")
        if why:
            print(f"      ({why})")
    for m in errors:
        print(f"  ERROR {m.name or f'{m.file}:{m.line}'}: {m.detail}")
    real = n - len(explained)
    if real and len(killed) / real < TARGET_SCORE:
        print(f"  below the target: {TARGET_SCORE:.0%} of the non-equivalent mutants killed")
        return False
    return not errors and len(survived) == len(explained)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--area", action="append", help="only these Python areas (repeatable)")
    ap.add_argument("--c", action="store_true", help="the C set also with --area")
    ap.add_argument("--no-c", action="store_true", help="no C set")
    ap.add_argument("--no-python", action="store_true", help="no Python area (the C set only)")
    ap.add_argument("--sample", type=int, help="at most this many mutants per Python area")
    ap.add_argument("--seed", default="18", help="for --sample (default: 18)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel copies (default: 2)")
    ap.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    args = ap.parse_args()

    areas = [a for a in AREAS if not args.area or a.name in args.area]
    if args.area and len(areas) != len(set(args.area)):
        ap.error(f"areas are: {', '.join(a.name for a in AREAS)}")
    with_python = not args.no_python
    with_c = not args.no_c and (args.c or not args.area)

    plan: list[tuple[str, str, tuple[str, ...], list[Mutant]]] = []
    if with_python:
        for a in areas:
            ms, total = python_mutants(a, args.sample, args.seed)
            what = a.what + (
                f" (a sample of {len(ms)} of {total} candidates)" if len(ms) < total else ""
            )
            plan.append((a.name, what, a.tests, ms))
    if with_c:
        plan.append(("c", "the spawn core's child, hand-written set", C_TESTS, c_mutants()))

    if args.list:
        for name, _what, tests, ms in plan:
            print(f"{name}: {len(ms)} mutants; tests: {' '.join(tests)}")
            for m in ms:
                print(
                    f"  {m.name or f'{m.file}:{m.line}'}: {m.before.strip()}  →  {m.after.strip()}"
                )
        return 0

    equiv = equivalents()
    w = make_workers(args.jobs)
    ok = True
    t0 = time.monotonic()
    try:
        for name, what, tests, ms in plan:
            base = baseline(w, tests, name)
            timeout = max(60.0, 6 * base)
            with ThreadPoolExecutor(args.jobs) as pool:
                done = list(pool.map(lambda m, t=tests, to=timeout: run_one(w, m, t, to), ms))
            ok = report(name, what, done, equiv) and ok
            sys.stdout.flush()
    finally:
        shutil.rmtree(w.base, ignore_errors=True)
    print(f"mutation: done in {time.monotonic() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
