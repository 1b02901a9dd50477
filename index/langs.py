"""Per-language tree-sitter settings: which nodes are definitions, containers and imports."""

from __future__ import annotations

import importlib
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePosixPath
from typing import Any


@dataclass(frozen=True)
class LangSpec:
    name: str
    module: str  # the tree_sitter_<lang> wheel
    func: str = "language"  # the function in it returning the grammar
    exts: tuple[str, ...] = ()
    # definition node type -> symbol kind
    defs: dict[str, str] = field(default_factory=dict)
    # nodes wrapping one definition (decorators, `export`), and the field holding it
    wrappers: dict[str, str] = field(default_factory=dict)
    # definitions whose `body` holds members (methods, nested classes)
    containers: frozenset[str] = frozenset()
    # node types that carry imports
    imports: frozenset[str] = frozenset()
    structural: bool = True  # False: the grammar is used for nothing; chunk by line windows
    # a data/config format (JSON, YAML, TOML): chunked at keys and tables by chunker._ConfigWalker,
    # its key paths recorded as symbols; defs/wrappers/containers/imports are unused
    config: bool = False


_JS_DEFS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "class_declaration": "class",
    "method_definition": "method",
    "lexical_declaration": "function",  # only when it binds a function/arrow/class (checked in code)
    "variable_declaration": "function",
}
_TS_DEFS = {
    **_JS_DEFS,
    "abstract_class_declaration": "class",
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "enum_declaration": "enum",
    "function_signature": "function",
    "method_signature": "method",
    "abstract_method_signature": "method",
    "internal_module": "namespace",
}

