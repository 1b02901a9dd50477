"""The syntax guard: refuse an edit that makes a file that parsed cleanly stop parsing (tree-sitter).

Grammars come from the per-language ``tree_sitter_<lang>`` wheels and are loaded lazily on first use.
Files in other languages skip the guard.  Parses of the text before the edit are reused from a small cache
and the text after the edit is parsed incrementally from the old tree, so the guard stays cheap on big files.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from tree_sitter import Language, Parser

from ghostline.apply.diff import common_affix_lengths

# extension -> grammar: (module, function returning the language pointer)
_GRAMMARS: dict[str, tuple[str, str]] = {
    ".py": ("tree_sitter_python", "language"),
    ".pyi": ("tree_sitter_python", "language"),
    ".js": ("tree_sitter_javascript", "language"),
    ".mjs": ("tree_sitter_javascript", "language"),
    ".cjs": ("tree_sitter_javascript", "language"),
    ".jsx": ("tree_sitter_javascript", "language"),
    ".ts": ("tree_sitter_typescript", "language_typescript"),
    ".mts": ("tree_sitter_typescript", "language_typescript"),
    ".cts": ("tree_sitter_typescript", "language_typescript"),
    ".tsx": ("tree_sitter_typescript", "language_tsx"),
    ".go": ("tree_sitter_go", "language"),
    ".rs": ("tree_sitter_rust", "language"),
    ".java": ("tree_sitter_java", "language"),
    ".c": ("tree_sitter_c", "language"),
    ".h": ("tree_sitter_cpp", "language"),
    ".cc": ("tree_sitter_cpp", "language"),
    ".cpp": ("tree_sitter_cpp", "language"),
    ".cxx": ("tree_sitter_cpp", "language"),
    ".hpp": ("tree_sitter_cpp", "language"),
    ".hh": ("tree_sitter_cpp", "language"),
    ".hxx": ("tree_sitter_cpp", "language"),
    ".sh": ("tree_sitter_bash", "language"),
    ".bash": ("tree_sitter_bash", "language"),
    ".json": ("tree_sitter_json", "language"),
    ".yaml": ("tree_sitter_yaml", "language"),
    ".yml": ("tree_sitter_yaml", "language"),
    ".toml": ("tree_sitter_toml", "language"),
}
_EXTENSION_OF_NAME = {".bashrc": ".sh", ".profile": ".sh", "Pipfile": ".toml", "Cargo.lock": ".toml"}

_lock = threading.Lock()
_parsers: dict[tuple[str, str], Any] = {}  # grammar -> parser (None: grammar unusable)
# Recent parse trees, so that the text before an edit (often just read or just edited) is not parsed again and
# the text after it is parsed incrementally.
_trees: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (grammar, sha1 of the text) -> tree
_TREE_CACHE = 16


def language_key(path: str | Path) -> tuple[str, str] | None:
    """The grammar of a file, from its extension (or its name); None for languages the guard skips."""
    p = Path(path)
    ext = _EXTENSION_OF_NAME.get(p.name) or p.suffix.lower()
    return _GRAMMARS.get(ext)


def _parser(key: tuple[str, str]) -> Any | None:
    with _lock:
        if key in _parsers:
            return _parsers[key]
        try:
            mod = importlib.import_module(key[0])  # grammars load lazily: one wheel per language
            parser = Parser(Language(getattr(mod, key[1])()))
        except Exception:  # grammar missing or ABI mismatch: the guard is skipped, never a crash
            parser = None
        _parsers[key] = parser
        return parser


def _tree_key(key: tuple[str, str], data: bytes) -> tuple[str, str]:
    return key[0] + key[1], hashlib.sha1(data).hexdigest()


def _parse(key: tuple[str, str], data: bytes, old: tuple[Any, bytes] | None = None) -> Any | None:
    parser = _parser(key)
    if parser is None:
        return None
    cache_key = _tree_key(key, data)
    with _lock:
        tree = _trees.get(cache_key)
        if tree is not None:
            _trees.move_to_end(cache_key)
            return tree
    if old is not None:
        old_tree, old_data = old
        tree = parser.parse(data, _edited(old_tree, old_data, data))
    else:
        tree = parser.parse(data)
    with _lock:
        _trees[cache_key] = tree
        while len(_trees) > _TREE_CACHE:
            _trees.popitem(last=False)
    return tree


def _point(data: bytes, offset: int) -> tuple[int, int]:
    row = data.count(b"\n", 0, offset)
    col = offset - (data.rfind(b"\n", 0, offset) + 1)
    return (row, col)


def _edited(old_tree: Any, old: bytes, new: bytes) -> Any:
    """A copy of ``old_tree`` told about the single changed byte range between ``old`` and ``new``."""
    prefix, suffix = common_affix_lengths(old, new)
    start, end_old, end_new = prefix, len(old) - suffix, len(new) - suffix
    tree = old_tree.copy()
    tree.edit(
        start_byte=start,
        old_end_byte=end_old,
        new_end_byte=end_new,
        start_point=_point(old, start),
        old_end_point=_point(old, end_old),
        new_end_point=_point(new, end_new),
    )
    return tree


def _first_error(tree: Any) -> tuple[int, int] | None:
    """(line, column), 1-based line, of the first ERROR or MISSING node."""
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if not node.has_error:
            continue
        if node.is_error or node.is_missing:
            return (node.start_point[0] + 1, node.start_point[1] + 1)
        stack.extend(reversed(node.children))
    return None


def prefetch(path: str | Path, text: str) -> None:
    """Parse ``text`` now and keep its tree, so that a later :func:`check` of an edit to it is incremental.

    A read tool can call this (in a thread) when the model reads a file it is likely to edit.
    """
    key = language_key(path)
    if key is not None:
        _parse(key, text.encode("utf-8", "surrogatepass"))


def clear_cache() -> None:
    with _lock:
        _trees.clear()


def check(path: str | Path, before: str, after: str) -> str | None:
    """None when the edit is acceptable; else a one-paragraph reason naming the line of the new error.

    The text after the edit is parsed first (incrementally when the tree of the text before is cached); only
    when it has an error is the text before parsed, to tell a new error from one that was already there.
    """
    key = language_key(path)
    if key is None:
        return None
    b = before.encode("utf-8", "surrogatepass")
    a = after.encode("utf-8", "surrogatepass")
    with _lock:
        old_tree = _trees.get(_tree_key(key, b))
    new_tree = _parse(key, a, (old_tree, b) if old_tree is not None else None)
    if new_tree is None or not new_tree.root_node.has_error:
        return None
    old_tree = old_tree or _parse(key, b)
    if old_tree is None or old_tree.root_node.has_error:
        return None  # unparsable before: nothing to protect
    where = _first_error(new_tree)
    lang = key[0].removeprefix("tree_sitter_")
    loc = f" near line {where[0]}, column {where[1]}" if where else ""
    return f"the edited file would no longer parse as {lang} (syntax error{loc}); the file was left unchanged"
