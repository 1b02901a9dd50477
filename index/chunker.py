"""Split a source file into retrieval chunks at syntactic boundaries; record symbols and imports.

Definitions (functions, classes, methods, ...) start chunks; small neighbours merge until a chunk
reaches MIN_TOKENS; anything over MAX_TOKENS is split (a class into its members, a long function or
statement into line windows). Files without a grammar are chunked by line windows.

Config files are chunked at their keys: JSON at the members of the top-level object, YAML at the pairs of
each document's top-level mapping, TOML at its tables and the root table's pairs; an oversized JSON/YAML
member splits at its own members. Their key paths (`compilerOptions.paths`, `jobs.test.steps`,
`tool.ruff`) are the symbols, limited in depth and number; lockfiles and files that do not parse are
chunked by line windows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ghostline.index.langs import LangSpec, is_lockfile, parser_for, spec_for
from ghostline.index.tokens import approx_tokens

MIN_TOKENS = 100
MAX_TOKENS = 250
MAX_SIGNATURE = 240
# config files: key paths deeper than this are not symbols (`a.b.c` is depth 3), nor list elements
CONFIG_SYMBOL_DEPTH = 3
# ... and at most this many symbols per file, shallower levels first (whole levels)
MAX_CONFIG_SYMBOLS = 300


@dataclass
class Chunk:
    start_line: int  # 1-based, inclusive
    end_line: int
    text: str
    symbol: str | None = None  # qualified name of the main definition in the chunk
    kind: str | None = None
    symbols: list[str] = field(default_factory=list)  # every definition the chunk holds


@dataclass
class Symbol:
    name: str
    qualname: str
    kind: str
    signature: str
    line: int
    end_line: int


@dataclass
class Import:
    module: str
    line: int


@dataclass
class FileAnalysis:
    lang: str | None
    chunks: list[Chunk]
    symbols: list[Symbol]
    imports: list[Import]


@dataclass
class _Seg:
    start: int  # 0-based rows, inclusive
    end: int
    symbol: str | None = None
    kind: str | None = None
    names: list[str] = field(default_factory=list)


def analyze(path: str, text: str) -> FileAnalysis:
    """Chunks, symbols and imports of one file (path is only used to pick the language)."""
    lines = text.splitlines()
    spec = spec_for(path)
    parser = parser_for(spec.name) if spec is not None else None
    if spec is None or parser is None or not lines:
        return FileAnalysis(spec.name if spec else None, line_windows(lines, 0, len(lines) - 1), [], [])
    if spec.config:
        return _analyze_config(spec, path, text, lines, parser)
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    walker = _Walker(spec, lines)
    segs: list[_Seg] = []
    walker.collect(tree.root_node, "", segs)
    chunks = _assemble(segs, lines)
    return FileAnalysis(spec.name, chunks, walker.symbols, walker.imports)


def line_windows(lines: list[str], start: int, end: int, symbol: str | None = None,
                 kind: str | None = None) -> list[Chunk]:
    """Chunks of consecutive lines [start, end] (0-based) of about MIN..MAX tokens, cut at blank lines
    when possible."""
    chunks: list[Chunk] = []
    cur_start, cur_tokens = start, 0
    for row in range(start, end + 1):
        n = approx_tokens(lines[row])
        if cur_tokens and cur_tokens + n > MAX_TOKENS:
            chunks.append(_chunk(lines, cur_start, row - 1, symbol, kind))
            cur_start, cur_tokens = row, 0
        cur_tokens += n
        if cur_tokens >= MIN_TOKENS and not lines[row].strip() and row < end:
            chunks.append(_chunk(lines, cur_start, row, symbol, kind))
            cur_start, cur_tokens = row + 1, 0
    if cur_start <= end:
        tail = _chunk(lines, cur_start, end, symbol, kind)
        if chunks and cur_tokens < MIN_TOKENS // 2 and approx_tokens(chunks[-1].text) + cur_tokens <= MAX_TOKENS:
            chunks[-1] = _chunk(lines, chunks[-1].start_line - 1, end, symbol, kind)
        else:
            chunks.append(tail)
    return [c for c in chunks if c.text.strip()]


def _chunk(lines: list[str], start: int, end: int, symbol: str | None, kind: str | None,
           names: list[str] | None = None) -> Chunk:
    """A chunk of rows [start, end] (0-based), blank edge lines trimmed."""
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end].strip():
        end -= 1
    return Chunk(start + 1, end + 1, "\n".join(lines[start : end + 1]), symbol, kind,
                 list(names) if names else ([symbol] if symbol else []))


def _assemble(segs: list[_Seg], lines: list[str]) -> list[Chunk]:
    """Turn ordered segments into chunks covering the file: gaps join the next segment, small
    neighbours merge, oversized pieces become line windows."""
    last_row = len(lines) - 1
    out: list[Chunk] = []
    cur: _Seg | None = None
    cur_tokens = 0
    prev_end = -1

    def flush() -> None:
        nonlocal cur, cur_tokens
        if cur is None:
            return
        if cur_tokens > MAX_TOKENS:
            windows = line_windows(lines, cur.start, cur.end, cur.symbol, cur.kind)
            if windows and cur.names:  # the names it holds go with its first window
                windows[0].symbols = list(dict.fromkeys([*windows[0].symbols, *cur.names]))
            out.extend(windows)
        else:
            c = _chunk(lines, cur.start, cur.end, cur.symbol, cur.kind, cur.names)
            if c.text.strip():
                out.append(c)
        cur, cur_tokens = None, 0

    for seg in sorted(segs, key=lambda s: (s.start, s.end)):
        if seg.end <= prev_end:  # shares lines with what came before: its names go with them
            if cur is not None:
                cur.names.extend(n for n in seg.names if n not in cur.names)
            continue
        seg = _Seg(prev_end + 1, seg.end, seg.symbol, seg.kind, list(seg.names))
        prev_end = seg.end
        n = sum(approx_tokens(lines[r]) for r in range(seg.start, seg.end + 1))
        if cur is not None and cur_tokens < MIN_TOKENS and cur_tokens + n <= MAX_TOKENS:
            cur.end = seg.end
            cur.names.extend(seg.names)
            if cur.symbol is None and seg.symbol is not None:
                cur.symbol, cur.kind = seg.symbol, seg.kind
            cur_tokens += n
            continue
        flush()
        cur, cur_tokens = seg, n
    if cur is not None and prev_end < last_row:
        cur.end = last_row
        cur_tokens += sum(approx_tokens(lines[r]) for r in range(prev_end + 1, last_row + 1))
    elif cur is None and prev_end < last_row:
        cur = _Seg(prev_end + 1, last_row)
        cur_tokens = sum(approx_tokens(lines[r]) for r in range(cur.start, cur.end + 1))
    # a tiny tail joins the previous chunk when it fits
    if cur is not None and out and cur_tokens < MIN_TOKENS // 2 and cur.symbol is None:
        prev = out[-1]
        prev_tokens = approx_tokens(prev.text)
        if prev_tokens + cur_tokens <= MAX_TOKENS:
            out[-1] = _chunk(lines, prev.start_line - 1, cur.end, prev.symbol, prev.kind, prev.symbols)
            cur = None
    flush()
    return out


_WS = re.compile(r"\s+")


def _go_receiver_type(method: Any) -> str | None:
    """`func (s *Server[T]) Handle()` -> "Server": Go methods are qualified by their receiver's base type."""
    recv = method.child_by_field_name("receiver")
    param = next((c for c in recv.named_children if c.type == "parameter_declaration"), None) if recv else None
    node = param.child_by_field_name("type") if param is not None else None
    while node is not None and node.type in ("pointer_type", "generic_type", "parenthesized_type"):
        node = node.child_by_field_name("type") or next(
            (c for c in node.named_children if c.type in ("type_identifier", "generic_type", "pointer_type")), None)
    return _text(node) if node is not None and node.type == "type_identifier" else None


