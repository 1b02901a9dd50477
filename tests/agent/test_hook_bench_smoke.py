"""A tiny run of bench/hook_overhead.py: the harness works and every call through the hooked gate succeeded."""

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark smoke run: deselect locally with -m "not slow"

ROOT = Path(__file__).resolve().parents[2]


def test_hook_bench_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("hook_overhead", ROOT / "bench" / "hook_overhead.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "hook_overhead.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert rows["PreToolUse hook"]["hooks"] == 1 and rows["Pre + PostToolUse hooks"]["hooks"] == 2
    assert isinstance(rows["PreToolUse hook"]["overhead_per_hook_ms"], float)
