"""`agent batch` overhead: 20 small jobs at --parallel 4 against the fake model server.

    .venv/bin/python bench/batch_bench.py [--jobs 20] [--parallel 4] [--model-ms 250] [--no-processes] [--quick]

Each job makes two model calls (write a file, then say it is done), and the fake server holds each response
--model-ms before answering, so a job's model time is 2 x model-ms. Measured, on the real console script:

- `agent batch JOBS --parallel P --commit` (jobs as tasks of one process): the batch's wall time, the ideal wall
  time (waves x model time), each job's elapsed time from its slot to its landed commit (worktree creation,
  session, run, commit, teardown) minus its model time = the per-job overhead (target <= 0.3 s), and the
  batch's peak RSS and CPU time per job (GNU time: the process and the commands it ran).
- the same jobs as `agent run --worktree=ID --commit` processes, P at a time: what one process per job costs.

Prints a table and writes bench/out/batch_bench.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.agent.test_e2e import AGENT, agent_env, make_repo  # noqa: E402
from tests.fakeserver import FakeModelServer, reply  # noqa: E402

TARGET_S = 0.3
MODEL = "anthropic:claude-sonnet-5-5"
CALLS_PER_JOB = 2
TIME = shutil.which("time") or "/usr/bin/time"


def script(delay_s: float):
    def answer(body: dict, provider: str):
        first = body["messages"][0]["content"]
        text = first if isinstance(first, str) else "".join(b.get("text", "") for b in first)
        job = text.split("]", 1)[0].lstrip("[")
        if not any(m["role"] == "assistant" for m in body["messages"]):
            return reply("", [("write", {"path": f"{job}.txt", "content": f"{job}\n"})], delay_s=delay_s)
        return reply(f"Wrote {job}.txt", delay_s=delay_s)
    return answer


def timed(cmd: list[str], *, cwd: Path, env: dict[str, str], rss_file: Path) -> tuple[float, int, str]:
    """Wall seconds, exit code and stderr of `cmd`; GNU time writes its peak RSS (KiB) and CPU seconds (user,
    system; its children's included) to rss_file."""
    t = time.perf_counter()
    proc = subprocess.run([TIME, "-f", "%M %U %S", "-o", str(rss_file), *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
    return time.perf_counter() - t, proc.returncode, proc.stderr


def _kib(path: Path) -> int:
    return int(path.read_text().split()[-3])


def _cpu(path: Path) -> float:
    user, system = path.read_text().split()[-2:]
    return float(user) + float(system)


def _stats(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"median": round(statistics.median(xs), 3), "p90": round(xs[max(0, math.ceil(len(xs) * 0.9) - 1)], 3),
            "max": round(xs[-1], 3)}


def bench_batch(work: Path, env: dict[str, str], ids: list[str], parallel: int, model_s: float) -> dict[str, Any]:
    repo = make_repo(work)
    jobs = work / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"id": i, "task": f"[{i}] write {i}.txt"}) + "\n" for i in ids))
    report = work / "report.json"
    wall, code, err = timed([AGENT, "batch", str(jobs), "--parallel", str(parallel), "--report", str(report),
                             "--commit", "-m", MODEL], cwd=repo, env=env, rss_file=work / "rss")
    data = json.loads(report.read_text())
    if code != 0 or data["totals"]["commits"] != len(ids):
        raise SystemExit(f"the batch failed (exit {code}): {err[-2000:]}")
    overheads = [j["elapsed_ms"] / 1000 - model_s for j in data["jobs"]]
    waves = math.ceil(len(ids) / parallel)
    return {"wall_s": round(wall, 3), "ideal_wall_s": round(waves * model_s, 3),
            "overhead_per_wave_s": round((wall - waves * model_s) / waves, 3), "per_job_overhead_s": _stats(overheads),
            "cpu_s_per_job": round(_cpu(work / "rss") / len(ids), 3), "peak_rss_mb": round(_kib(work / "rss") / 1024, 1)}


def bench_processes(work: Path, env: dict[str, str], ids: list[str], parallel: int, model_s: float) -> dict[str, Any]:
    repo = make_repo(work)

    def one(job: str) -> tuple[float, int, float]:
        wall, code, err = timed([AGENT, "run", f"[{job}] write {job}.txt", f"--worktree={job}", "--commit", "-m",
                                 MODEL, "-o", "json"], cwd=repo, env=env, rss_file=work / f"rss-{job}")
        if code != 0:
            raise SystemExit(f"agent run failed (exit {code}): {err[-2000:]}")
        return wall, _kib(work / f"rss-{job}"), _cpu(work / f"rss-{job}")

    t = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(one, ids))
    wall = time.perf_counter() - t
    waves = math.ceil(len(ids) / parallel)
    peak = max(kib for _, kib, _ in results) / 1024
    return {"wall_s": round(wall, 3), "ideal_wall_s": round(waves * model_s, 3),
            "overhead_per_wave_s": round((wall - waves * model_s) / waves, 3),
            "per_job_overhead_s": _stats([w - model_s for w, _, _ in results]),
            "cpu_s_per_job": round(sum(c for _, _, c in results) / len(ids), 3),
            "peak_rss_mb": round(peak * parallel, 1), "peak_rss_per_process_mb": round(peak, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--model-ms", type=float, default=250.0, help="the fake server's time per model call")
    ap.add_argument("--no-processes", action="store_true", help="skip the one-process-per-job comparison")
    ap.add_argument("--quick", action="store_true", help="4 jobs, 2 at a time, 50 ms calls (smoke test)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "batch_bench.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.jobs, args.parallel, args.model_ms, args.no_processes = 4, 2, 50.0, True
    delay = args.model_ms / 1000
    model_s = CALLS_PER_JOB * delay
    ids = [f"job{i:02d}" for i in range(args.jobs)]
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp, FakeModelServer(script(delay)) as srv:
        root = Path(tmp)
        env = agent_env(root, srv, "anthropic")
        variants = [("agent batch (jobs in one process)", bench_batch)]
        if not args.no_processes:
            variants.append(("agent run per job (P processes)", bench_processes))
        for name, fn in variants:
            work = root / name.split()[1]
            work.mkdir()
            rows[name] = fn(work, env, ids, args.parallel, model_s)
    print(f"{args.jobs} jobs, --parallel {args.parallel}, {CALLS_PER_JOB} model calls of {args.model_ms:.0f} ms per "
          f"job (model time {model_s:.2f} s per job); per-job overhead = elapsed - model time; target <= "
          f"{TARGET_S} s")
    print(f"{'variant':<36}{'wall s':>8}{'ideal s':>9}{'per wave s':>11}{'overhead/job s: median':>24}"
          f"{'p90':>7}{'max':>7}{'CPU s/job':>11}{'peak RSS MB':>13}")
    for name, r in rows.items():
        o = r["per_job_overhead_s"]
        verdict = "ok" if o["median"] <= TARGET_S else "OVER"
        print(f"{name:<36}{r['wall_s']:>8.2f}{r['ideal_wall_s']:>9.2f}{r['overhead_per_wave_s']:>11.2f}"
              f"{o['median']:>24.3f}{o['p90']:>7.3f}{o['max']:>7.3f}{r['cpu_s_per_job']:>11.3f}"
              f"{r['peak_rss_mb']:>13.1f}  {verdict}")
    load = os.getloadavg()[0]
    result = {"jobs": args.jobs, "parallel": args.parallel, "model_ms_per_call": args.model_ms,
              "model_s_per_job": model_s, "target_s": TARGET_S, "cpus": os.cpu_count(), "load_average": round(load, 2),
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out} (load average {load:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
