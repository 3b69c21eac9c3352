"""The layers of activator/ (README "Layout"): each imports only its own layer or lower
ones, with no import circle anywhere — type-checking and lazy imports included, since
an upward import is an upward dependency whenever it runs."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "activator"

#: Lowest first. A module outside these packages sits at the top (``__main__``, the
#: ``execcore`` name of the chain-loader).
LAYERS = ["units", "core", "exec", "runtime", "manager", "control", "cli"]
TOP = len(LAYERS)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    if module == "activator":
        return -1  # the package itself holds only __version__ and imports nothing
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return TOP


def imports_of(path: Path) -> set[str]:
    """Every activator module ``path`` imports, wherever the import statement stands."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "activator")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "activator":
                continue
            for a in node.names:  # `from . import x` may name a module
                sub = f"{target}.{a.name}"
                out.add(sub if _exists(sub) else target)
    out.discard(me)
    return out


def _exists(module: str) -> bool:
    p = ROOT.parent.joinpath(*module.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(ROOT.rglob("*.py"))}


def test_no_upward_import():
    bad = [
        f"{m} ({LAYERS[layer_of(m)] if layer_of(m) < TOP else 'top'}) imports {t} "
        f"({LAYERS[layer_of(t)] if layer_of(t) < TOP else 'top'})"
        for m, targets in graph().items()
        for t in sorted(targets)
        if layer_of(t) > layer_of(m)
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    g = graph()
    # Tarjan's strongly connected components; a package's __init__ importing its own
    # modules is not a circle unless a module imports the package back.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    assert not circles, circles


def test_the_package_itself_imports_nothing():
    """Below every layer (the commands read ``__version__`` from it): so it stays a leaf."""
    assert graph()["activator"] == set()


def test_the_scan_sees_imports():
    """The scan itself: known edges of each kind are found (a module-level relative import,
    a lazy one inside a function)."""
    g = graph()
    assert "activator.core.errors" in g["activator.runtime.service"]
    assert "activator.control.server" in g["activator.cli.daemon"]  # lazy, in main()
    assert layer_of("activator.units.model") < layer_of("activator.cli.ctl")


def test_ctl_imports_only_the_protocol():
    """activatorctl's own module reaches nothing of the daemon (the offline verbs are lazy)."""
    assert graph()["activator.cli.ctl"] <= {
        "activator",
        "activator.control.protocol",
        "activator.control",
        "activator.cli.offline",
        "activator.cli.verbtable",
        "activator.core.rundir",  # lazily, not as root: where the daemon's socket is
        "activator.cli.install",  # the enablement verbs: the unit layer only when they run
    }
