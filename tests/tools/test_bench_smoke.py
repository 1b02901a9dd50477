"""A quick run of bench/mcp_overhead.py: the harness runs every transport and way, and writes its report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark smoke run: deselect locally with -m "not slow"

ROOT = Path(__file__).resolve().parents[2]


def test_mcp_overhead_bench_quick() -> None:
    r = subprocess.run([sys.executable, "bench/mcp_overhead.py", "--quick"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads((ROOT / "bench" / "out" / "mcp_overhead.json").read_text())
    names = [row["name"] for row in report["rows"]]
    assert len(names) == 6 and any(n.startswith("http") for n in names) and any(n.startswith("stdio") for n in names)
    assert all(row["runs"] == 30 for row in report["rows"])
