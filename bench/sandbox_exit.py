"""What the sandbox costs a process at exit: time from its last sandboxed command to its exit, and how much of
that is the sandbox's own teardown (removing its pids cgroups, root only).

    .venv/bin/python bench/sandbox_exit.py [--runs N] [--agent]

Row "sandbox": a fresh interpreter runs 3 commands through run_command (the detected layer) and exits. With
--agent, also `agent run` against the fake model server (one bash call, then the answer): last model response
-> exit, as is and with interpreter finalization skipped (os._exit once the exit handlers ran), which shows where
the rest of an `agent run`'s exit time goes. Target: the sandbox's teardown <= 30 ms. Writes
bench/out/sandbox_exit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 30.0

# Exit handlers run last-registered first: `stamp` runs before the sandbox's (registered on import), `report`
# after it. CLOCK_MONOTONIC is one clock for every process, so the parent can compare.
CHILD = """
import asyncio, atexit, sys, time
from pathlib import Path
t = {}
def report():
    sys.stdout.write(f"{t['last']} {t['pre']} {time.monotonic()}\\n"); sys.stdout.flush()
atexit.register(report)
from ghostline.sandbox.runner import run_command
atexit.register(lambda: t.__setitem__("pre", time.monotonic()))
async def main(ws):
    for _ in range(3):
        r = await run_command("echo hi", cwd=ws, workspace=ws, mode="workspace-write", network=False, timeout=30)
        assert r.exit_code == 0, r.output
    t["last"] = time.monotonic()
asyncio.run(main(Path(sys.argv[1])))
"""

FAST_EXIT = """
import atexit, os, sys
sys.argv = ["agent", *sys.argv[1:]]
from ghostline.agent.__main__ import main
try:
    main(); code = 0
except SystemExit as e:
    code = e.code or 0
atexit._run_exitfuncs(); sys.stdout.flush(); sys.stderr.flush(); os._exit(code)
"""


def sandbox_once(ws: Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", CHILD, str(ws)], capture_output=True, text=True, env=env, check=True)
    end = time.monotonic()
    last, pre, post = map(float, p.stdout.split())
    return (end - last) * 1000, (post - pre) * 1000


def agent_once(fast: bool) -> float:
    from tests.agent.test_e2e import AGENT, agent_env, make_repo
    from tests.fakeserver import FakeModelServer, reply

    tmp = Path(tempfile.mkdtemp(prefix="sbx-exit-"))
    repo = make_repo(tmp)
    script = iter([reply("", [("bash", {"command": "echo hi"})]), reply("done.")])
    answered: list[float] = []

    def serve(_request: object, _provider: str) -> object:
        r = next(script)
        answered.append(time.monotonic())
        return r

    argv = [sys.executable, "-c", FAST_EXIT] if fast else [AGENT]
    with FakeModelServer(serve) as srv:
        env = {**agent_env(tmp, srv, "anthropic"), "PYTHONPATH": str(ROOT)}
        subprocess.run([*argv, "run", "x", "--model", "anthropic:claude-sonnet-5-5", "--approval", "auto",
                        "--sandbox", "workspace-write"], cwd=repo, env=env, check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)
        end = time.monotonic()
    return (end - answered[-1]) * 1000


def row(xs: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(xs), 2), "min_ms": round(min(xs), 2), "max_ms": round(max(xs), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--agent", action="store_true", help="also measure `agent run` against the fake model server")
    args = ap.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="sbx-exit-ws-"))
    samples = [sandbox_once(ws) for _ in range(args.runs)]
    rows = {"sandbox: last command -> exit": row([s[0] for s in samples]),
            "sandbox: of which cgroup teardown": row([s[1] for s in samples])}
    if args.agent:
        rows["agent run: last response -> exit"] = row([agent_once(False) for _ in range(args.runs)])
        rows["agent run: same, finalization skipped"] = row([agent_once(True) for _ in range(args.runs)])
    print(f"{'what':<40}{'median ms':>10}{'min ms':>9}{'max ms':>9}")
    for name, r in rows.items():
        print(f"{name:<40}{r['median_ms']:>10.2f}{r['min_ms']:>9.2f}{r['max_ms']:>9.2f}")
    teardown = rows["sandbox: of which cgroup teardown"]["median_ms"]
    print(f"target: cgroup teardown <= {TARGET_MS:.0f} ms: {'met' if teardown <= TARGET_MS else 'NOT met'} "
          f"(load average {os.getloadavg()[0]:.1f})")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sandbox_exit.json").write_text(json.dumps({"runs": args.runs, "target_ms": TARGET_MS, "rows": rows,
                                                       "load_average": round(os.getloadavg()[0], 2)}, indent=2))
    print(f"wrote {out / 'sandbox_exit.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
