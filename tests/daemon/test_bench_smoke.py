"""A cheap smoke run of bench/daemon_bench.py (tiny model, a handful of keystrokes)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark smoke run: deselect locally with -m "not slow"

ROOT = Path(__file__).resolve().parents[2]


def test_daemon_bench_quick(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "daemon_bench.py"), "--quick", "--keys", "4",
                        "--naive-samples", "1", "--threads", "1", "--sequential", "2", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(out.read_text())
    for cfg in ("kv_reuse_on", "kv_reuse_off"):
        assert data[cfg]["requests"] == 4
    assert data["kv_reuse_on"]["reused_token_share"] > 0 and data["kv_reuse_off"]["reused_token_share"] == 0
    assert "ttft_p50_off_over_on (sequential)" in data["ratios"] and "naive_generate" in data
    assert data["kv_reuse_on"]["seq_requests"] == 2
    assert "ttft_p50" in r.stdout
    # the result cache, the scanner on the labelled set and the filters are reported
    assert data["typed_through_cache"]["requests"] > 0 and data["typed_through_no_cache"]["cache_hits"] == 0
    assert data["suggestions"]["test_set"]["recall"] == 1.0 and "filter_share" in data["suggestions"]
    assert "result cache" in r.stdout and "credential scanner" in r.stdout