class _Walker:
    def __init__(self, spec: LangSpec, lines: list[str]) -> None:
        self.spec = spec
        self.lines = lines
        self.symbols: list[Symbol] = []
        self.imports: list[Import] = []

    # -- definitions -------------------------------------------------------------------------
    def definition(self, node: Any) -> tuple[Any, str, str] | None:
        """(inner definition node, kind, name) when node is (or wraps) a definition."""
        spec = self.spec
        inner = node
        if node.type in spec.wrappers:
            field_name = spec.wrappers[node.type]
            inner = node.child_by_field_name(field_name) if field_name else None
            if inner is None:
                inner = next((c for c in node.named_children if c.type in spec.defs), None)
            if inner is None:
                return None
            if inner.type in spec.wrappers:  # export default @decorated ...
                found = self.definition(inner)
                return found
        kind = spec.defs.get(inner.type)
        if kind is None:
            return None
        name = self.name_of(inner)
        if not name:
            return None
        return inner, kind, name

    def name_of(self, node: Any) -> str | None:
        t = node.type
        if t in ("lexical_declaration", "variable_declaration"):
            for decl in node.named_children:
                if decl.type != "variable_declarator":
                    continue
                value = decl.child_by_field_name("value")
                if value is not None and value.type in (
                    "arrow_function", "function_expression", "function", "class", "generator_function"
                ):
                    name = decl.child_by_field_name("name")
                    return _text(name) if name is not None else None
            return None
        if t == "impl_item":
            typ = node.child_by_field_name("type")
            trait = node.child_by_field_name("trait")
            if typ is None:
                return None
            return f"{_text(trait)} for {_text(typ)}" if trait is not None else _text(typ)
        if t == "type_declaration":  # go: type X struct {...}
            spec_node = next((c for c in node.named_children if c.type in ("type_spec", "type_alias")), None)
            name = spec_node.child_by_field_name("name") if spec_node is not None else None
            return _text(name) if name is not None else None
        if t == "type_definition":  # C: typedef ... name;
            decl = node.child_by_field_name("declarator")
            return _declarator_name(decl) if decl is not None else None
        name = node.child_by_field_name("name")
        if name is not None:
            return _text(name)
        decl = node.child_by_field_name("declarator")
        if decl is not None:
            return _declarator_name(decl)
        return None

    def signature(self, node: Any, inner: Any) -> str:
        body = inner.child_by_field_name("body")
        start = node.start_byte
        end = body.start_byte if body is not None and body.start_byte > inner.start_byte else None
        raw = node.text if node.text is not None else b""
        if end is not None:
            raw = raw[: end - start]
        else:
            raw = raw.split(b"\n", 1)[0]
        sig = _WS.sub(" ", raw.decode("utf-8", "replace")).strip().rstrip("{:").strip()
        return sig[:MAX_SIGNATURE]

    # -- the walk ----------------------------------------------------------------------------
    def collect(self, node: Any, prefix: str, segs: list[_Seg]) -> None:
        for child in node.named_children:
            if child.type in self.spec.imports:
                self.record_imports(child)
            found = self.definition(child)
            if found is None:
                segs.append(_Seg(child.start_point[0], _end_row(child)))
                continue
            inner, kind, name = found
            if prefix and kind == "function":
                kind = "method"
            qual = prefix + name
            if inner.type == "method_declaration" and self.spec.name == "go":
                recv = _go_receiver_type(inner)
                qual = f"{recv}.{name}" if recv else qual
            self.symbols.append(Symbol(name, qual, kind, self.signature(child, inner),
                                       child.start_point[0] + 1, _end_row(child) + 1))
            body = inner.child_by_field_name("body") if inner.type in self.spec.containers else None
            tokens = approx_tokens(_text(child))
            if body is None or tokens <= MAX_TOKENS:
                seg = _Seg(child.start_point[0], _end_row(child), qual, kind, [qual])
                if body is not None:
                    seg.names.extend(self.member_symbols(body, qual + "."))
                segs.append(seg)
                continue
            # an oversized container: its header, then its members as chunks of their own
            members = [c for c in body.named_children]
            header_end = members[0].start_point[0] - 1 if members else body.start_point[0]
            header_end = max(header_end, child.start_point[0])
            segs.append(_Seg(child.start_point[0], header_end, qual, kind, [qual]))
            self.collect(body, qual + ".", segs)

    def member_symbols(self, body: Any, prefix: str) -> list[str]:
        names: list[str] = []
        for child in body.named_children:
            found = self.definition(child)
            if found is None:
                continue
            inner, kind, name = found
            if kind == "function":
                kind = "method"
            qual = prefix + name
            self.symbols.append(Symbol(name, qual, kind, self.signature(child, inner),
                                       child.start_point[0] + 1, _end_row(child) + 1))
            names.append(qual)
            inner_body = inner.child_by_field_name("body") if inner.type in self.spec.containers else None
            if inner_body is not None:
                names.extend(self.member_symbols(inner_body, qual + "."))
        return names

    def record_imports(self, node: Any) -> None:
        read = _IMPORT_READERS.get(self.spec.name)
        if read is not None:
            line = node.start_point[0] + 1
            self.imports.extend(Import(m, line) for m in read(node) if m)


