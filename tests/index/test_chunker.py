from __future__ import annotations

import json
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostline.index.chunker import CONFIG_SYMBOL_DEPTH, MAX_CONFIG_SYMBOLS, MAX_TOKENS, analyze, line_windows
from ghostline.index.tokens import approx_tokens, fts_query, identifier_tokens, query_terms, split_identifier


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
    from ghostline.index.tokens import code_identifiers

    assert code_identifiers("load_config") == ["load_config"]
    assert code_identifiers("render") == ["render"]  # a lone word is a name
    assert code_identifiers("HttpClient.send") == ["send"]
    assert code_identifiers("why does getUserName() fail") == ["getUserName"]
    assert code_identifiers("Return the width of the console") == []


# -- config files: JSON, YAML, TOML chunked at keys -------------------------------------------------


def _assert_well_formed(text: str, chunks) -> None:
    """Ordered, no overlap, every non-blank line covered, nothing multi-line over MAX_TOKENS."""
    lines = text.splitlines()
    covered = [r for c in chunks for r in range(c.start_line, c.end_line + 1)]
    assert covered == sorted(set(covered))
    assert {i + 1 for i, ln in enumerate(lines) if ln.strip()} <= set(covered)
    for c in chunks:
        assert c.start_line == c.end_line or approx_tokens(c.text) <= MAX_TOKENS
        assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line])


def _line_of(text: str, needle: str) -> int:
    return next(i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln)


PACKAGE_JSON = json.dumps({
    "name": "webapp",
    "version": "1.2.0",
    "scripts": {"test": "vitest run", "build": "tsc -p .", "lint": "eslint src"},
    "dependencies": {f"dep-{i}": f"^{i}.0.0" for i in range(6)},
    "compilerOptions": {
        "strict": True,
        "paths": {"@app/*": ["src/app/*"], "@lib/*": ["src/lib/*"]},
        "plugins": [{"name": "p1", "options": {"deep": {"deeper": 1}}}],
    },
    "eslintConfig": {
        "rules": {f"rule-number-{i}": ["error", {"option": i, "another": "value"}] for i in range(40)},
        "env": {"browser": True},
    },
}, indent=2) + "\n"


def test_json_chunks_at_members_with_key_path_symbols() -> None:
    a = analyze("web/package.json", PACKAGE_JSON)
    assert a.lang == "json" and a.imports == []
    by_q = {s.qualname: s for s in a.symbols}
    assert {"name", "scripts", "scripts.test", "compilerOptions.paths", "compilerOptions.strict",
            "eslintConfig.rules", "eslintConfig.env.browser"} <= set(by_q)
    assert {s.kind for s in a.symbols} == {"key"}
    s = by_q["scripts.test"]
    assert s.name == "test" and s.signature == '"test": "vitest run"'
    assert s.line == _line_of(PACKAGE_JSON, '"test"')
    assert by_q["compilerOptions"].end_line > by_q["compilerOptions"].line
    # no symbol for list elements or below the depth limit
    assert all(q.count(".") < CONFIG_SYMBOL_DEPTH for q in by_q)
    assert not any(q.startswith("compilerOptions.plugins.") or "@app/*." in q for q in by_q)
    _assert_well_formed(PACKAGE_JSON, a.chunks)
    # the oversized `eslintConfig.rules` is split at its own members, each chunk named by its key path
    rule_chunks = [c for c in a.chunks if (c.symbol or "").startswith("eslintConfig.rules.rule-number-")]
    assert len(rule_chunks) >= 2
    for c in rule_chunks:
        assert c.text.lstrip().startswith(f'"{c.symbol.rsplit(".", 1)[1]}"')
    # chunks name the key paths they hold (the FTS `names` column)
    scripts_chunk = next(c for c in a.chunks if c.start_line <= by_q["scripts.test"].line <= c.end_line)
    assert "scripts.test" in scripts_chunk.symbols


def test_json_with_comments_and_trailing_commas_is_still_structural() -> None:
    src = ('{\n  // TypeScript settings\n  "compilerOptions": {\n    "target": "es2022", /* modern */\n'
           '    "paths": {"@/*": ["./src/*"],},\n  },\n  "include": ["src"],\n}\n')
    a = analyze("tsconfig.json", src)
    assert {"compilerOptions", "compilerOptions.target", "compilerOptions.paths", "include"} <= {
        s.qualname for s in a.symbols}
    _assert_well_formed(src, a.chunks)


