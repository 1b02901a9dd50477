"""Per-call overhead of a hook, beyond the hook's own run time.

    .venv/bin/python bench/hook_overhead.py [--runs N] [--quick]

One tool call (a tool that returns at once) goes through the registry's gate and runs: without hooks, with one
PreToolUse hook, and with a PreToolUse and a PostToolUse hook. The hook is `cat > /dev/null` (it reads its JSON
and exits 0). Its own run time is measured alone in the same rounds (the same command, the same payload, a bare
asyncio subprocess), so overhead = (call with hook) − (call without) − (the hook alone), per hook, from the
medians and from the minimums (the minimums are the idle machine's cost: on a loaded machine the medians carry
scheduling noise). Rounds interleave the variants, so load drifts hit them alike. Prints a table (median, p90,
min ms) and writes bench/out/hook_overhead.json. Target: < 5 ms overhead per hook (median).
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ghostline.agent.hooks import Hooks, parse_hooks  # noqa: E402
from ghostline.tools.base import BaseTool, ToolContext, ToolResult  # noqa: E402
from ghostline.tools.registry import Call, ToolRegistry  # noqa: E402

TARGET_MS = 5.0
HOOK = "cat > /dev/null"


class Instant(BaseTool):
    name = "probe"
    kind = "read"
    description = "returns at once"
    input_schema: dict[str, Any] = {"type": "object", "properties": {"path": {"type": "string"}}}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return ToolResult("ok")


def registry(events: tuple[str, ...], ws: Path) -> ToolRegistry:
    table = {e: [{"matcher": "probe", "hooks": [{"type": "command", "command": HOOK}]}] for e in events}
    parsed, _ = parse_hooks(table, "bench")
    hooks = Hooks(parsed, session_id="bench", transcript_path=ws / "bench.jsonl", project_dir=ws) if events else None
    return ToolRegistry([Instant()], hooks=hooks)


async def one_call(reg: ToolRegistry, ctx: ToolContext) -> None:
    verdict = await reg.admit(Call("c1", "probe", {"path": "src/app.py"}), ctx)
    [result] = await reg.execute([verdict], ctx)
    assert result.content == "ok" and not verdict.hook_reports, verdict.hook_reports


async def bare_hook(ws: Path, payload: bytes) -> None:
    proc = await asyncio.create_subprocess_shell(HOOK, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                 stderr=asyncio.subprocess.PIPE, cwd=str(ws))
    await proc.communicate(payload)


async def timed(fn) -> float:
    t = time.perf_counter()
    await fn()
    return (time.perf_counter() - t) * 1000


async def measure(runs: int, ws: Path) -> dict[str, list[float]]:
    ctx = ToolContext(workspace=ws, cwd=ws)
    payload = json.dumps({"session_id": "bench", "transcript_path": str(ws / "bench.jsonl"), "cwd": str(ws),
                          "permission_mode": "auto", "hook_event_name": "PreToolUse", "tool_name": "probe",
                          "tool_input": {"path": "src/app.py"}, "tool_use_id": "c1"}).encode()
    variants = {
        "no hooks": lambda r=registry((), ws): one_call(r, ctx),
        "PreToolUse hook": lambda r=registry(("PreToolUse",), ws): one_call(r, ctx),
        "Pre + PostToolUse hooks": lambda r=registry(("PreToolUse", "PostToolUse"), ws): one_call(r, ctx),
        "the hook alone (bare subprocess)": lambda: bare_hook(ws, payload),
    }
    for fn in variants.values():  # warm-up: imports, first spawn
        await fn()
    rows: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(runs):
        for name, fn in variants.items():
            rows[name].append(await timed(fn))
    return rows


HOOKS_IN = {"no hooks": 0, "PreToolUse hook": 1, "Pre + PostToolUse hooks": 2, "the hook alone (bare subprocess)": 0}


def _overhead(stat: dict[str, float], name: str) -> float | None:
    n = HOOKS_IN[name]
    if not n:
        return None
    return round((stat[name] - stat["no hooks"] - n * stat["the hook alone (bare subprocess)"]) / n, 3)


def summarise(rows: dict[str, list[float]]) -> dict[str, Any]:
    med = {k: statistics.median(v) for k, v in rows.items()}
    low = {k: min(v) for k, v in rows.items()}
    return {name: {"median_ms": round(med[name], 3), "p90_ms": round(sorted(xs)[max(0, int(len(xs) * 0.9) - 1)], 3),
                   "min_ms": round(low[name], 3), "hooks": HOOKS_IN[name],
                   "overhead_per_hook_ms": _overhead(med, name), "overhead_per_hook_min_ms": _overhead(low, name)}
            for name, xs in rows.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="5 rounds (smoke test)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "hook_overhead.json")
    args = ap.parse_args(argv)
    runs = 5 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="hook-bench-") as tmp:
        rows = asyncio.run(measure(runs, Path(tmp)))
    table = summarise(rows)
    print(f"{'variant':<36}{'median ms':>10}{'p90 ms':>9}{'min ms':>9}{'overhead/hook ms (median, min)':>32}"
          f"  target<{TARGET_MS:.0f}ms")
    for name, r in table.items():
        over, over_min = r["overhead_per_hook_ms"], r["overhead_per_hook_min_ms"]
        verdict = "" if over is None else ("ok" if over < TARGET_MS else "OVER")
        shown = "" if over is None else f"{over:.2f}, {over_min:.2f}"
        print(f"{name:<36}{r['median_ms']:>10.2f}{r['p90_ms']:>9.2f}{r['min_ms']:>9.2f}{shown:>32}  {verdict}")
    load = os.getloadavg()[0]
    result = {"runs": runs, "hook": HOOK, "target_overhead_ms": TARGET_MS, "load_average": round(load, 2),
              "rows": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    busy = "; the machine is busy: medians are above the idle cost" if load > (os.cpu_count() or 1) / 2 else ""
    print(f"wrote {args.out} (load average {load:.1f}{busy})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