def _python_imports(node: Any) -> list[str]:
    if node.type == "import_from_statement":
        mod = node.child_by_field_name("module_name")
        return [_text(mod)] if mod is not None else []
    if node.type == "future_import_statement":
        return ["__future__"]
    out = []
    for c in node.named_children:
        target = c.child_by_field_name("name") if c.type == "aliased_import" else c
        if target is not None and target.type == "dotted_name":
            out.append(_text(target))
    return out


def _js_imports(node: Any) -> list[str]:
    src = node.child_by_field_name("source")
    return [_text(src).strip("'\"`")] if src is not None else []


def _go_imports(node: Any) -> list[str]:
    paths = (s.child_by_field_name("path") for s in _descendants(node, "import_spec"))
    return [_text(p).strip('"`') for p in paths if p is not None]


def _rust_imports(node: Any) -> list[str]:
    arg = node.child_by_field_name("argument") or node.child_by_field_name("name")
    return [_text(arg)] if arg is not None else []


def _java_imports(node: Any) -> list[str]:
    named = [c for c in node.named_children if c.type in ("scoped_identifier", "identifier")]
    return [_text(named[0])] if named else []


def _c_imports(node: Any) -> list[str]:
    p = node.child_by_field_name("path")
    return [_text(p).strip('"<>')] if p is not None else []


