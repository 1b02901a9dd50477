"""Import a provider SDK's client without the thousands of modules a coding agent never uses.

`import anthropic` runs anthropic/__init__.py, which imports the types of every API the SDK covers (over 3,000
modules, most of the ~1 s `import anthropic` takes, nearly all of it pydantic class creation); `import openai`
does the same on a smaller scale. A streaming Messages or Chat Completions client needs a small part of that.
`import_lean("anthropic._client")` imports one module of an SDK, with two changes to how its packages load:

* the root package (`anthropic`, `openai`) is created without running its __init__.py; the first attribute
  looked up on it that it does not have yet runs the real __init__.py, so `import anthropic` elsewhere in the
  process, and any `anthropic.X`, behave exactly as usual;
* a package whose __init__.py only re-exports names of its submodules (`from .x import A as A`, an `__all__`)
  imports the submodule holding a name when the name is first looked up (PEP 562 module __getattr__);
* the names of sdk_defer.DEFERRED_IMPORTS (streaming helpers, error classes, batches: used only later, if at
  all) are stand-ins until first used.

An SDK already imported is used as it is. Nothing of the SDK is changed on disk.

`load_sdk()` runs that import in a background thread, so that it overlaps with the rest of the agent's setup
(the git status of a large tree, the token encoding, .pyc files read from a cold disk cache);
`SDKLoader.get()` waits for it. The main thread touches none of the SDK's modules until then, so the two
threads never import the same modules at once.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ghostline.agent.providers.kept_facts import KeptFacts
from ghostline.agent.providers.sdk_defer import DEFERRED_MODULES, DeferringLoader

LEAN_ROOTS = frozenset({"anthropic", "openai"})
_install_lock = threading.Lock()
_installed = False


def import_lean(name: str) -> ModuleType:
    """Import `name` (a module inside one of LEAN_ROOTS) with the SDK's packages loaded lazily."""
    if name.partition(".")[0] not in LEAN_ROOTS:
        raise ValueError(f"{name} is not in a lean-importable SDK ({', '.join(sorted(LEAN_ROOTS))})")
    install()
    return importlib.import_module(name)


def client_and_errors(root: str, client_class: str) -> tuple[type, ModuleType]:
    """The SDK's async client class and the module holding its exception classes (APIStatusError,
    APIConnectionError, APIError), imported lean; the plain `import <root>` for an SDK laid out otherwise."""
    try:
        client = getattr(import_lean(f"{root}._client"), client_class)
        errors = import_lean(f"{root}._exceptions")
        import_lean(f"{root}._utils._logs").setup_logging()  # as <root>/__init__.py does (ANTHROPIC_LOG...)
    except (ImportError, AttributeError):
        sdk = importlib.import_module(root)
        return getattr(sdk, client_class), sdk
    return client, errors


class SDKLoader:
    """The lean import of one SDK (its client class, its exception classes, the modules of the first request),
    run in a background thread. `get()` waits for it; when the background import failed, `get()` imports again
    in the calling thread, so the caller sees the error itself. `then(client_class)` runs in that thread once
    the client class is there, before the rest: work to start as early as the SDK allows."""

    def __init__(self, root: str, client_class: str, preload: tuple[str, ...] = (),
                 then: Callable[[type], None] | None = None):
        self.root, self.client_class, self.preload, self.then = root, client_class, preload, then
        self._done = threading.Event()
        self._result: tuple[type, ModuleType] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SDKLoader:
        if f"{self.root}._client" in sys.modules:  # already imported: nothing to overlap
            self._load()
        else:
            self._thread = threading.Thread(target=self._load, name=f"import-{self.root}", daemon=True)
            self._thread.start()
        return self

    def wait(self) -> None:
        """Until the background import is over (at once when called from the import itself)."""
        if threading.current_thread() is not self._thread:
            self._done.wait()

    def _load(self) -> None:
        try:
            self._result = client_and_errors(self.root, self.client_class)
            if self.then is not None:
                self.then(self._result[0])
            for name in self.preload:
                import_lean(name)
        except Exception:  # noqa: BLE001 - get() imports again in the caller's thread and raises there
            pass
        finally:
            self._done.set()

    def get(self) -> tuple[type, ModuleType]:
        """(the async client class, the module of the exception classes), once imported."""
        self.wait()
        if self._result is None:
            self._result = client_and_errors(self.root, self.client_class)
        return self._result


