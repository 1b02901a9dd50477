from ghostline.apply import REWRITE_REQUEST, RewriteRule, check_rewrite

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


def test_rewrite_rule_asks_after_repeated_failures_and_checks_the_next_write():
    rule = RewriteRule()
    assert rule.edit_failed("/w/a.py", "a.py") is None
    assert rule.edit_failed("/w/b.py", "b.py") is None
    request = rule.edit_failed("/w/a.py", "a.py")
    assert request is not None and "a.py" in request and "failed 2 times" in request and "write" in request
    assert rule.wants_rewrite("/w/a.py") and not rule.wants_rewrite("/w/b.py")
    rule.rewritten("/w/a.py")
    assert not rule.wants_rewrite("/w/a.py")
    assert rule.edit_failed("/w/a.py", "a.py") is None  # counting starts again
    rule.edit_succeeded("/w/b.py")
    assert rule.edit_failed("/w/b.py", "b.py") is None  # a success resets the count
    assert "{path}" in REWRITE_REQUEST