# Which modules an import node names, per language (the node types that are imports are in langs.py).
_IMPORT_READERS = {"python": _python_imports, "javascript": _js_imports, "typescript": _js_imports,
                   "tsx": _js_imports, "go": _go_imports, "rust": _rust_imports, "java": _java_imports,
                   "c": _c_imports, "cpp": _c_imports}


def _end_row(node: Any) -> int:
    """The last row a node covers (a node ending at column 0 ended with the previous line's newline)."""
    row, col = node.end_point
    return row - 1 if col == 0 and row > node.start_point[0] else row


def _text(node: Any) -> str:
    raw = node.text
    return raw.decode("utf-8", "replace") if raw is not None else ""


def _declarator_name(node: Any) -> str | None:
    """The identifier inside a C/C++ declarator chain (pointer/function/qualified declarators)."""
    seen = 0
    while node is not None and seen < 16:
        seen += 1
        if node.type in ("identifier", "field_identifier", "type_identifier", "qualified_identifier",
                         "destructor_name", "operator_name", "primitive_type"):
            return _text(node)
        nxt = node.child_by_field_name("declarator")
        if nxt is None:
            nxt = next((c for c in node.named_children if c.type.endswith(("identifier", "declarator"))), None)
        node = nxt
    return None


def _descendants(node: Any, type_name: str) -> list[Any]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if n.type == type_name:
            out.append(n)
        stack.extend(n.named_children)
    return out


