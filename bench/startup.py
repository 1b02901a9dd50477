"""Startup benchmark: wall time of `agent --version` and `agent --help` against `python -c pass`.

    .venv/bin/python bench/startup.py [--runs 20]

Prints a table (median and p90 in ms, ratio to the bare interpreter) and writes bench/out/startup.json.
Also reports whether any heavy module (provider SDKs, Textual, torch) was imported by `--help`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("anthropic", "openai", "textual", "torch", "transformers", "sentence_transformers")


def agent_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "agent"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("agent")
    return [found] if found else [sys.executable, "-m", "ghostline.agent"]


def time_cmd(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append((time.perf_counter() - t) * 1000)
    return out


def heavy_imports(args: list[str]) -> list[str]:
    code = (
        f"import sys; sys.argv=['agent', *{args!r}]\n"
        "from ghostline.agent.__main__ import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('\\n'.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return [line for line in r.stderr.splitlines() if line in HEAVY]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "agent --version": [*agent_cmd(), "--version"],
        "agent --help": [*agent_cmd(), "--help"],
    }
    rows = {}
    for name, cmd in cases.items():
        time_cmd(cmd, 2)  # warm the page cache
        ms = time_cmd(cmd, a.runs)
        rows[name] = {"median_ms": statistics.median(ms), "p90_ms": sorted(ms)[int(0.9 * (len(ms) - 1))]}
    base = rows["python -c pass"]["median_ms"]
    print(f"{'command':<18} {'median ms':>10} {'p90 ms':>8} {'x python':>9}")
    for name, r in rows.items():
        r["ratio"] = r["median_ms"] / base
        print(f"{name:<18} {r['median_ms']:>10.1f} {r['p90_ms']:>8.1f} {r['ratio']:>9.2f}")
    heavy = heavy_imports(["--help"])
    print("heavy modules imported by --help:", ", ".join(heavy) if heavy else "none")
    target = rows["agent --version"]["median_ms"] < 150
    print(f"target agent --version < 150 ms: {'met' if target else 'NOT met'}")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "startup.json").write_text(json.dumps({"runs": a.runs, "rows": rows, "heavy_on_help": heavy,
                                                  "cpu_count": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
