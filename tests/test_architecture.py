"""The architecture holds: the dependency direction of DESIGN.md, no import cycle (imports inside functions count),
and the size limits that keep functions and classes readable."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "tools", "compaction", "apply", "sandbox", "daemon", "index")
# Who may import whom (besides itself). DESIGN.md: the lower packages know nothing of `agent`; the daemon uses
# only `index`.
MAY_IMPORT = {
    "agent": set(PACKAGES),
    "tools": {"apply", "sandbox", "index", "compaction"},
    "compaction": set(),
    "apply": set(),
    "sandbox": set(),
    "index": set(),
    "daemon": {"index"},
}
MAX_LONG_FUNCTIONS = 2  # over 100 lines
MAX_LONG_CLASSES = 1  # over 400 lines


def _modules() -> dict[str, Path]:
    out = {"ghostline.dirs": ROOT / "ghostline" / "dirs.py"}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out["ghostline." + ".".join(parts)] = path
    return out


def _type_checking_only(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that runs (inside functions too), skipping `if TYPE_CHECKING:` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                # `from pkg import sub` imports the submodule when there is one, else a name of the package.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[mod].update(t for t in targets if t in modules and t != mod)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _package(module: str) -> str:
    return module.split(".")[1]


SHARED = {"dirs"}  # ghostline/dirs.py: below every package, imports none of them


def test_no_import_cycles():
    assert _cycles(import_graph()) == []


def test_dependency_direction():
    wrong = []
    for mod, targets in import_graph().items():
        for t in targets:
            src, dst = _package(mod), _package(t)
            if src in SHARED:
                wrong.append(f"{mod} -> {t}")
            elif src != dst and dst not in SHARED and dst not in MAY_IMPORT[src]:
                wrong.append(f"{mod} -> {t}")
    assert wrong == []


def _sizes() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    funcs, classes = [], []
    for mod, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            n = (node.end_lineno or node.lineno) - node.lineno + 1 if hasattr(node, "lineno") else 0
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and n > 100:
                funcs.append((n, f"{mod}.{node.name}"))
            elif isinstance(node, ast.ClassDef) and n > 400:
                classes.append((n, f"{mod}.{node.name}"))
    return funcs, classes


def test_functions_and_classes_stay_small():
    funcs, classes = _sizes()
    assert len(funcs) <= MAX_LONG_FUNCTIONS, sorted(funcs, reverse=True)
    assert len(classes) <= MAX_LONG_CLASSES, sorted(classes, reverse=True)


def test_the_checker_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