# -- config files (JSON, YAML, TOML) ----------------------------------------------------------------


def _analyze_config(spec: LangSpec, path: str, text: str, lines: list[str], parser: Any) -> FileAnalysis:
    """Chunks at keys/tables and key-path symbols; line windows for lockfiles, files that do not parse
    and files whose top level is not a mapping (a JSON array)."""
    # tree-sitter counts rows by "\n" only; a lone "\r" or a U+2028 would misplace every chunk after it
    same_rows = len(lines) == text.count("\n") + (0 if text.endswith("\n") else 1)
    if same_rows and not is_lockfile(path):
        try:
            src = text.encode("utf-8", "surrogatepass")
            root = parser.parse(src).root_node
            if not root.has_error or (spec.name == "json" and _only_trailing_commas(root)):
                walker = _ConfigWalker(spec.name, lines, src)
                segs = walker.walk(root)
                if segs is not None:
                    symbols = walker.kept_symbols()
                    kept = {s.qualname for s in symbols}
                    for seg in segs:
                        seg.names = [n for n in seg.names if n in kept]
                    return FileAnalysis(spec.name, _assemble(segs, lines), symbols, [])
        except Exception:  # noqa: BLE001 - a file we cannot read by its structure is still indexed
            pass
    return FileAnalysis(spec.name, line_windows(lines, 0, len(lines) - 1), [], [])


