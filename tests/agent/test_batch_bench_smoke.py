"""A tiny run of bench/batch_bench.py: the harness works, every job landed, the figures are there."""

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark smoke run: deselect locally with -m "not slow"

ROOT = Path(__file__).resolve().parents[2]


def test_batch_bench_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("batch_bench", ROOT / "bench" / "batch_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "batch_bench.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    row = data["rows"]["agent batch (jobs in one process)"]
    assert data["jobs"] == 4 and data["parallel"] == 2 and row["ideal_wall_s"] == 0.2
    assert row["wall_s"] > row["ideal_wall_s"] and row["peak_rss_mb"] > 10
    assert set(row["per_job_overhead_s"]) == {"median", "p90", "max"}
