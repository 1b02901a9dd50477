"""Test-run summaries: counts and failing test names from pytest, jest and `go test` output."""

from __future__ import annotations

import re
from typing import Any

_PYTEST_SUMMARY = re.compile(
    r"^=*\s*((?:\d+ (?:failed|passed|errors?|skipped|xfailed|xpassed|warnings?|deselected|rerun)"
    r"(?:, )?)+)\s+in\s+[\d.]+\s*s", re.M)
_PYTEST_COUNT = re.compile(r"(\d+) (failed|passed|errors?|skipped|xfailed|xpassed)")
_PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)(?: - (.*))?$", re.M)
_JEST_TESTS = re.compile(r"^Tests:\s+(.*?(\d+) total)", re.M)
_JEST_COUNT = re.compile(r"(\d+) (failed|passed|skipped|todo)")
_JEST_FAILED = re.compile(r"^\s*● (.+?)\s*$", re.M)
_GO_RESULT = re.compile(r"^(ok|FAIL|---\s*FAIL:|---\s*PASS:)\s+(\S+)", re.M)


def parse_test_output(text: str) -> dict[str, Any] | None:
    """Counts and failing test names from a pytest, jest or `go test` run, or None if it is not one."""
    if not text:
        return None
    tail = text[-20000:]
    found = list(_PYTEST_SUMMARY.finditer(tail))
    if found:
        m = found[-1]
        counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
        for n, kind in _PYTEST_COUNT.findall(m.group(1)):
            key = "errors" if kind.startswith("error") else kind
            if key in counts:
                counts[key] += int(n)
        failing = [f.group(1) for f in _PYTEST_FAILED.finditer(tail)][:20]
        return {"framework": "pytest", **counts, "failing": failing, "summary": m.group(0).strip("= ").strip()}
    jfound = list(_JEST_TESTS.finditer(tail))
    if jfound:
        jm = jfound[-1]
        counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
        for n, kind in _JEST_COUNT.findall(jm.group(1)):
            if kind in counts:
                counts[kind] += int(n)
        failing = [f.group(1) for f in _JEST_FAILED.finditer(tail)][:20]
        return {"framework": "jest", **counts, "failing": failing, "summary": "Tests: " + jm.group(1)}
    go = _GO_RESULT.findall(tail)
    if go:
        passed = sum(1 for k, _ in go if k.endswith("PASS:"))
        failing = [n for k, n in go if k.replace(" ", "").endswith("FAIL:")]
        pkg_fail = [n for k, n in go if k == "FAIL"]
        pkg_ok = [n for k, n in go if k == "ok"]
        return {"framework": "go", "passed": passed or len(pkg_ok), "failed": len(failing) or len(pkg_fail),
                "errors": 0, "skipped": 0, "failing": (failing or pkg_fail)[:20],
                "summary": f"go test: {len(pkg_ok)} ok, {len(pkg_fail)} FAIL packages"}
    return None
