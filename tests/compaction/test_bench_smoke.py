"""A cheap smoke run of bench/compaction_eval.py (the full evaluation is not run by pytest)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark smoke run: deselect locally with -m "not slow"

ROOT = Path(__file__).resolve().parents[2]


def test_compaction_eval_quick(tmp_path):
    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "compaction_eval.py"), "--quick", "--no-timing", "--turns", "45",
         "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Done-when checks" in proc.stdout
    data = json.loads(out.read_text())
    names = [r["name"] for r in data["runs"][0]["results"]]
    assert names[:3] == ["ghostline", "naive", "none"]
    g, _naive, none = data["runs"][0]["results"][:3]
    assert none["errors_to_user"] > 0  # the baseline overflows
    assert g["errors_to_user"] == 0 and g["max_fill"] <= 0.85
    assert g["pairs_valid_always"] and g["instructions_present_always"]
    assert g["retention"]["constraint"]["reachable"] == g["retention"]["constraint"]["total"]
