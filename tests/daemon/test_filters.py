"""The suggestion filters (daemon/engine/filters.py) and the classical completer's respect for the text around the
cursor."""

from __future__ import annotations

import pytest

from ghostline.daemon.engine.classical import ClassicalCompleter
from ghostline.daemon.engine.filters import Place, apply_filters, calls_for_multiline


@pytest.mark.parametrize("text,place,want,changed,dropped", [
    # repetition loops: characters, a line, a block of lines
    ("itititititititititit", Place("x = ", "\n"), "it", ["repetition_loop"], ""),
    ("foo()\nfoo()\nfoo()\nfoo()", Place("def f():\n", "\n"), "foo()", ["repetition_loop"], ""),
    ("a = 1\nb = 2\na = 1\nb = 2\na = 1\nb = 2\n", Place("", "\n"), "a = 1\nb = 2", ["repetition_loop"], ""),
    ("aaaaaaaaaaaaaaaaaaaa", Place("s = '", "'\n"), "a", ["repetition_loop"], ""),
    # stop where it starts repeating the suffix
    ("a, b)", Place("f(", ")\n"), "a, b", ["suffix_repeat"], ""),
    ("x > 0) {", Place("if (", ") {\n"), "x > 0", ["suffix_repeat"], ""),
    ("    return x\n}", Place("function f() {\n", "\n}\n"), "    return x", ["suffix_repeat"], ""),
    ("return data", Place("def f():\n    ", "\n    return data\n"), "", [], "suffix_repeat"),
    # the line above over again
    ("x = foo(1)", Place("x = foo(1)\n", "\n"), "", [], "repeats_neighbour"),
    ("foo(1)", Place("x = foo(1)\nx = ", "\n"), "", [], "repeats_neighbour"),
    # multi-line only where the position calls for it
    ("value\nmore = 2", Place("y = some_", "\n"), "value", ["single_line"], ""),
    ("name\nprint(x)", Place("call(", ", 2)\n"), "name", ["single_line"], ""),
    ("if x:\n        return 1", Place("def f(x):\n    ", "\n"), "if x:\n        return 1", [], ""),
    ("):\n    return 1", Place("def f(x", "\n"), "):\n    return 1", [], ""),
    # brackets it opened
    ("foo(bar", Place("x = ", "\n"), "foo(bar)", ["brackets"], ""),
    ("foo(bar", Place("x = ", ")\n"), "foo(bar", [], ""),
    ("a = [\n    1,\n    2,\n    g(3", Place("", "\n", "limit"), "a = [\n    1,\n    2,", ["brackets"], ""),
    # whitespace
    ("   \n ", Place("x = ", "\n"), "", [], "whitespace_only"),
    # ordinary completions pass untouched
    ("[0, 0, 0, 0, 0, 0, 0]", Place("z = ", "\n"), "[0, 0, 0, 0, 0, 0, 0]", [], ""),
    ('"=" * 80)', Place("print(", "\n"), '"=" * 80)', [], ""),
    ("ute_total(items)", Place("x = comp", "\n"), "ute_total(items)", [], ""),
])
def test_filters(text, place, want, changed, dropped):
    assert apply_filters(text, place) == (want, changed, dropped)


def test_multiline_needs_the_end_of_a_line_and_a_new_line_or_block():
    assert calls_for_multiline(Place("    ", "\n"), "a\nb")
    assert calls_for_multiline(Place("def f", "\n"), "(x):\n    pass")
    assert calls_for_multiline(Place("foo(", ")\n"), "\n  a,\n  b\n")  # only closers after the cursor
    assert not calls_for_multiline(Place("x = a", " + b\n"), "\nc")
    assert not calls_for_multiline(Place("x = f", "\n"), "oo\nbar")


def _completer(text: str) -> ClassicalCompleter:
    c = ClassicalCompleter()
    c.update_buffer("a.py", text)
    return c


def test_classical_respects_the_word_right_of_the_cursor():
    c = _completer("def compute_total(items):\n    return sum(items)\n\ntotal = compute_total(x)\n")
    assert c.complete("x = compu", "te_t\n") == []  # "te_total" would give compute_totalte_t
    assert c.complete("x = compu", "\n") == ["te_total"]
    assert c.complete("total = compu", "(x)\n") == ["te_total"]  # the line fits around "(x)"


def test_classical_offers_attributes_not_assignments_after_a_dot():
    c = _completer("class A:\n    def __init__(self):\n        self.count = 0\n        self.items = []\n\n"
                   "    def add(self, x):\n        self.items.append(x)\n        self.count += 1\n")
    got = c.complete("    def n(self):\n        return self.", "\n", n=4)
    assert set(got) == {"count", "items"}
    assert all("=" not in g for g in c.complete("        self.", "\n", n=4))
    assert c.complete("        self.co", "\n") == ["unt"]
    # the target is typed: its statement may follow
    assert set(c.complete("        self.count ", "\n", n=2)) == {"= 0", "+= 1"}
