from ghostline.apply import REWRITE_REQUEST, FailureTracker, check_rewrite

BIG = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(30))


def test_complete_rewrite_accepted():
    assert check_rewrite(BIG, BIG.replace("return x + 3\n", "return x + 33\n")) is None
    assert check_rewrite("a\nb\n", "c\n") is None  # small files may shrink


def test_truncated_rewrite_refused():
    why = check_rewrite(BIG, BIG[: len(BIG) // 4])
    assert why and "truncated" in why


def test_placeholders_refused():
    for marker in ("# ... rest of the file unchanged ...", "// existing code", "    ...",
                   "# rest of code remains the same", "/* ... existing methods ... */", "# (code omitted for brevity)"):
        text = BIG.replace("def f5(x):\n    return x + 5\n", f"def f5(x):\n{marker}\n")
        assert check_rewrite(BIG, text), marker


def test_placeholder_already_in_file_is_fine():
    old = BIG + "class P(Protocol):\n    def m(self) -> int:\n        ...\n"
    assert check_rewrite(old, old.replace("return x + 1\n", "return x + 2\n")) is None


def test_failure_tracker():
    t = FailureTracker()
    assert t.record("a.py", False) is False
    assert t.record("b.py", False) is False
    assert t.record("a.py", False) is True
    assert "a.py" in t.message("a.py") and "write" in t.message("a.py")
    assert t.record("a.py", True) is False
    assert t.count("a.py") == 0
    assert t.record("a.py", False) is False
    assert "{path}" in REWRITE_REQUEST
