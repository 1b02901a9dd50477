"""Names an SDK module imports at load time but only uses later, inside its functions: each is bound to a
stand-in that imports its module at the first use.

`anthropic/resources/messages/messages.py` imports `MessageStreamManager` (for `.stream()`), `parse_response`
(for `.parse()`) and the batches resource at module level; `anthropic/_base_client.py` imports
`make_status_error`, whose module holds a pydantic class for every error body of every API. A streaming
`messages.create()` that succeeds needs none of them, and they cost more than a third of the client's import
(the beta API's types, pydantic schemas of generic models built at import). DEFERRED_IMPORTS names them by the
module importing them; the deferral holds only where that module's source shows it safe (`safe_names`):

* every use of the name is inside a function body (not a decorator, a default value or a class body, which
  run at import), as the called object, the object of an attribute or of a subscript, or the type argument of
  `cast()`; annotations are strings (`from __future__ import annotations`) and are not uses;
* or it is passed on as an argument, where its module defines it with a plain `def`: its stand-in is then a
  function that forwards the call (`span_attributes=messages_create_request_attributes`);
* the name is never assigned again, declared global, or listed in `__all__`.

The module imported from is loaded lazily (`DeferringLoader`): `from m import N` in the importer named for it
gets a stand-in; any other lookup, by any other module, runs the module's real code first, so everyone else
sees the module as usual. A stand-in's first call, attribute or subscript imports the module for real and
rebinds the importer's global to the real object, so later uses do not go through it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ghostline.agent.providers.kept_facts import KeptFacts

# The checks kept in the data dir; a change of the rules below must change CHECK_FORMAT (it makes them stale).
CHECK_FORMAT = 2
_CHECKS = KeptFacts("sdk-deferrals", CHECK_FORMAT)
# importer -> module imported from -> the names deferred
DEFERRED_IMPORTS: dict[str, dict[str, tuple[str, ...]]] = {
    "anthropic._base_client": {
        "anthropic._error_classes": ("make_status_error",),
        "anthropic.lib._tracing": ("finish_api_call_span",),
    },
    "anthropic.resources.messages.messages": {
        "anthropic.lib.streaming": ("MessageStreamManager", "AsyncMessageStreamManager"),
        "anthropic.lib._parse._response": ("ResponseFormatT", "parse_response"),
        "anthropic.types.parsed_message": ("ParsedMessage",),
        "anthropic.lib._tracing": ("messages_create_request_attributes",),
        "anthropic.resources.messages.batches": (
            "Batches", "AsyncBatches", "BatchesWithRawResponse", "AsyncBatchesWithRawResponse",
            "BatchesWithStreamingResponse", "AsyncBatchesWithStreamingResponse"),
    },
}
DEFERRED_MODULES = frozenset(module for by_module in DEFERRED_IMPORTS.values() for module in by_module)

_UNSET = object()
_IMPORT_MACHINERY = frozenset({"importlib._bootstrap", "importlib._bootstrap_external"})


class DeferringLoader(importlib.abc.Loader):
    """Loads a module of DEFERRED_MODULES as an empty shell: a deferred name looked up by its importer is a
    stand-in; any other lookup runs `real`'s loading into the shell first. A lazy package's own lookup (a
    module `__getattr__`) stays behind the stand-ins."""

    def __init__(self, real: importlib.abc.Loader, wait_for_background: Callable[[str], None]):
        self.real = real
        self.wait_for_background = wait_for_background
        self.lock = threading.RLock()
        self.ran = False
        self.inner: Callable[[str], Any] | None = None  # the real module's own __getattr__, if any

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook
            if name == "__path__" and not self.ran:  # the import system asking whether a module is a package
                raise AttributeError(name)
            standin = _standin_for(module.__name__, name)
            if standin is not None:
                return standin
            self.run_real(module)
            if name in module.__dict__:
                return module.__dict__[name]
            if self.inner is None:
                raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
            return self.inner(name)

        module.__getattr__ = __getattr__  # type: ignore[method-assign]

    def run_real(self, module: ModuleType) -> None:
        self.wait_for_background(module.__name__)
        with self.lock:
            if self.ran:
                return
            self.ran = True
            own = module.__dict__.pop("__getattr__", None)
            self.real.exec_module(module)  # type: ignore[attr-defined]
            self.inner = module.__dict__.get("__getattr__")
            if self.inner is not None:
                module.__getattr__ = own  # type: ignore[method-assign]


def _standin_for(module: str, name: str) -> Any:
    importer = _importing_module()
    names = safe_names(importer, module) if importer is not None else {}
    if name not in names:
        return None
    standin = Standin(module, name, importer)  # type: ignore[arg-type]
    return _as_function(standin, module, name) if names[name] else standin


def _as_function(standin: Standin, module: str, name: str) -> Callable[..., Any]:
    """A plain function forwarding to the stand-in: passed on as a value, it is what the receiver expects."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return standin(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__module__ = module
    call.__doc__ = f"{module}.{name}, whose module is imported at the first call"
    return call