def _only_trailing_commas(root: Any) -> bool:
    """JSON whose only errors are trailing commas (tsconfig.json, VS Code settings: JSON with comments)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_missing:
            return False
        if node.type == "ERROR":
            if (node.text or b"").strip() != b",":
                return False
            continue
        stack.extend(c for c in node.children if c.has_error or c.is_missing)
    return True


_YAML_PAIRS = ("block_mapping_pair", "flow_pair")
_YAML_MAPPINGS = ("block_mapping", "flow_mapping")
_TOML_KEYS = ("bare_key", "quoted_key", "dotted_key")


class _ConfigWalker:
    """Segments of a config file at its keys, and its key paths as symbols (level = depth of the path;
    for TOML, 1 for tables and root pairs, 2 for the pairs of a table)."""

    def __init__(self, lang: str, lines: list[str], src: bytes) -> None:
        self.lang = lang
        self.lines = lines
        self.src = src
        self.candidates: list[tuple[int, Symbol]] = []
        self._cum = [0]
        for ln in lines:
            self._cum.append(self._cum[-1] + approx_tokens(ln))

    # -- helpers -------------------------------------------------------------------------------------
    def tokens(self, start: int, end: int) -> int:
        """approx_tokens of rows [start, end] as _assemble counts them."""
        end = min(end, len(self.lines) - 1)
        return self._cum[end + 1] - self._cum[start] if end >= start else 0

    def record(self, qual: str, name: str, kind: str, node: Any, level: int, end: int | None = None) -> bool:
        """Offer a symbol (ending at row `end`, else where node ends); False when it is too deep to be one."""
        if not name or level > CONFIG_SYMBOL_DEPTH:
            return False
        head = self.src[node.start_byte : min(node.end_byte, node.start_byte + 4 * MAX_SIGNATURE)]
        sig = _WS.sub(" ", head.decode("utf-8", "replace").split("\n", 1)[0]).strip().rstrip(",").strip()
        self.candidates.append((level, Symbol(name, qual, kind, sig[:MAX_SIGNATURE], node.start_point[0] + 1,
                                               (_end_row(node) if end is None else end) + 1)))
        return True

    def kept_symbols(self) -> list[Symbol]:
        """The candidates of the shallowest levels that fit in MAX_CONFIG_SYMBOLS together, in file order.
        A level that does not fit whole is left out rather than cut: a symbol is found or it is not, never
        found in the first few hundred keys of a big map only."""
        levels = sorted({lv for lv, _ in self.candidates})
        allowed: set[int] = set()
        total = 0
        for lv in levels:
            n = sum(1 for lvl, _ in self.candidates if lvl == lv)
            if total + n > MAX_CONFIG_SYMBOLS:
                break
            allowed.add(lv)
            total += n
        return [s for lvl, s in self.candidates if lvl in allowed]

    def walk(self, root: Any) -> list[_Seg] | None:
        """Segments of the file, None when its shape is not one this chunks by (line windows then)."""
        segs: list[_Seg] = []
        if self.lang == "json":
            top = [c for c in root.named_children if c.type != "comment"]
            if len(top) != 1 or top[0].type != "object":
                return None
            self.members(top[0], "", 1, segs)
        elif self.lang == "yaml":
            mapped = False
            for doc in root.named_children:
                if doc.type != "document":
                    continue  # comments between documents: gaps, they join the next segment
                mapping = _yaml_mapping(doc)
                if mapping is None:
                    segs.append(_Seg(doc.start_point[0], _end_row(doc)))
                    continue
                mapped = True
                self.members(mapping, "", 1, segs)
            if not mapped:
                return None
        elif self.lang == "toml":
            self.toml_document(root, segs)
        else:
            return None
        return segs

    def split_or_keep(self, node: Any, value_map: Any | None, qual: str, level: int, segs: list[_Seg]) -> None:
        """One segment for node (a pair), or, when it is too big and its value is a mapping, a header
        segment and its members' segments."""
        start, end = node.start_point[0], _end_row(node)
        if value_map is not None and self.tokens(start, end) > MAX_TOKENS:
            first = next((c for c in value_map.named_children if c.type != "comment"), None)
            if first is not None:
                header_end = max(first.start_point[0] - 1, start)
                segs.append(_Seg(start, header_end, qual, "key", [qual]))
                self.members(value_map, qual + ".", level + 1, segs)
                return
        names = [qual]
        if value_map is not None:
            names.extend(self.nested(value_map, qual + ".", level + 1))
        segs.append(_Seg(start, end, qual, "key", names))

    def nested(self, mapping: Any, prefix: str, level: int) -> list[str]:
        """Record the key paths inside a mapping down to CONFIG_SYMBOL_DEPTH; their qualnames."""
        if level > CONFIG_SYMBOL_DEPTH:
            return []
        out: list[str] = []
        for pair, key, value_map in self.pairs(mapping):
            if key is None:
                continue
            if self.record(prefix + key, key, "key", pair, level):
                out.append(prefix + key)
            if value_map is not None:
                out.extend(self.nested(value_map, prefix + key + ".", level + 1))
        return out

    def pairs(self, mapping: Any) -> list[tuple[Any, str | None, Any | None]]:
        """(pair node, key or None, the value when it is a mapping) of a JSON object or YAML mapping."""
        out = []
        for pair in mapping.named_children:
            if self.lang == "json":
                if pair.type != "pair":
                    continue
                key = _json_key(pair.child_by_field_name("key"))
                value = pair.child_by_field_name("value")
                out.append((pair, key, value if value is not None and value.type == "object" else None))
            else:
                if pair.type not in _YAML_PAIRS:
                    continue
                key = _yaml_key(pair.child_by_field_name("key"))
                value = pair.child_by_field_name("value")
                out.append((pair, key, _yaml_mapping(value) if value is not None else None))
        return out

    # -- JSON / YAML ---------------------------------------------------------------------------------
    def members(self, mapping: Any, prefix: str, level: int, segs: list[_Seg]) -> None:
        for pair, key, value_map in self.pairs(mapping):
            if key is None:  # a complex YAML key: a segment without a name
                segs.append(_Seg(pair.start_point[0], _end_row(pair)))
                continue
            qual = prefix + key
            self.record(qual, key, "key", pair, level)
            self.split_or_keep(pair, value_map, qual, level, segs)

    # -- TOML ----------------------------------------------------------------------------------------
    def toml_document(self, root: Any, segs: list[_Seg]) -> None:
        for child in root.named_children:
            if child.type == "pair":
                key = _toml_key(child.named_children[0]) if child.named_children else ""
                if key:
                    self.record(key, _last_part(child.named_children[0]), "key", child, 1)
                segs.append(_Seg(child.start_point[0], _end_row(child), key or None, "key" if key else None,
                                 [key] if key else []))
            elif child.type in ("table", "table_array_element"):
                self.toml_table(child, segs)

    def toml_table(self, table: Any, segs: list[_Seg]) -> None:
        key_node = next((c for c in table.named_children if c.type in _TOML_KEYS), None)
        name = _toml_key(key_node) if key_node is not None else ""
        pairs = [c for c in table.named_children if c.type == "pair"]
        start = table.start_point[0]
        # the table ends at its last pair: comments after it (above the next header) go with the next table
        end = max([start, *(_end_row(p) for p in pairs)])
        if not name:
            segs.append(_Seg(start, end))
            return
        self.record(name, _last_part(key_node), "table", table, 1, end)
        names = [name]
        pair_names: list[str | None] = []
        for p in pairs:
            key = _toml_key(p.named_children[0]) if p.named_children else ""
            qual = f"{name}.{key}" if key else None
            # the keys of an array-of-tables element would be one symbol per list element
            if qual and table.type == "table" and self.record(qual, _last_part(p.named_children[0]), "key", p, 2):
                pair_names.append(qual)
            else:
                pair_names.append(None)
        if self.tokens(start, end) <= MAX_TOKENS or not pairs:
            names.extend(n for n in pair_names if n)
            segs.append(_Seg(start, end, name, "table", names))
            return
        header_end = max(pairs[0].start_point[0] - 1, start)
        segs.append(_Seg(start, header_end, name, "table", names))
        for p, qual in zip(pairs, pair_names, strict=True):
            segs.append(_Seg(p.start_point[0], _end_row(p), name, "table", [qual] if qual else [name]))


