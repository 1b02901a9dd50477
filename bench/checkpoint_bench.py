"""Undo checkpoints: what snapshots and undo cost, the store outside the repository vs. the old in-repo one.

    .venv/bin/python bench/checkpoint_bench.py [--files 18000] [--turns 10] [--first-runs 3] [--quick]
        [--one-line-files]

Trees: a small committed repository (200 files) and an ~18k-file tree (--files, ~90 MB of code-like text),
committed, untracked (`git init`, nothing committed) and outside git. For each implementation and tree: the
first snapshot on an empty store, a snapshot per turn after a turn edits 1-3 files (modify, create, delete,
as a shell command would), an undo of the last turn (checked byte-identical), and the bytes each left in the
user's .git and in Ghostline's data dir. The new store's first snapshot is taken --first-runs times, each on an
empty store (the median shown, every run in the JSON). It also primes itself from run start (in the background,
while the model answers): "prime" is how long that takes, "first after prime" the first snapshot then.
Each workspace is a fresh copy of its template, synced to disk before it is measured.
The baseline is sandbox/checkpoints.py as of BASELINE_REV, loaded with `git show`, in the same run.
Prints a table and the old/new ratios; writes bench/out/checkpoint_bench.json. Targets: a turn <= 30 ms on
the big trees, the first snapshot of the big untracked tree <= 0.5 s, nothing written into .git. Timings are
medians (min in the JSON); on a busy machine they grow, so the load average is printed with the table, and
"cpu" (this process and its git children) approximates what a turn costs on an idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ghostline.sandbox.checkpoints import Checkpoints  # noqa: E402

BASELINE_REV = "4eb018b"  # the last commit whose checkpoints ran `git add -A` into the user's repository
TARGET_TURN_MS = 30.0
TARGET_FIRST_UNTRACKED_S = 0.5


def git(cwd: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=b", "-c", "user.email=b@b", "-c", "gc.auto=0", *args]
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def generate(root: Path, n: int, seed: int, one_line: bool = False) -> int:
    """n files of code-like text (lines drawn from a shared pool, log-normal sizes; `one_line`: a line each, as
    bench/agent_overhead.py's tree has) in a few hundred dirs."""
    rnd = random.Random(seed)
    words = ["def", "return", "self", "import", "class", "for", "in", "if", "else", "None", "=", "(", ")"]
    words += [f"name{k}" for k in range(2000)]
    pool = [(" " * (4 * rnd.randrange(4)) + " ".join(rnd.choices(words, k=rnd.randrange(2, 12))) + "\n")
            .encode() for _ in range(20000)]
    dirs, total = [root], 0
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if rnd.random() < 0.04 or len(dirs) < 5:
            parent = rnd.choice(dirs[-50:])
            if len(parent.relative_to(root).parts) < 5:
                dirs.append(parent / f"d{len(dirs)}")
                dirs[-1].mkdir()
        size, out = int(min(200_000, rnd.lognormvariate(8.0, 1.0))), [f"# file {i}\n".encode()]
        while sum(map(len, out)) < size:
            out.extend(rnd.choices(pool, k=16))
        data = out[0] if one_line else b"".join(out)  # the same draws either way: the same directories
        (rnd.choice(dirs[-30:]) / f"f{i}.py").write_bytes(data)
        total += len(data)
    return total


def templates(base: Path, files: int, one_line: bool = False) -> dict[str, Path]:
    tree = base / "tree"
    size = generate(tree, files, 1, one_line)
    print(f"generated {files} files, {size / 2**20:.0f} MB", flush=True)
    small = base / "small"
    generate(small, 200, 2)
    out = {}
    for name, src, commit in (("small", small, True), ("big-committed", tree, True),
                              ("big-untracked", tree, False), ("big-plain", tree, None)):
        d = base / f"tpl-{name}"
        shutil.copytree(src, d, symlinks=True)
        if commit is not None:
            git(d, "init", "-q", "-b", "main")
        if commit:
            git(d, "add", "-A")
            git(d, "commit", "-qm", "init")
            git(d, "gc", "-q")  # packed, as in a clone
        out[name] = d
    return out


def disk_bytes(d: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(d):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def load_baseline() -> type | None:
    try:
        src = subprocess.run(["git", "show", f"{BASELINE_REV}:sandbox/checkpoints.py"], cwd=REPO, check=True,
                             capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("checkpoints_baseline", loader=None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    exec(compile(src, f"{BASELINE_REV}:sandbox/checkpoints.py", "exec"), mod.__dict__)  # noqa: S102
    return mod.Checkpoints


def edit_turn(ws: Path, rnd: random.Random, files: list[Path], turn: int) -> None:
    """What a turn's shell command might do: modify 1-2 files, sometimes create or delete one."""
    for p in rnd.sample(files, rnd.randint(1, 2)):
        with open(p, "ab") as f:
            f.write(f"# turn {turn}\n".encode())
    if turn % 3 == 0:
        new = ws / f"new_{turn}.py"
        new.write_text(f"created in turn {turn}\n")
        files.append(new)
    elif turn % 3 == 1 and len(files) > 10:
        files.pop(rnd.randrange(len(files))).unlink()


def cpu_ms() -> float:
    """CPU time of this process and its finished children (git): about what it costs on an idle machine."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime) * 1000


def state(ws: Path, paths: list[Path]) -> dict[str, str | None]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths}


def run_one(impl: str, cls: type, tpl: Path, work: Path, turns: int, first_runs: int) -> dict:
    ws = work / "ws"
    shutil.copytree(tpl, ws, symlinks=True)
    if (ws / ".git").exists():  # the copy has new inodes: refresh the index as the user's `git status` would
        git(ws, "update-index", "-q", "--refresh")
    # A user's files are on disk, not ~100 MB of dirty pages being written back while the snapshot reads them
    # (on 2 cores the kernel's writeback threads took a third of the first snapshot's time).
    os.sync()
    data = work / "data"
    os.environ["GHOSTLINE_DATA_DIR"] = str(data)
    git_before = disk_bytes(ws / ".git") if (ws / ".git").exists() else 0
    rnd = random.Random(7)
    files = sorted(p for p in ws.rglob("*.py") if ".git" not in p.parts)
    row: dict = {}
    kwargs = {"prime": False} if impl == "new" else {}
    firsts = []
    for attempt in range(first_runs if impl == "new" else 1):  # the old one writes into .git: once
        if attempt:
            shutil.rmtree(data)
        c, t = cpu_ms(), time.perf_counter()
        cp = cls(ws, session="bench", **kwargs)
        assert cp.snapshot("bench:0"), f"{impl}: the first snapshot failed"
        firsts.append((time.perf_counter() - t, cpu_ms() - c))
    row["first_s"], row["first_cpu_ms"] = sorted(firsts)[len(firsts) // 2]  # the median run
    row["first_runs_s"] = [round(s, 4) for s, _ in firsts]
    if impl == "new":  # again on an empty store, primed from "run start" as an agent run does
        shutil.rmtree(data)
        t = time.perf_counter()
        cp = cls(ws, session="bench")
        cp.prime(wait=True)
        row["prime_s"] = time.perf_counter() - t
        t = time.perf_counter()
        cp.snapshot("bench:0")
        row["first_after_prime_s"] = time.perf_counter() - t
    times, cpu = [], []
    for i in range(1, turns + 1):
        edit_turn(ws, rnd, files, i)
        c, t = cpu_ms(), time.perf_counter()
        cp.snapshot(f"bench:{i}")
        times.append((time.perf_counter() - t) * 1000)
        cpu.append(cpu_ms() - c)
    before = state(ws, files)
    edit_turn(ws, rnd, files, turns + 1)
    t = time.perf_counter()
    cp.undo("bench", 1)
    row["undo_s"] = time.perf_counter() - t
    row["undo_byte_identical"] = state(ws, [Path(p) for p in before]) == before and not any(
        p.exists() for p in files if str(p) not in before)
    row.update(turn_median_ms=statistics.median(times), turn_p90_ms=sorted(times)[int(len(times) * 0.9) - 1],
               turn_min_ms=min(times), turn_cpu_ms=statistics.median(cpu), turns=turns,
               git_bytes_added=(disk_bytes(ws / ".git") - git_before) if (ws / ".git").exists() else 0,
               store_bytes=disk_bytes(data))
    shutil.rmtree(work)
    return row


def fmt_s(x: float | None) -> str:
    return "-" if x is None else (f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s")


def fmt_b(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


def print_table(results: dict) -> None:
    cols = ["tree", "impl", "first", "first cpu", "prime", "1st after prime", "turn med", "turn cpu", "undo",
            "ok", ".git +", "store"]
    line = "{:<14}{:<5}" + "{:>10}" * 3 + "{:>16}" + "{:>10}" * 3 + "{:>4}" + "{:>10}" * 2
    print(line.format(*cols))
    for tree, rows in results.items():
        for impl, r in rows.items():
            print(line.format(
                tree, impl, fmt_s(r["first_s"]), fmt_s(r["first_cpu_ms"] / 1000), fmt_s(r.get("prime_s")),
                fmt_s(r.get("first_after_prime_s")), f"{r['turn_median_ms']:.1f} ms",
                f"{r['turn_cpu_ms']:.1f} ms", fmt_s(r["undo_s"]), "ok" if r["undo_byte_identical"] else "NO",
                fmt_b(r["git_bytes_added"]), fmt_b(r["store_bytes"])))


def ratios(results: dict) -> dict:
    out = {}
    for tree, rows in results.items():
        if "old" not in rows:
            continue
        old, new = rows["old"], rows["new"]
        out[tree] = {k: round(old[k] / max(new[k], 1e-9), 1) for k in ("first_s", "turn_median_ms", "undo_s")}
        print(f"old/new {tree:<14} first x{out[tree]['first_s']}  turn x{out[tree]['turn_median_ms']}  "
              f"undo x{out[tree]['undo_s']}  .git bytes {fmt_b(old['git_bytes_added'])} -> "
              f"{fmt_b(new['git_bytes_added'])}")
    return out


def git_status_ms(tpl: Path, work: Path, runs: int = 15) -> dict:
    """The floor for comparison: one plain `git status` over the same tree (every snapshot must look at every
    file too, without a file-system monitor)."""
    ws = work / "status"
    shutil.copytree(tpl, ws, symlinks=True)
    git(ws, "status", "--porcelain")
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        git(ws, "status", "--porcelain")
        times.append((time.perf_counter() - t) * 1000)
    shutil.rmtree(ws)
    return {"median_ms": statistics.median(times), "min_ms": min(times)}


def verdicts(results: dict) -> list[str]:
    lines = []
    for tree, rows in results.items():
        new = rows["new"]
        if tree.startswith("big"):
            ok = new["turn_median_ms"] <= TARGET_TURN_MS
            lines.append(f"{tree}: turn {new['turn_median_ms']:.1f} ms (target <= {TARGET_TURN_MS:.0f}) "
                         f"{'ok' if ok else 'OVER'}; CPU {new['turn_cpu_ms']:.1f} ms")
        if new["git_bytes_added"]:
            lines.append(f"{tree}: {fmt_b(new['git_bytes_added'])} written into .git: OVER")
    if "big-untracked" in results:
        r = results["big-untracked"]["new"]
        for key, what in (("first_s", "cold"), ("first_after_prime_s", "after the prime")):
            ok = r[key] <= TARGET_FIRST_UNTRACKED_S
            lines.append(f"big-untracked: first snapshot {what} {fmt_s(r[key])} (target <= "
                         f"{TARGET_FIRST_UNTRACKED_S} s) {'ok' if ok else 'OVER'}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=18000)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="2000 files, 4 turns (smoke test)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--first-runs", type=int, default=3,
                    help="first snapshots on an empty store per tree (the median is shown)")
    ap.add_argument("--one-line-files", action="store_true",
                    help="files of one line each (the shape of bench/agent_overhead.py's tree), not ~5 KB of code")
    args = ap.parse_args()
    files, turns = (2000, 4) if args.quick else (args.files, args.turns)
    baseline = None if args.no_baseline else load_baseline()
    if baseline is None and not args.no_baseline:
        print(f"(baseline {BASELINE_REV}:sandbox/checkpoints.py not found: new implementation only)")
    impls = {"old": baseline, "new": Checkpoints} if baseline else {"new": Checkpoints}
    base = Path(tempfile.mkdtemp(prefix="ckpt-bench-"))
    saved_env = os.environ.get("GHOSTLINE_DATA_DIR")
    try:
        tpls = templates(base, files, args.one_line_files)
        status = git_status_ms(tpls["big-committed"], base)
        results: dict = {}
        for tree, tpl in tpls.items():
            for impl, cls in impls.items():
                work = base / f"run-{tree}-{impl}"
                results.setdefault(tree, {})[impl] = run_one(impl, cls, tpl, work, turns, args.first_runs)
                print(f"  {tree} {impl}: done", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if saved_env is None:
            os.environ.pop("GHOSTLINE_DATA_DIR", None)
        else:
            os.environ["GHOSTLINE_DATA_DIR"] = saved_env
    print()
    print_table(results)
    print(f"reference: `git status` on big-committed: median {status['median_ms']:.1f} ms, "
          f"min {status['min_ms']:.1f} ms")
    rat = ratios(results)
    checks = verdicts(results)
    print("\n".join(checks))
    load = os.getloadavg()[0]
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "checkpoint_bench.json").write_text(json.dumps(
        {"files": files, "one_line_files": args.one_line_files, "turns": turns, "baseline_rev": BASELINE_REV if baseline else None,
         "load_average": round(load, 2), "cpus": os.cpu_count(), "results": results,
         "ratios_old_over_new": rat, "checks": checks, "git_status_big_committed": status}, indent=2))
    busy = "; the machine is busy: timings are above the idle cost" if load > (os.cpu_count() or 1) / 2 \
        else ""
    print(f"wrote {out / 'checkpoint_bench.json'} (load average {load:.1f} on {os.cpu_count()} CPUs{busy})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