def _importing_module() -> str | None:
    """The module whose code looks the name up (past the import system's own frames), when one is named in
    DEFERRED_IMPORTS."""
    frame = sys._getframe(3)  # past _standin_for and the module's __getattr__
    while frame is not None and frame.f_globals.get("__name__") in _IMPORT_MACHINERY:
        frame = frame.f_back
    name = frame.f_globals.get("__name__") if frame is not None else None
    return name if name in DEFERRED_IMPORTS else None


class Standin:
    """Stands for `name` of module `module` in module `importer` until its first call, attribute or subscript,
    which imports the module and puts the real object in the importer's globals."""

    __slots__ = ("_module", "_name", "_importer", "_value")

    def __init__(self, module: str, name: str, importer: str):
        self._module, self._name, self._importer = module, name, importer
        self._value: Any = _UNSET

    def _real(self) -> Any:
        if self._value is _UNSET:
            self._value = getattr(importlib.import_module(self._module), self._name)
            namespace = sys.modules[self._importer].__dict__
            if namespace.get(self._name) is self:
                namespace[self._name] = self._value
        return self._value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._real()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._real(), attr)

    def __getitem__(self, item: Any) -> Any:
        return self._real()[item]

    def __repr__(self) -> str:
        return f"<{self._module}.{self._name}, imported at its first use>"


_safe: dict[tuple[str, str], dict[str, bool]] = {}
_safe_lock = threading.Lock()


def safe_names(importer: str, module: str) -> dict[str, bool]:
    """Of DEFERRED_IMPORTS[importer][module], the names the importer's source lets a stand-in take, each with
    whether its stand-in must be a function (the importer passes it on as a value)."""
    wanted = DEFERRED_IMPORTS.get(importer, {}).get(module)
    if not wanted:
        return {}
    with _safe_lock:
        if (importer, module) not in _safe:
            by_module = check_importer(importer)
            for source in DEFERRED_IMPORTS[importer]:
                _safe[importer, source] = by_module.get(source, {})
        return _safe[importer, module]


def check_importer(importer: str) -> dict[str, dict[str, bool]]:
    """module -> deferrable names, from the importer's source (it is being imported), or as found by an earlier
    run for the same file (parsing the SDK's largest modules costs 30-100 ms of a cold start)."""
    loaded = sys.modules.get(importer)
    path = getattr(loaded, "__file__", None)
    wanted = {module: sorted(names) for module, names in DEFERRED_IMPORTS[importer].items()}
    kept = _CHECKS.get(importer, path, wanted) if path else None
    if kept is not None:
        return kept
    source = _source_of(path)
    if source is None:
        return {}
    package = importer if hasattr(loaded, "__path__") else importer.rpartition(".")[0]
    found = deferrable(source, package, DEFERRED_IMPORTS[importer], _defined_as_function)
    _CHECKS.put(importer, path, wanted, found)
    return found


def deferrable(source: str, package: str, wanted: dict[str, tuple[str, ...]],
               is_function: Callable[[str, str], bool]) -> dict[str, dict[str, bool]]:
    """module -> {name: passed on as a value} for the names of wanted[module] that module-level `from module
    import name` statements of `source` (a module of `package`) bind and that the rest of the source only uses
    later, as the module docstring says. A name passed on as a value qualifies only where `is_function(module,
    name)` says the module defines it with a plain `def`: its stand-in is then a function."""
    tree = _parse(source)
    if tree is None or not any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                               and any(a.name == "annotations" for a in n.names) for n in tree.body):
        return {}  # annotations would be evaluated at import
    bound = _bindings(tree, package, wanted)
    checker = _UseChecker(set(bound))
    unsafe = checker.unsafe_in(tree) | _exported(tree)
    out: dict[str, dict[str, bool]] = {}
    for local, (module, name) in bound.items():
        passed = local in checker.passed
        if local not in unsafe and (not passed or is_function(module, name)):
            out.setdefault(module, {})[name] = passed
    return out


