"""Per-call overhead of an MCP tool beyond the server's own time, over stdio and streamable HTTP.

    .venv/bin/python bench/mcp_overhead.py [--runs N] [--quick]

The server (tests/support/mcp_server.py, the SDK's MCPServer) busies itself `work_ms` per call; the overhead is a
call's wall time minus that. Three ways per transport: the SDK's own `Client.call_tool` (the floor: JSON-RPC,
pydantic on both sides, the server framework), and a Ghostline call through the whole gate (`ToolRegistry.run`:
schema check, policy, the adapter, the result conversion) with and without the permission policy. Prints a table
(median, p90, min ms of overhead) and writes bench/out/mcp_overhead.json. The load average is printed with it:
under load the medians grow, the minimum stays near the idle cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp import Client, StdioServerParameters  # noqa: E402

from ghostline.sandbox.policy import Policy  # noqa: E402
from ghostline.tools import ToolContext, ToolRegistry  # noqa: E402
from ghostline.tools.mcp import McpManager, ServerSpec  # noqa: E402
from ghostline.tools.registry import Call  # noqa: E402

SERVER = (sys.executable, "-m", "tests.support.mcp_server")


async def timed(fn: Callable[[], Awaitable[object]], runs: int, work_ms: float) -> list[float]:
    for _ in range(max(3, runs // 10)):  # warm-up: imports, caches, the schema compile
        await fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000 - work_ms)
    return out


def summary(name: str, samples: list[float]) -> dict[str, float | str]:
    ordered = sorted(samples)
    return {"name": name, "median_ms": round(statistics.median(ordered), 3),
            "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 3), "min_ms": round(ordered[0], 3),
            "runs": len(ordered)}


async def sdk_floor(target: StdioServerParameters | str, runs: int, work_ms: float) -> list[float]:
    async with Client(target, cache=None) as client:
        return await timed(lambda: client.call_tool("work", {"ms": work_ms}), runs, work_ms)


async def through_gate(spec: ServerSpec, runs: int, work_ms: float, *, policy: bool) -> list[float]:
    registry = ToolRegistry([], policy=Policy(remembered=False, level="bubblewrap") if policy else None)
    manager = McpManager(registry)
    problems = await manager.start([spec])
    if problems:
        raise SystemExit(problems[0])
    ws = Path(tempfile.mkdtemp())
    ctx = ToolContext(workspace=ws, cwd=ws, approval="auto")
    calls = [Call("c", f"mcp__{spec.name}__work", {"ms": work_ms})]

    async def one() -> None:
        result = (await registry.run(calls, ctx))[0]
        assert not result.is_error, result.content

    try:
        return await timed(one, runs, work_ms)
    finally:
        await manager.stop()


def http_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*SERVER, "--http"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    port = int(proc.stdout.readline().split()[1])  # type: ignore[union-attr]
    return proc, f"http://127.0.0.1:{port}/mcp"


async def run(runs: int, work_values: list[float]) -> list[dict[str, float | str]]:
    rows = []
    stdio = ServerSpec("bench", SERVER[0], SERVER[1:], cwd=str(ROOT), env={"PYTHONPATH": str(ROOT)})
    params = StdioServerParameters(command=SERVER[0], args=list(SERVER[1:]), cwd=str(ROOT),
                                   env={"PYTHONPATH": str(ROOT)})
    proc, url = http_server()
    try:
        for work_ms in work_values:
            for transport, target, spec in (("stdio", params, stdio), ("http", url, ServerSpec("bench", url=url))):
                tag = f"{transport} work={work_ms:g}ms"
                rows.append(summary(f"{tag} SDK call_tool (floor)", await sdk_floor(target, runs, work_ms)))
                rows.append(summary(f"{tag} Ghostline gate, no policy", await through_gate(spec, runs, work_ms,
                                                                                          policy=False)))
                rows.append(summary(f"{tag} Ghostline gate + policy", await through_gate(spec, runs, work_ms,
                                                                                        policy=True)))
    finally:
        proc.kill()
        proc.wait()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="30 runs, work=0 only (a smoke run)")
    args = parser.parse_args()
    runs = 30 if args.quick else args.runs
    rows = asyncio.run(run(runs, [0.0] if args.quick else [0.0, 10.0]))
    load = os.getloadavg()[0]
    print(f"{'what':<52} {'median':>8} {'p90':>8} {'min':>8}   (ms of overhead per call)")
    for r in rows:
        print(f"{r['name']:<52} {r['median_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['min_ms']:>8.2f}")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "mcp_overhead.json").write_text(json.dumps({"runs": runs, "load_average": load, "rows": rows}, indent=2))
    print(f"wrote {out / 'mcp_overhead.json'} (load average {load:.1f}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
