"""Each rung of the ladder, ambiguity, hints, failure messages, the syntax guard."""

import pytest

from ghostline.apply import apply_blocks, apply_edit
from ghostline.apply.core import Block

PY = '''import os


class Greeter:
    def __init__(self, name):
        self.name = name

    def greet(self, loud=False):
        msg = "hello, " + self.name
        if loud:
            msg = msg.upper()
        return msg


def main():
    g = Greeter("world")
    print(g.greet(loud=True))
    return 0
'''


@pytest.fixture
def py(tmp_path):
    p = tmp_path / "greeter.py"
    p.write_text(PY)
    return p


def edit(p, old, new, **kw):
    before = p.read_bytes()
    r = apply_edit(p, old, new, **kw)
    if not r.applied:
        assert p.read_bytes() == before
    return r


def test_exact(py):
    r = edit(py, '        msg = "hello, " + self.name\n', '        msg = "hi, " + self.name\n')
    assert r.applied and r.rung == "exact" and r.line == 9 and not r.fuzzy
    assert '"hi, "' in py.read_text()
    assert r.diff.startswith("--- a/") and '-        msg = "hello, " + self.name' in r.diff


def test_exact_ambiguous_lists_candidates_and_hint_resolves(tmp_path):
    p = tmp_path / "a.py"
    p.write_text("def a():\n    return 1\n\n\ndef b():\n    return 1\n")
    r = edit(p, "    return 1\n", "    return 2\n")
    assert not r.applied and r.rung == "ambiguous" and r.candidates == [2, 6]
    assert "lines 2, 6" in r.error
    r = edit(p, "    return 1\n", "    return 2\n", line_hint=5)
    assert r.applied and r.line == 6
    assert p.read_text() == "def a():\n    return 1\n\n\ndef b():\n    return 2\n"


