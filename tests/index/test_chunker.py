from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from index.chunker import MAX_TOKENS, analyze, line_windows
from index.tokens import approx_tokens, fts_query, identifier_tokens, query_terms, split_identifier


def test_split_identifier_handles_camel_snake_acronyms_digits() -> None:
    assert split_identifier("getUserName") == ["get", "user", "name"]
    assert split_identifier("get_user_name") == ["get", "user", "name"]
    assert split_identifier("HTTPServerError") == ["http", "server", "error"]
    assert split_identifier("load_json2") == ["load", "json", "2"]


def test_identifier_tokens_keep_whole_identifier_and_parts() -> None:
    toks = identifier_tokens("parseHttpHeader(x) the")
    assert toks[:4] == ["parsehttpheader", "parse", "http", "header"]
    assert "the" not in toks  # stopword


def test_query_terms_are_distinct_and_quoted_safely() -> None:
    terms = query_terms('foo foo "bar" OR baz_qux')
    assert terms == ["foo", "bar", "baz_qux", "baz", "qux"]
    assert fts_query(['a"b']) == '"a""b"'


PY = textwrap.dedent(
    '''
    """Module doc."""
    import os
    from collections import OrderedDict
    from .sibling import thing


    def top_level(a: int, b: str = "x") -> bool:
        """Say whether a is positive."""
        return a > 0


    class Widget(Base):
        """A widget."""

        size = 3

        def render(self, console) -> str:
            return "w" * self.size

        @property
        def area(self) -> int:
            return self.size ** 2
    '''
)


def test_python_symbols_signatures_and_imports() -> None:
    a = analyze("pkg/mod.py", PY)
    assert a.lang == "python"
    by_q = {s.qualname: s for s in a.symbols}
    assert set(by_q) == {"top_level", "Widget", "Widget.render", "Widget.area"}
    assert by_q["top_level"].signature == 'def top_level(a: int, b: str = "x") -> bool'
    assert by_q["top_level"].kind == "function"
    assert by_q["Widget.render"].kind == "method"
    assert by_q["Widget.area"].signature.startswith("@property def area(self)")
    assert by_q["Widget"].line == PY.splitlines().index("class Widget(Base):") + 1
    assert [i.module for i in a.imports] == ["os", "collections", ".sibling"]
    # small file: merged chunks still name every definition they hold
    names = [n for c in a.chunks for n in c.symbols]
    assert {"top_level", "Widget", "Widget.render", "Widget.area"} <= set(names)


def _big_class(n_methods: int) -> str:
    methods = "\n".join(
        f"    def method_{i}(self, value):\n"
        + "".join(f"        value = value + {j} * self.factor_{i}\n" for j in range(12))
        + "        return value\n"
        for i in range(n_methods)
    )
    return f"import math\n\n\nclass Big:\n    factor = 2\n\n{methods}\n\ndef after():\n    return 1\n"


def test_oversized_class_is_split_at_method_boundaries_and_covers_the_file() -> None:
    src = _big_class(12)
    lines = src.splitlines()
    a = analyze("big.py", src)
    assert len(a.chunks) > 3
    # ordered, no overlap, every non-blank line covered
    covered = [r for c in a.chunks for r in range(c.start_line, c.end_line + 1)]
    assert covered == sorted(set(covered))
    assert {i + 1 for i, ln in enumerate(lines) if ln.strip()} <= set(covered)
    for c in a.chunks:
        assert approx_tokens(c.text) <= MAX_TOKENS
    # every chunk after the header starts at a method (or the trailing function) boundary
    starts = {c.start_line for c in a.chunks[1:]}
    def_lines = {i + 1 for i, ln in enumerate(lines) if ln.lstrip().startswith("def ")}
    assert starts <= def_lines
    assert any(c.symbol and c.symbol.startswith("Big.method_") for c in a.chunks)


def test_long_function_falls_back_to_line_windows_with_its_symbol() -> None:
    body = "".join(f"    total = total + compute_value({i}, other_argument, third_argument)\n" for i in range(120))
    src = f"def huge(total):\n{body}    return total\n"
    a = analyze("h.py", src)
    assert len(a.chunks) > 2
    assert all(c.symbol == "huge" for c in a.chunks)
    assert all(approx_tokens(c.text) <= MAX_TOKENS for c in a.chunks)


def test_unknown_extension_uses_line_windows() -> None:
    text = "\n".join(f"line {i} some words here" for i in range(200))
    a = analyze("notes.txt", text)
    assert a.lang is None and a.symbols == [] and len(a.chunks) > 1
    assert a.chunks[0].start_line == 1 and a.chunks[-1].end_line == 200


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="ab cd_(){}\t", max_size=60), min_size=1, max_size=300))
def test_line_windows_cover_every_nonblank_line_once(lines: list[str]) -> None:
    chunks = line_windows(lines, 0, len(lines) - 1)
    covered = [r for c in chunks for r in range(c.start_line, c.end_line + 1)]
    assert covered == sorted(set(covered))
    nonblank = {i + 1 for i, ln in enumerate(lines) if ln.strip()}
    assert nonblank <= set(covered)


def test_other_languages_symbols_and_imports() -> None:
    ts = analyze("a.ts", 'import { x } from "./x";\nexport class G { greet(n: number): string { return ""; } }\n'
                         "export const add = (a: number) => a;\ninterface Opts { a: number }\n")
    assert {"G", "G.greet", "add", "Opts"} <= {s.qualname for s in ts.symbols}
    assert [i.module for i in ts.imports] == ["./x"]
    go = analyze("a.go", 'package m\nimport (\n "fmt"\n s "strings"\n)\ntype Srv struct{}\n'
                         "func (v *Srv) Start(p int) error { return nil }\n"
                         "func (l List[T]) Len() int { return 0 }\nfunc Free() {}\n")
    assert {"Srv", "Start"} <= {s.name for s in go.symbols}
    # methods are qualified by their receiver's base type (pointer and type parameters stripped)
    assert {"Srv.Start", "List.Len", "Free"} <= {s.qualname for s in go.symbols}
    assert sorted(i.module for i in go.imports) == ["fmt", "strings"]
    rs = analyze("a.rs", "use std::io;\nstruct C;\nimpl C { fn get(&self) -> u8 { 0 } }\n")
    assert {"C", "C.get"} <= {s.qualname for s in rs.symbols}
    assert [i.module for i in rs.imports] == ["std::io"]
    java = analyze("A.java", "import java.util.List;\nclass A { int f() { return 1; } }\n")
    assert {"A", "A.f"} <= {s.qualname for s in java.symbols}
    assert [i.module for i in java.imports] == ["java.util.List"]
    cpp = analyze("a.cpp", '#include <vector>\n#include "x.h"\nint Foo::bar(int x) { return x; }\n')
    assert "Foo::bar" in {s.name for s in cpp.symbols}
    assert [i.module for i in cpp.imports] == ["vector", "x.h"]
    c = analyze("a.c", "static int *make(void) { return 0; }\n")
    assert [s.name for s in c.symbols] == ["make"]
    sh = analyze("a.sh", "build() { echo hi; }\n")
    assert [s.name for s in sh.symbols] == ["build"]


def test_code_identifiers_only_for_code_spellings() -> None:
    from index.tokens import code_identifiers

    assert code_identifiers("load_config") == ["load_config"]
    assert code_identifiers("render") == ["render"]  # a lone word is a name
    assert code_identifiers("HttpClient.send") == ["send"]
    assert code_identifiers("why does getUserName() fail") == ["getUserName"]
    assert code_identifiers("Return the width of the console") == []