_loaders: dict[str, SDKLoader] = {}
_loaders_lock = threading.Lock()


def load_sdk(root: str, client_class: str, preload: tuple[str, ...] = (),
             then: Callable[[type], None] | None = None) -> SDKLoader:
    """The process's loader of SDK `root`: the first call starts the lean import in the background."""
    with _loaders_lock:
        loader = _loaders.get(root)
        if loader is None:
            loader = _loaders[root] = SDKLoader(root, client_class, preload, then).start()
    return loader


def wait_for_background_imports() -> None:
    """Until every SDK import started in the background is over: work that would compete with them for the
    interpreter (the GIL) and can wait goes after them, so the first request goes out sooner."""
    with _loaders_lock:
        loaders = list(_loaders.values())
    for loader in loaders:
        loader.wait()


def install() -> None:
    """Put the lazy loaders in front of the import system for the SDKs (once per process)."""
    global _installed
    with _install_lock:
        if not _installed:
            sys.meta_path.insert(0, _LeanSDKFinder())
            _installed = True


class _LeanSDKFinder(importlib.abc.MetaPathFinder):
    """Finds the SDKs' packages as usual, then swaps in a lazy loader where the package allows it."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        root = fullname.partition(".")[0]
        if root not in LEAN_ROOTS or (root == fullname and root in sys.modules):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not spec.origin:
            return spec
        if fullname == root:
            spec.loader = _DeferredInitLoader(spec.loader)
        elif spec.submodule_search_locations:
            table = reexport_table(spec.origin)
            if table is not None:
                spec.loader = _ReexportLoader(table)
        if fullname in DEFERRED_MODULES:
            spec.loader = DeferringLoader(spec.loader, _wait_for_background)
        return spec


def _wait_for_background(module: str) -> None:
    """Until the SDK's lean import in the background is over (at once in that thread): one import at a time."""
    background = _loaders.get(module.partition(".")[0])
    if background is not None:
        background.wait()


class _DeferredInitLoader(importlib.abc.Loader):
    """The root package: its real __init__.py runs when an attribute it lacks is first looked up."""

    def __init__(self, real: importlib.abc.Loader):
        self.real = real
        self.lock = threading.RLock()
        self.ran = False

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook
            if _is_submodule(module, name):  # `from . import _exceptions` inside the SDK
                return importlib.import_module(f"{module.__name__}.{name}")
            self.run_real_init(module)
            return getattr(module, name)  # the real module's own lookup (and its own __getattr__, if any)

        module.__getattr__ = __getattr__  # type: ignore[method-assign]

    def run_real_init(self, module: ModuleType) -> None:
        _wait_for_background(module.__name__)  # `anthropic.X` elsewhere while the lean import runs
        with self.lock:
            if self.ran:
                return
            self.ran = True
            module.__dict__.pop("__getattr__", None)
            self.real.exec_module(module)  # type: ignore[attr-defined]


class _ReexportLoader(importlib.abc.Loader):
    """A re-export-only package: each name is imported from its submodule on first lookup."""

    def __init__(self, table: dict[str, tuple[str, str | None]]):
        self.table = table

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        table, package = self.table, module.__name__

        def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook
            if name not in table:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            submodule, attr = table[name]
            found = importlib.import_module(f"{package}.{submodule}")
            value = found if attr is None else getattr(found, attr)
            setattr(module, name, value)
            return value

        def __dir__() -> list[str]:  # noqa: N807
            return sorted(set(module.__dict__) | set(table))

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__dir__ = __dir__  # type: ignore[method-assign]
        if "__all__" not in module.__dict__:
            module.__all__ = list(table)