def _yaml_mapping(node: Any) -> Any | None:
    """The mapping a YAML document/node holds (past its tag and anchor), None for scalars and sequences."""
    for c in node.named_children:
        if c.type in _YAML_MAPPINGS:
            return c
        if c.type in ("block_node", "flow_node"):
            return _yaml_mapping(c)
    return None


def _yaml_key(node: Any | None) -> str | None:
    """A scalar YAML key's text; None for complex keys (`? [a, b]`) and the merge key `<<`."""
    if node is None:
        return None
    scalar = node
    while scalar.type in ("flow_node", "block_node"):
        inner = [c for c in scalar.named_children if c.type not in ("tag", "anchor")]
        if len(inner) != 1:
            return None
        scalar = inner[0]
    raw = _text(scalar)
    if scalar.type == "plain_scalar":
        key = raw.strip()
    elif scalar.type == "double_quote_scalar":
        try:
            key = json.loads(raw)
        except ValueError:
            key = raw[1:-1]
    elif scalar.type == "single_quote_scalar":
        key = raw[1:-1].replace("''", "'")
    else:
        return None
    return key if key and key != "<<" and "\n" not in key else None


def _json_key(node: Any | None) -> str | None:
    if node is None:
        return None
    raw = _text(node)
    try:
        key = json.loads(raw)
    except ValueError:
        key = raw.strip('"')
    return key if isinstance(key, str) and key and "\n" not in key else None


def _toml_key(node: Any) -> str:
    """`tool.ruff`, `"a.b".c` -> `a.b.c` (quotes dropped), `site."google.com"` -> `site.google.com`."""
    if node.type == "dotted_key":
        return ".".join(p for p in (_toml_key(c) for c in node.named_children if c.type in _TOML_KEYS) if p)
    if node.type == "quoted_key":
        raw = _text(node)
        if raw.startswith('"'):
            try:
                return str(json.loads(raw))
            except ValueError:
                pass
        return raw[1:-1]
    if node.type == "bare_key":
        return _text(node)
    return ""


def _last_part(node: Any) -> str:
    """The last key of a (dotted) TOML key: the symbol's short name."""
    while node.type == "dotted_key" and node.named_children:
        node = node.named_children[-1]
    return _toml_key(node)
