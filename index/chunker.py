"""Split a source file into retrieval chunks at syntactic boundaries; record symbols and imports.

Definitions (functions, classes, methods, ...) start chunks; small neighbours merge until a chunk
reaches MIN_TOKENS; anything over MAX_TOKENS is split (a class into its members, a long function or
statement into line windows). Files without a grammar are chunked by line windows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .langs import LangSpec, parser_for, spec_for
from .tokens import approx_tokens

MIN_TOKENS = 100
MAX_TOKENS = 250
MAX_SIGNATURE = 240


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
            out.extend(line_windows(lines, cur.start, cur.end, cur.symbol, cur.kind))
        else:
            c = _chunk(lines, cur.start, cur.end, cur.symbol, cur.kind, cur.names)
            if c.text.strip():
                out.append(c)
        cur, cur_tokens = None, 0

    for seg in sorted(segs, key=lambda s: (s.start, s.end)):
        if seg.end <= prev_end:
            continue  # shares lines with what came before
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
        line = node.start_point[0] + 1
        lang = self.spec.name
        mods: list[str] = []
        if lang == "python":
            if node.type == "import_from_statement":
                mod = node.child_by_field_name("module_name")
                if mod is not None:
                    mods.append(_text(mod))
            elif node.type == "future_import_statement":
                mods.append("__future__")
            else:
                for c in node.named_children:
                    target = c.child_by_field_name("name") if c.type == "aliased_import" else c
                    if target is not None and target.type == "dotted_name":
                        mods.append(_text(target))
        elif lang in ("javascript", "typescript", "tsx"):
            src = node.child_by_field_name("source")
            if src is not None:
                mods.append(_text(src).strip("'\"`"))
        elif lang == "go":
            for spec_node in _descendants(node, "import_spec"):
                p = spec_node.child_by_field_name("path")
                if p is not None:
                    mods.append(_text(p).strip('"`'))
        elif lang == "rust":
            arg = node.child_by_field_name("argument") or node.child_by_field_name("name")
            if arg is not None:
                mods.append(_text(arg))
        elif lang == "java":
            named = [c for c in node.named_children if c.type in ("scoped_identifier", "identifier")]
            if named:
                mods.append(_text(named[0]))
        elif lang in ("c", "cpp"):
            p = node.child_by_field_name("path")
            if p is not None:
                mods.append(_text(p).strip('"<>'))
        self.imports.extend(Import(m, line) for m in mods if m)


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