def _defined_as_function(module: str, name: str, hops: int = 2) -> bool:
    """Whether `module` defines `name` with a plain `def` (no decorator), or re-exports it from a module that
    does (`from .x import name`, up to `hops` such steps). The module's source is read, not imported."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    tree = _parse(_source_of(spec.origin if spec is not None else None))
    if tree is None:
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return not node.decorator_list
        if isinstance(node, ast.ImportFrom) and hops > 0 and any((a.asname or a.name) == name for a in node.names):
            package = module if spec.submodule_search_locations else module.rpartition(".")[0]
            original = next(a.name for a in node.names if (a.asname or a.name) == name)
            source = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            return _defined_as_function(source, original, hops - 1)
    return False


def _source_of(path: str | None) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:  # type: ignore[arg-type]
            return f.read()
    except (OSError, TypeError, ValueError):
        return None


def _parse(source: str | None) -> ast.Module | None:
    try:
        return ast.parse(source) if source is not None else None
    except (SyntaxError, ValueError):
        return None


def _bindings(tree: ast.Module, package: str, wanted: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, str]]:
    """local name -> (module, name) for the module-level imports of wanted names; a local name bound twice is
    left out."""
    bound: dict[str, tuple[str, str]] = {}
    twice: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
            continue
        try:
            module = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
        except (ImportError, ValueError):
            continue
        for alias in node.names:
            local = alias.asname or alias.name
            if local in bound:
                twice.add(local)
            if alias.name in wanted.get(module, ()):
                bound[local] = (module, alias.name)
    return {local: target for local, target in bound.items() if local not in twice}


def _exported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(getattr(t, "id", None) == "__all__" for t in targets) and node.value is not None:
                names |= {e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant)
                          and isinstance(e.value, str)}
    return names


class _UseChecker:
    """Finds the names used where a stand-in would not do, and those passed on as values (see the module
    docstring)."""

    def __init__(self, names: set[str]):
        self.names = names
        self.unsafe: set[str] = set()
        self.passed: set[str] = set()

    def unsafe_in(self, tree: ast.Module) -> set[str]:
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                continue  # the bindings themselves
            self.visit(node, in_function=False, parent=None)
        return self.unsafe

    def visit(self, node: ast.AST, in_function: bool, parent: ast.AST | None) -> None:
        if isinstance(node, ast.Name) and node.id in self.names:
            use = _use(node, parent) if in_function and isinstance(node.ctx, ast.Load) else None
            if use is None:
                self.unsafe.add(node.id)
            elif use == "passed":
                self.passed.add(node.id)
            return
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            self.unsafe |= self.names & set(node.names)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            self._visit_function(node, in_function)
            return
        if isinstance(node, ast.AnnAssign) and in_function:  # a local's annotation is never evaluated
            for child in (node.target, node.value):
                if child is not None:
                    self.visit(child, in_function, node)
            return
        for child in ast.iter_child_nodes(node):
            self.visit(child, in_function, node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, in_function: bool) -> None:
        """Decorators and defaults run where the function is defined; annotations are strings; the body later."""
        for outer in [*getattr(node, "decorator_list", ()), *node.args.defaults,
                      *(d for d in node.args.kw_defaults if d is not None)]:
            self.visit(outer, in_function, node)
        body = node.body if isinstance(node.body, list) else [node.body]
        for statement in body:
            self.visit(statement, True, node)


def _use(node: ast.Name, parent: ast.AST | None) -> str | None:
    """"later": a call of the name, its attribute or subscript, or `cast(name, value)` (which ignores the type);
    "passed": an argument of a call; None: anything else."""
    if isinstance(parent, ast.Call):
        if parent.func is node or (isinstance(parent.func, ast.Name) and parent.func.id == "cast"
                                   and bool(parent.args) and parent.args[0] is node):
            return "later"
        return "passed"
    if isinstance(parent, ast.keyword):
        return "passed"
    return "later" if isinstance(parent, (ast.Attribute, ast.Subscript)) and parent.value is node else None