def test_replace_all_is_literal(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("x = 1\ny = x + x\n")
    r = edit(p, "x", r"\1$0\g<0>", replace_all=True)
    assert r.applied
    assert p.read_text() == "\\1$0\\g<0> = 1\ny = \\1$0\\g<0> + \\1$0\\g<0>\n"


def test_trailing_whitespace(py):
    r = edit(py, "    def __init__(self, name):   \n        self.name = name \n",
             "    def __init__(self, name):\n        self.name = name.strip()\n")
    assert r.applied and r.rung == "trailing-whitespace"
    assert "self.name = name.strip()\n" in py.read_text()


def test_indentation_relative_reindents_with_file_style(py):
    # quoted at column 0, replacement also at column 0
    r = edit(py, "if loud:\n    msg = msg.upper()\n", "if loud:\n    msg = msg.upper() + '!'\n")
    assert r.applied and r.rung == "indentation"
    assert "        if loud:\n            msg = msg.upper() + '!'\n" in py.read_text()


def test_indentation_tabs_in_file(tmp_path):
    p = tmp_path / "t.go"
    p.write_text("package main\n\nfunc f() {\n\tif x {\n\t\ty()\n\t}\n}\n")
    r = edit(p, "    if x {\n        y()\n    }\n", "    if x {\n        y()\n        z()\n    }\n")
    assert r.applied and r.rung == "indentation"
    assert p.read_text() == "package main\n\nfunc f() {\n\tif x {\n\t\ty()\n\t\tz()\n\t}\n}\n"


def test_blank_lines_trimmed(py):
    r = edit(py, "\n\n    def greet(self, loud=False):\n        msg = \"hello, \" + self.name\n\n\n",
             "\n\n    def greet(self, loud=True):\n        msg = \"hello, \" + self.name\n\n\n")
    assert r.applied and r.rung == "blank-lines"
    assert "def greet(self, loud=True):" in py.read_text()
    assert py.read_text().count("\n") == PY.count("\n")


def test_unicode_lookalikes(py):
    r = edit(py, "    g = Greeter(\u201cworld\u201d)\n", "    g = Greeter(\"there\")\n")
    assert r.applied and r.rung == "unicode"
    assert 'Greeter("there")' in py.read_text()
    r = edit(py, "def\u00a0main():\n    g = Greeter(\"there\")  \n", "def main():\n    g = Greeter(\"you\")\n")
    assert r.applied and r.rung == "unicode"


def test_unchanged_context_keeps_file_bytes(py):
    # search text uses curly quotes everywhere, the replacement copies them on the context line
    r = edit(py, "def main():\n    g = Greeter(\u201cworld\u201d)\n    print(g.greet(loud=True))\n",
             "def main():\n    g = Greeter(\u201cworld\u201d)\n    print(g.greet())\n")
    assert r.applied
    assert '    g = Greeter("world")\n    print(g.greet())\n' in py.read_text()


def test_elision(py):
    r = edit(py, "    def greet(self, loud=False):\n    ...\n        return msg\n",
             "    def greet(self, loud=False):\n    ...\n        return msg + '.'\n")
    assert r.applied and r.rung == "elision"
    text = py.read_text()
    assert "        return msg + '.'\n" in text and "msg = msg.upper()" in text


def test_elision_mismatched_markers_refused(py):
    r = edit(py, "    def greet(self, loud=False):\n        ...\n        return msg\n",
             "    def greet(self, loud=False):\n        return msg\n")
    assert not r.applied and "'...'" in r.error


def test_fuzzy_typo_applies_flagged(py):
    r = edit(py, "    def greet(self, lod=False):\n        msg = \"helo, \" + self.name\n        if loud:\n",
             "    def greet(self, loud=False):\n        msg = \"hey, \" + self.name\n        if loud:\n")
    assert r.applied and r.rung == "fuzzy" and r.fuzzy and r.similarity > 0.9
    assert 'msg = "hey, " + self.name' in py.read_text()


def test_fuzzy_never_deletes_or_invents_lines(py):
    # a line missing from the search text: applying would delete it
    r = edit(py, "    def greet(self, loud=False):\n        if loud:\n            msg = msg.upper()\n",
             "    def greet(self, loud=False):\n        if loud:\n            msg = msg.lower()\n")
    assert not r.applied and r.rung == "not-found"
    # an invented line
    r = edit(py, "def main():\n    g = Greeter(\"world\")\n    g.configure(verbose=True)\n    print(g.greet(loud=True))\n",
             "def main():\n    g = Greeter(\"world\")\n    g.configure(verbose=False)\n    print(g.greet(loud=True))\n")
    assert not r.applied


def test_fuzzy_refuses_when_two_places_look_alike(tmp_path):
    p = tmp_path / "t.py"
    block = "def test_{n}():\n    value = compute_something({n})\n    assert value == expected_{n}\n\n\n"
    p.write_text(block.format(n="aa") + block.format(n="ab"))
    r = edit(p, "def test_ac():\n    value = compute_something(ac)\n    assert value == expected_ac\n",
             "def test_ac():\n    value = compute(ac)\n    assert value == expected_ac\n")
    assert not r.applied


def test_not_found_shows_closest_region(py):
    r = edit(py, "    def greet(self, quiet=True):\n        message = 'bonjour ' + self.nom\n",
             "    def greet(self):\n        pass\n")
    assert not r.applied and r.rung == "not-found"
    assert "closest region is lines 8-9" in r.error and "8 |     def greet" in r.error
    assert r.line == 8 and 0 < r.similarity < 1


def test_already_applied(py):
    r = edit(py, '        msg = "hi, " + self.name\n', '        msg = "hello, " + self.name\n')
    assert not r.applied and r.already_applied and r.rung == "already-applied"
    assert "already" in r.error and "line 9" in r.error


def test_identical_and_empty(py, tmp_path):
    assert not edit(py, "x", "x").applied
    r = edit(py, "", "new content")
    assert not r.applied and "empty" in r.error
    newf = tmp_path / "sub" / "new.py"
    r = apply_edit(newf, "", "x = 1\n")
    assert r.applied and r.action == "create" and newf.read_text() == "x = 1\n"
    r = apply_edit(tmp_path / "missing.py", "a", "b")
    assert not r.applied and "does not exist" in r.error


@pytest.mark.parametrize(
    "name,good,old,bad",
    [
        ("a.py", "def f():\n    return 1\n", "return 1", "return (1"),
        ("a.js", "function f() { return 1; }\n", "return 1;", "return (1;"),
        ("a.ts", "const x: number = 1;\n", "= 1;", "= ;"),
        ("a.go", "package main\n\nfunc f() int { return 1 }\n", "return 1 }", "return 1"),
        ("a.rs", "fn f() -> i32 { 1 }\n", "{ 1 }", "{ 1 "),
        ("A.java", "class A { int f() { return 1; } }\n", "return 1; }", "return 1;"),
        ("a.c", "int f(void) { return 1; }\n", "return 1; }", "return 1;"),
        ("a.cpp", "int f() { return 1; }\n", "return 1; }", "return 1;"),
        ("a.sh", "if true; then\n  echo hi\nfi\n", "fi\n", "\n"),
        ("a.json", '{"a": [1, 2]}\n', "[1, 2]", "[1, 2"),
        ("a.toml", "[tool]\nx = 1\n", "x = 1", "x = "),
        ("a.yaml", "a:\n  - 1\n  - 2\n", "  - 2\n", "  - [2\n"),
    ],
)
def test_syntax_guard_refuses_new_errors(tmp_path, name, good, old, bad):
    p = tmp_path / name
    p.write_text(good)
    r = edit(p, old, bad)
    assert not r.applied and r.rung == "syntax", r
    assert "no longer parse" in r.error
    assert p.read_text() == good


def test_syntax_guard_skips_files_broken_before_and_unknown_types(tmp_path):
    p = tmp_path / "broken.py"
    p.write_text("def f(:\n    return 1\n")
    assert edit(p, "return 1", "return (2").applied
    q = tmp_path / "notes.txt"
    q.write_text("(a)\n")
    assert edit(q, "(a)", "(a").applied


def test_multi_block_reports_which_applied(py):
    results = apply_blocks(py, [
        Block('        msg = "hello, " + self.name\n', '        msg = "hey, " + self.name\n', index=0),
        Block("    nothing like this\n", "    x\n", index=1),
        Block("    return 0\n", "    return 1\n", index=2),
    ])
    assert [r.applied for r in results] == [True, False, True]
    assert "blocks 0, 2 of this file did apply" in results[1].error
    text = py.read_text()
    assert '"hey, "' in text and "return 1\n" in text


def test_multi_block_atomic_refuses_all(py):
    results = apply_blocks(py, [
        Block("    return 0\n", "    return 1\n", index=0),
        Block("    nothing like this\n", "    x\n", index=1),
    ], atomic=True)
    assert [r.applied for r in results] == [False, False]
    assert py.read_text() == PY


def test_multi_block_syntax_checked_on_final_text(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    return 1\n\n\ndef g():\n    return 2\n")
    # the first block alone leaves an open bracket; the second closes it
    results = apply_blocks(p, [
        Block("    return 1\n", "    return [1,\n", index=0),
        Block("def g():\n", "    2]\n\n\ndef g():\n", index=1),
    ])
    assert all(r.applied for r in results), results
    assert p.read_text() == "def f():\n    return [1,\n\n\n    2]\n\n\ndef g():\n    return 2\n"


def test_dry_run_changes_nothing(py):
    r = apply_edit(py, "    return 0\n", "    return 7\n", dry_run=True)
    assert r.applied and "+    return 7" in r.diff
    assert py.read_text() == PY


def test_prefetch_gives_same_verdicts(tmp_path):
    from ghostline.apply import prefetch_syntax, syntax

    p = tmp_path / "p.py"
    p.write_text(PY)
    syntax.clear_cache()
    prefetch_syntax(p, PY)
    assert edit(p, "    return 0\n", "    return (0\n").rung == "syntax"
    assert edit(p, "    return 0\n", "    return 1\n").applied
    # the tree of the new text is cached; a second edit parses incrementally from it
    assert edit(p, "    return 1\n", "    return [1\n").rung == "syntax"
    assert edit(p, "    return 1\n", "    return 2\n").applied


def test_internal_error_is_a_refusal_not_a_crash(py, monkeypatch):
    from ghostline.apply import ladder

    def boom(*a, **k):
        raise RuntimeError("bug")

    monkeypatch.setattr(ladder, "find_exact", boom)  # the ladder's first rung
    r = apply_edit(py, "x", "y")
    assert not r.applied and r.rung == "error" and "internal error" in r.error
    assert py.read_text() == PY


def test_less_indented_search_is_shifted_not_substituted(tmp_path):
    p = tmp_path / "i.py"
    p.write_text("class A:\n    def f(self):\n        return 1\n")
    # "    return 1" is a substring of the 8-space line; the model thinks it is indented by 4
    r = edit(p, "    return 1\n", "    if self:\n        return 2\n")
    assert r.applied and r.rung == "indentation"
    assert p.read_text() == "class A:\n    def f(self):\n        if self:\n            return 2\n"


def test_first_line_indentation_omitted_is_exact(tmp_path):
    p = tmp_path / "j.py"
    p.write_text("class A:\n    def f(self):\n        return 1\n")
    r = edit(p, "def f(self):\n        return 1\n", "def f(self):\n        return 2\n")
    assert r.applied and r.rung == "exact"
    assert p.read_text() == "class A:\n    def f(self):\n        return 2\n"