@pytest.mark.parametrize("path, src", [
    ("data.json", json.dumps([{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(60)], indent=2)),
    ("broken.json", '{\n  "a": 1,\n  "b": [1, 2\n' + "".join(f'  "k{i}": "v{i}",\n' for i in range(80))),
    ("broken.yaml", "a: 1\n b: 2\n  - c\nkey: [unclosed\n" + "".join(f"k{i}: v{i}\n" for i in range(80))),
    ("broken.toml", "[tool\nx = \n" + "".join(f"k{i} = {i}\n" for i in range(80))),
    ("sep.json", '{\n  "a": "line\u2028separator",\n'  # splitlines() and tree-sitter count rows apart
     + "".join(f'  "k{i}": "v{i}",\n' for i in range(80)) + '  "z": 0\n}\n'),
    ("list.yaml", "".join(f"- name: step {i}\n  run: make target-{i}\n" for i in range(80))),
    ("frontend/package-lock.json", json.dumps(
        {"name": "x", "packages": {f"node_modules/p{i}": {"version": "1.0.0"} for i in range(50)}}, indent=2)),
    ("pnpm-lock.yaml", "lockfileVersion: '9.0'\npackages:\n" + "".join(f"  p{i}@1.0.0:\n    resolution: x\n"
                                                                     for i in range(50))),
])
def test_config_files_that_are_not_mappings_malformed_or_lockfiles_get_line_windows(path: str, src: str) -> None:
    a = analyze(path, src)
    assert a.symbols == [] and a.chunks
    assert [(c.start_line, c.end_line) for c in a.chunks] == [
        (c.start_line, c.end_line) for c in line_windows(src.splitlines(), 0, len(src.splitlines()) - 1)]
    _assert_well_formed(src, a.chunks)


K8S = """\
# the web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
    - port: 80
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  replicas: 5
"""

WORKFLOW = "name: ci\non:\n  push:\n    branches: [main]\njobs:\n" + "".join(
    f"  job{j}:\n    runs-on: ubuntu-latest\n    env:\n      LEVEL: {j}\n    steps:\n"
    + "".join(f"      - name: step {i} of job {j}\n        run: make target-{i} OPTION={j}\n" for i in range(8))
    for j in range(6)
)


def test_yaml_multi_document_pairs_are_symbols_in_every_document() -> None:
    a = analyze("deploy/k8s.yaml", K8S)
    assert a.lang == "yaml"
    replicas = [s for s in a.symbols if s.qualname == "spec.replicas"]
    assert [s.line for s in replicas] == [7, 27] and all(s.name == "replicas" for s in replicas)
    assert replicas[0].signature == "replicas: 3"
    assert sum(1 for s in a.symbols if s.qualname == "kind") == 3
    assert "spec.template.spec" in {s.qualname for s in a.symbols}
    # depth-limited: nothing deeper than three keys, nothing inside the containers list
    assert all(s.qualname.count(".") < CONFIG_SYMBOL_DEPTH for s in a.symbols)
    _assert_well_formed(K8S, a.chunks)
    assert a.chunks[0].start_line == 1  # the leading comment goes with the first key


def test_yaml_oversized_pairs_split_at_nested_pairs_and_lists_stay_whole() -> None:
    a = analyze(".github/workflows/ci.yml", WORKFLOW)
    quals = {s.qualname for s in a.symbols}
    assert {"name", "on", "on.push", "on.push.branches", "jobs", "jobs.job0", "jobs.job0.steps",
            "jobs.job5.runs-on", "jobs.job3.env"} <= quals
    assert "jobs.job0.env.LEVEL" not in quals  # depth 4
    assert not any(s.name.startswith("step ") or "steps." in s.qualname for s in a.symbols)  # no list items
    _assert_well_formed(WORKFLOW, a.chunks)
    # the big `jobs` map is split per job: a chunk starts at every job's line
    starts = {c.start_line for c in a.chunks}
    assert {_line_of(WORKFLOW, f"  job{j}:") for j in range(1, 6)} <= starts
    assert any(c.symbol and c.symbol.startswith("jobs.job") for c in a.chunks)


PYPROJECT = """\
title = "demo"
tool.black.line-length = 88

[project]
name = "demo"
dependencies = [
""" + "".join(f'  "package-number-{i}>={i}.0,<{i + 1}.0",\n' for i in range(40)) + """]

# ruff: keep in step with CI
[tool.ruff]
line-length = 110
target-version = "py311"

[tool.ruff.lint]
select = ["E", "F"]

[[bin]]
name = "one"
path = "src/one.rs"

[[bin]]
name = "two"
"""


def test_toml_chunks_at_tables_with_table_symbols() -> None:
    a = analyze("pyproject.toml", PYPROJECT)
    assert a.lang == "toml"
    by_q = {s.qualname: s for s in a.symbols}
    assert by_q["tool.ruff"].kind == "table" and by_q["tool.ruff"].name == "ruff"
    assert by_q["tool.ruff"].signature == "[tool.ruff]"
    assert by_q["tool.ruff"].line == _line_of(PYPROJECT, "[tool.ruff]")
    assert by_q["tool.ruff"].end_line == _line_of(PYPROJECT, "target-version")
    assert by_q["tool.ruff.line-length"].kind == "key" and by_q["tool.ruff.line-length"].name == "line-length"
    assert by_q["tool.black.line-length"].kind == "key"  # a dotted key at the root keeps its full path
    assert by_q["title"].kind == "key" and by_q["tool.ruff.lint"].kind == "table"
    assert [s.line for s in a.symbols if s.qualname == "bin"] == [
        i + 1 for i, ln in enumerate(PYPROJECT.splitlines()) if ln == "[[bin]]"]
    assert not any(q.startswith("bin.") for q in by_q)  # keys of array-of-tables elements: list elements
    _assert_well_formed(PYPROJECT, a.chunks)
    # the oversized [project] is line-windowed under its own name; the comment above [tool.ruff] goes with it
    assert all(approx_tokens(c.text) <= MAX_TOKENS for c in a.chunks)
    proj = [c for c in a.chunks if c.symbol == "project"]
    assert len(proj) >= 2
    ruff_chunk = next(c for c in a.chunks if c.start_line <= by_q["tool.ruff"].line <= c.end_line)
    assert ruff_chunk.start_line <= _line_of(PYPROJECT, "# ruff:")
    assert {"tool.ruff", "tool.ruff.line-length"} <= set(ruff_chunk.symbols)


def test_big_config_files_do_not_flood_the_symbols_table() -> None:
    spec = {"openapi": "3.0.0", "info": {"title": "api", "version": "1"}, "paths": {
        f"/things/{i}": {"get": {"summary": f"get thing {i}", "responses": {"200": {"description": "ok"}}}}
        for i in range(250)}}
    src = json.dumps(spec, indent=2)
    a = analyze("openapi.json", src)
    assert len(a.symbols) <= MAX_CONFIG_SYMBOLS
    quals = {s.qualname for s in a.symbols}
    assert {"openapi", "info", "paths", "info.title"} <= quals
    assert "paths./things/249" in quals
    # the third level (250 paths x get) does not fit: left out whole, never cut part-way
    assert not any(q.count(".") == 2 for q in quals)
    _assert_well_formed(src, a.chunks)
    flat = json.dumps({f"key_{i}": i for i in range(MAX_CONFIG_SYMBOLS + 1)}, indent=0)
    assert analyze("big.json", flat).symbols == []


def _yaml_dump(value: dict, indent: int = 0) -> str:
    out = []
    for k, v in value.items():
        if isinstance(v, dict) and v:
            out.append(" " * indent + f"{k}:\n" + _yaml_dump(v, indent + 2))
        elif isinstance(v, list):
            out.append(" " * indent + f"{k}:\n" + "".join(" " * indent + f"  - {x}\n" for x in v))
        else:
            out.append(" " * indent + f"{k}: {json.dumps(v) if isinstance(v, dict) else v}\n")
    return "".join(out)


_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
_CONFIG = st.recursive(
    st.integers(0, 10**6) | st.lists(st.integers(0, 9999), max_size=8),
    lambda inner: st.dictionaries(_KEYS, inner, min_size=1, max_size=12),
    max_leaves=120,
).filter(lambda v: isinstance(v, dict))


@settings(max_examples=25, deadline=None)
@given(_CONFIG, st.booleans())
def test_structured_config_chunks_cover_every_line_within_size(value: dict, as_yaml: bool) -> None:
    src = _yaml_dump(value) if as_yaml else json.dumps(value, indent=2)
    a = analyze("gen.yaml" if as_yaml else "gen.json", src)
    _assert_well_formed(src, a.chunks)
    assert set(value) <= {s.qualname for s in a.symbols} or len(a.symbols) <= MAX_CONFIG_SYMBOLS
    assert all(c.symbol is None or c.symbol.split(".")[0] in value for c in a.chunks)


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet='{}[]:,"=#-\n ab1.\t\'', max_size=300), st.sampled_from(["x.json", "x.yaml", "x.toml"]))
def test_any_config_text_is_indexed_without_raising(src: str, path: str) -> None:
    a = analyze(path, src)
    lines = src.splitlines()
    covered = {r for c in a.chunks for r in range(c.start_line, c.end_line + 1)}
    assert {i + 1 for i, ln in enumerate(lines) if ln.strip()} <= covered


def test_config_key_paths_are_found_through_the_index(tmp_path) -> None:
    from ghostline.index import RepoIndex

    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "k8s.yaml").write_text(K8S)
    (tmp_path / "app.py").write_text("def line_length(text):\n    return len(text)\n")
    idx = RepoIndex.open(tmp_path, embeddings="off")
    try:
        idx.refresh()
        hits = idx.find_symbol("tool.ruff")
        assert [(h.path, h.kind, h.qualname) for h in hits] == [("pyproject.toml", "table", "tool.ruff")]
        assert [(h.path, h.line) for h in idx.find_symbol("spec.replicas")] == [("deploy/k8s.yaml", 7),
                                                                                ("deploy/k8s.yaml", 27)]
        top = idx.search("ruff line length", k=3)[0]
        assert top.path == "pyproject.toml"
        assert top.start_line <= _line_of(PYPROJECT, "line-length = 110") <= top.end_line
    finally:
        idx.close()