SPECS: tuple[LangSpec, ...] = (
    LangSpec(
        "python",
        "tree_sitter_python",
        exts=(".py", ".pyi", ".pyw"),
        defs={"function_definition": "function", "class_definition": "class"},
        wrappers={"decorated_definition": "definition"},
        containers=frozenset({"class_definition"}),
        imports=frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
    ),
    LangSpec(
        "javascript",
        "tree_sitter_javascript",
        exts=(".js", ".mjs", ".cjs", ".jsx"),
        defs=_JS_DEFS,
        wrappers={"export_statement": "declaration"},
        containers=frozenset({"class_declaration", "class"}),
        imports=frozenset({"import_statement"}),
    ),
    LangSpec(
        "typescript",
        "tree_sitter_typescript",
        func="language_typescript",
        exts=(".ts", ".mts", ".cts"),
        defs=_TS_DEFS,
        wrappers={"export_statement": "declaration"},
        containers=frozenset({"class_declaration", "abstract_class_declaration", "interface_declaration", "internal_module"}),
        imports=frozenset({"import_statement"}),
    ),
    LangSpec(
        "tsx",
        "tree_sitter_typescript",
        func="language_tsx",
        exts=(".tsx",),
        defs=_TS_DEFS,
        wrappers={"export_statement": "declaration"},
        containers=frozenset({"class_declaration", "abstract_class_declaration", "interface_declaration"}),
        imports=frozenset({"import_statement"}),
    ),
    LangSpec(
        "go",
        "tree_sitter_go",
        exts=(".go",),
        defs={"function_declaration": "function", "method_declaration": "method", "type_declaration": "type"},
        imports=frozenset({"import_declaration"}),
    ),
    LangSpec(
        "rust",
        "tree_sitter_rust",
        exts=(".rs",),
        defs={
            "function_item": "function",
            "function_signature_item": "function",
            "struct_item": "struct",
            "enum_item": "enum",
            "union_item": "union",
            "trait_item": "trait",
            "impl_item": "impl",
            "mod_item": "module",
            "macro_definition": "macro",
            "type_item": "type",
            "const_item": "const",
            "static_item": "static",
        },
        containers=frozenset({"impl_item", "trait_item", "mod_item"}),
        imports=frozenset({"use_declaration", "extern_crate_declaration"}),
    ),
    LangSpec(
        "java",
        "tree_sitter_java",
        exts=(".java",),
        defs={
            "class_declaration": "class",
            "interface_declaration": "interface",
            "enum_declaration": "enum",
            "record_declaration": "record",
            "annotation_type_declaration": "annotation",
            "method_declaration": "method",
            "constructor_declaration": "constructor",
        },
        containers=frozenset(
            {"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}
        ),
        imports=frozenset({"import_declaration"}),
    ),
    LangSpec(
        "c",
        "tree_sitter_c",
        exts=(".c", ".h"),
        defs={"function_definition": "function", "struct_specifier": "struct", "enum_specifier": "enum",
              "type_definition": "type"},
        imports=frozenset({"preproc_include"}),
    ),
    LangSpec(
        "cpp",
        "tree_sitter_cpp",
        exts=(".cc", ".cpp", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp"),
        defs={
            "function_definition": "function",
            "class_specifier": "class",
            "struct_specifier": "struct",
            "enum_specifier": "enum",
            "namespace_definition": "namespace",
            "type_definition": "type",
        },
        wrappers={"template_declaration": ""},
        containers=frozenset({"class_specifier", "struct_specifier", "namespace_definition"}),
        imports=frozenset({"preproc_include"}),
    ),
    LangSpec(
        "bash",
        "tree_sitter_bash",
        exts=(".sh", ".bash", ".zsh"),
        defs={"function_definition": "function"},
        imports=frozenset(),
    ),
    LangSpec("json", "tree_sitter_json", exts=(".json", ".jsonc"), config=True),
    LangSpec("yaml", "tree_sitter_yaml", exts=(".yaml", ".yml"), config=True),
    LangSpec("toml", "tree_sitter_toml", exts=(".toml",), config=True),
)

_BY_EXT = {ext: spec for spec in SPECS for ext in spec.exts}
# files known by their whole name rather than their extension
_BY_NAME = {"Pipfile": next(s for s in SPECS if s.name == "toml")}

# Lockfiles: thousands of generated keys (one per dependency) that nobody searches by name. They stay
# line-windowed and record no symbols. Most (Cargo.lock, poetry.lock, uv.lock, yarn.lock) have no spec
# at all; the rest are JSON or YAML by extension.
LOCKFILE_NAMES = frozenset(
    {"package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "bun.lock", "deno.lock", "flake.lock",
     "composer.lock", "Cargo.lock", "poetry.lock", "Pipfile.lock", "uv.lock", "pdm.lock", "yarn.lock",
     "Gemfile.lock", "mix.lock", "pubspec.lock", "Podfile.lock", "packages.lock.json", "conda-lock.yml"}
)
_LOCK_RE = re.compile(r"(?:^|[._-])lock\.(?:json|jsonc|ya?ml|toml)$", re.IGNORECASE)

# Text files indexed by line windows (not an exhaustive list: any text file is indexed).
BINARY_EXTS = frozenset(
    """.png .jpg .jpeg .gif .bmp .ico .webp .tiff .psd .pdf .zip .gz .tgz .bz2 .xz .zst .7z .rar .tar
    .jar .war .class .so .dylib .dll .exe .o .a .lib .obj .pyc .pyo .pyd .whl .egg .bin .dat .db .sqlite
    .sqlite3 .woff .woff2 .ttf .otf .eot .mp3 .mp4 .wav .ogg .flac .avi .mov .mkv .webm .npy .npz .pkl
    .pickle .pt .pth .onnx .safetensors .h5 .parquet .arrow .lockb .wasm .DS_Store""".split()
)


def spec_for(path: str) -> LangSpec | None:
    pure = PurePosixPath(path)
    return _BY_EXT.get(pure.suffix.lower()) or _BY_NAME.get(pure.name)


def is_lockfile(path: str) -> bool:
    """A dependency lockfile (`package-lock.json`, `pnpm-lock.yaml`, `Cargo.lock`, `x.lock.json`)."""
    name = PurePosixPath(path.replace("\\", "/")).name
    return name in LOCKFILE_NAMES or bool(_LOCK_RE.search(name))


_local = threading.local()


def parser_for(spec_name: str) -> Any | None:
    """A tree-sitter Parser (one per thread: parsers are not thread-safe), None without a grammar."""
    cache = _local.__dict__.setdefault("parsers", {})
    if spec_name not in cache:
        cache[spec_name] = _make_parser(spec_name)
    return cache[spec_name]


@cache
def _language(spec_name: str) -> Any | None:
    spec = next((s for s in SPECS if s.name == spec_name), None)
    if spec is None or not spec.structural:
        return None
    try:
        from tree_sitter import Language

        module = importlib.import_module(spec.module)
        return Language(getattr(module, spec.func)())
    except Exception:  # noqa: BLE001 - a missing or incompatible grammar means line windows
        return None


def _make_parser(spec_name: str) -> Any | None:
    language = _language(spec_name)
    if language is None:
        return None
    from tree_sitter import Parser

    return Parser(language)