def _is_submodule(package: ModuleType, name: str) -> bool:
    return any(os.path.exists(os.path.join(where, name + ".py")) or os.path.isdir(os.path.join(where, name))
               for where in getattr(package, "__path__", ()))


def reexport_table(init_path: str) -> dict[str, tuple[str, str | None]] | None:
    """name -> (submodule, attribute or None for the submodule itself) when the package's __init__.py does
    nothing but re-export names of its submodules; None otherwise (the package then loads as usual). Kept in
    the data dir for the next run (reading anthropic's types packages costs ~15 ms of a cold start)."""
    kept = _REEXPORTS.get(init_path, init_path)
    if kept is not None:
        return kept["table"]
    table = _read_reexport_table(init_path)
    _REEXPORTS.put(init_path, init_path, None, {"table": table})
    return table


def _read_reexport_table(init_path: str) -> dict[str, tuple[str, str | None]] | None:
    try:
        with open(init_path, encoding="utf-8") as f:
            source = f.read()
    except (OSError, ValueError):
        return None
    table = _plain_reexports(source)
    if table is None:
        table = _reexports_of_tree(source, init_path)
    if not table or _shadows_a_submodule(os.path.dirname(init_path), table):
        return None
    return table


REEXPORT_FORMAT = 1  # of the tables kept in the data dir: a change of the rules below must change it
_REEXPORTS = KeptFacts("sdk-reexports", REEXPORT_FORMAT)
# The layout of the SDKs' generated packages, read without building an AST (a tenth of the time for the
# ~1,900-line anthropic/types/beta/__init__.py): `from .x import A as A` statements, one a line or in
# parentheses, after an optional `from __future__ import annotations`. Anything else goes to the AST reader.
_PLAIN_IMPORT = re.compile(r"from \.((?:\w+\.)*\w+)? import (?:\(([^()#]*)\)|([^()#\n]*))\n")
_PLAIN_NAME = re.compile(r"(\w+)(?: as (\w+))?")
_FUTURE = "from __future__ import annotations\n"


def _plain_reexports(source: str) -> dict[str, tuple[str, str | None]] | None:
    lines = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    text = "\n".join(lines) + "\n"
    pos = len(_FUTURE) if text.startswith(_FUTURE) else 0
    table: dict[str, tuple[str, str | None]] = {}
    while pos < len(text):
        m = _PLAIN_IMPORT.match(text, pos)
        if m is None:
            return None
        for item in (m[2] if m[2] is not None else m[3]).split(","):
            name = _PLAIN_NAME.fullmatch(item.strip())
            if name is None:
                if item.strip():
                    return None
                continue
            table[name[2] or name[1]] = (name[1], None) if m[1] is None else (m[1], name[1])
        pos = m.end()
    return table


def _reexports_of_tree(source: str, init_path: str) -> dict[str, tuple[str, str | None]] | None:
    try:
        tree = ast.parse(source, init_path)
    except (SyntaxError, ValueError):
        return None
    table: dict[str, tuple[str, str | None]] = {}
    for node in tree.body:
        if _is_inert(node):
            continue
        if not isinstance(node, ast.ImportFrom) or node.level != 1:
            return None
        for alias in node.names:
            if alias.name == "*":
                return None
            target = (alias.name, None) if node.module is None else (node.module, alias.name)
            table[alias.asname or alias.name] = target
    return table


def _is_inert(node: ast.stmt) -> bool:
    """A docstring, `from __future__ import ...` or an `__all__ = [...]` of constants."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return True
    return (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
            and isinstance(node.value, (ast.List, ast.Tuple))
            and all(isinstance(e, ast.Constant) for e in node.value.elts))


def _shadows_a_submodule(package_dir: str, table: dict[str, tuple[str, str | None]]) -> bool:
    """A re-exported object named like a submodule: importing the submodule would set the package attribute
    to the module first, and the lazy lookup would never run. Such a package loads as usual."""
    return any(attr is not None and (os.path.exists(os.path.join(package_dir, name + ".py"))
                                     or os.path.isdir(os.path.join(package_dir, name)))
               for name, (_, attr) in table.items())
