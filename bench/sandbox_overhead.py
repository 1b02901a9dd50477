"""Overhead of running `true` through the sandbox (each available layer) vs. a bare subprocess.

    .venv/bin/python bench/sandbox_overhead.py [--runs N] [--quick]

Prints a table (median, p90 and min ms per command, overhead vs. bare, ratio) and writes
bench/out/sandbox_overhead.json. Target: < 30 ms median overhead per command, on an idle machine: under load the
medians grow (min stays close to the idle cost), so the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ghostline.sandbox.runner import probe_bubblewrap, probe_landlock, run_command  # noqa: E402

TARGET_MS = 30.0


async def bare(ws: Path) -> None:
    p = await asyncio.create_subprocess_exec("/bin/bash", "-c", "true", cwd=str(ws), stdin=asyncio.subprocess.DEVNULL,
                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                             start_new_session=True)
    await p.communicate()


async def measure(fn, runs: int) -> list[float]:
    await fn()  # warm-up (probes, caches)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--quick", action="store_true", help="5 runs per row (smoke test)")
    args = ap.parse_args()
    runs = 5 if args.quick else args.runs
    ws = Path(tempfile.mkdtemp(prefix="sbx-bench-"))
    (ws / ".git").mkdir()
    rows: dict[str, list[float]] = {"bare": await measure(lambda: bare(ws), runs)}
    layers = [("none (plain + trampoline)", "none")]
    if probe_bubblewrap()[0]:
        layers.insert(0, ("bubblewrap", "bubblewrap"))
    if probe_landlock()[0]:
        layers.insert(1 if len(layers) > 1 else 0, ("landlock", "landlock"))
    for label, level in layers:
        async def fn(level: str = level) -> None:
            r = await run_command("true", cwd=ws, workspace=ws, mode="workspace-write", network=False, timeout=30,
                                  level=level)
            assert r.exit_code == 0, r.output
        rows[label] = await measure(fn, runs)
    base = statistics.median(rows["bare"])
    print(f"{'layer':<28}{'median ms':>10}{'p90 ms':>9}{'min ms':>9}{'overhead ms':>13}{'ratio':>8}"
          f"  target<{TARGET_MS:.0f}ms")
    result = {"runs": runs, "target_overhead_ms": TARGET_MS, "load_average": round(os.getloadavg()[0], 2),
              "rows": {}}
    for label, xs in rows.items():
        med = statistics.median(xs)
        p90 = sorted(xs)[max(0, int(len(xs) * 0.9) - 1)]
        over = med - base
        ok = "" if label == "bare" else ("ok" if over < TARGET_MS else "OVER")
        print(f"{label:<28}{med:>10.1f}{p90:>9.1f}{min(xs):>9.1f}{over:>13.1f}{med / base:>8.2f}  {ok}")
        result["rows"][label] = {"median_ms": round(med, 2), "p90_ms": round(p90, 2), "min_ms": round(min(xs), 2),
                                 "overhead_ms": round(over, 2), "ratio": round(med / base, 2)}
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "sandbox_overhead.json").write_text(json.dumps(result, indent=2))
    load = os.getloadavg()[0]
    busy = "; the machine is busy: medians are above the idle cost" if load > (os.cpu_count() or 1) / 2 else ""
    print(f"wrote {out / 'sandbox_overhead.json'} (load average {load:.1f}{busy})")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
