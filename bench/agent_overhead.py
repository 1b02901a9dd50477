"""Agent overhead: what the agent itself costs around the model, on a scripted task against a fake server.

    .venv/bin/python bench/agent_overhead.py [--runs 3] [--files 18000] [--no-claude] [--fresh]
                                             [--baseline DIR]

The fake model server (tests/fakeserver.py, the Anthropic Messages streaming protocol) answers at once with a
scripted task: grep, read two files, edit both, run a test command, answer. It replies to each agent in its
own tool vocabulary, told apart by the tools a request offers: Ghostline's grep/read/edit/bash, Claude Code's
Read/Edit/Bash (and Grep when offered, else grep through Bash). Since the model costs nothing, every second
measured is the agent's: launch -> first request, the gap between a response's end and the next request after
each tool, last response -> process exit, total wall time, request count and bytes sent, the bytes a run wrote
into the workspace's .git (the most of any run) and the size of Ghostline's checkpoint store after it (which
outlives runs: the untracked tree's first snapshot, taken in the warm-up run, is most of it).

Workspaces: a small git repository, and the same plus a generated tree of --files files, committed and
untracked (built once under bench/.cache/, --fresh rebuilds). `claude` (npm @anthropic-ai/claude-code), when
on PATH, runs the same task on the same server, alternating with Ghostline run by run; the table shows the
ratios. "edit - read gap" estimates the per-writing-turn checkpoint cost from outside (an edit turn's gap less
a read turn's). --baseline DIR also runs the Ghostline of another checkout (e.g. `git worktree add` of the
commit before a change) in the same alternation: a before/after under the same load. CPU is user + system time
of the agent and every process it waited for: under load it moves much less than wall time. Also times
`agent --version` and `agent --help`. Writes bench/out/agent_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.checkpoint_bench import disk_bytes  # noqa: E402
from ghostline.agent import warm  # noqa: E402
from tests.fakeserver import FakeModelServer, Reply, _Handler, reply  # noqa: E402

MODEL = "claude-sonnet-4-5"
TASK = "Rename the function greet to welcome everywhere, then run check.py."
GREETING = 'def greet(name):\n    return "Hello, " + name\n'
FAREWELL = 'from app.greeting import greet\n\n\ndef farewell(name):\n    return greet(name) + ", goodbye"\n'
RENAME_DEF = ("def greet(", "def welcome(")
RENAME_IMPORT = ("import greet\n", "import welcome\n")
CHECK = 'from app.farewell import farewell\n\nassert farewell("x") == "Hello, x, goodbye"\nprint("ok")\n'
# The tool each scripted reply calls, as the gap after it is labelled; the seventh reply is the answer.
GAP_LABELS = ("grep", "read 1", "read 2", "edit 1", "edit 2", "bash")


# -- the scripted task ---------------------------------------------------------------------------------------


def _ghostline_call(step: int) -> tuple[str, dict[str, Any]] | None:
    return [
        ("grep", {"pattern": "greet"}),
        ("read", {"path": "app/greeting.py"}),
        ("read", {"path": "app/farewell.py"}),
        ("edit", {"path": "app/greeting.py", "old_string": RENAME_DEF[0], "new_string": RENAME_DEF[1]}),
        ("edit", {"path": "app/farewell.py", "old_string": RENAME_IMPORT[0], "new_string": RENAME_IMPORT[1]}),
        ("bash", {"command": "python3 check.py"}),
    ][step] if step < 6 else None


def _claude_call(step: int, ws: Path, has_grep: bool) -> tuple[str, dict[str, Any]] | None:
    grep = (("Grep", {"pattern": "greet", "path": str(ws), "output_mode": "content"}) if has_grep else
            ("Bash", {"command": "grep -rn --exclude-dir=.git greet .", "description": "Find greet"}))
    return [
        grep,
        ("Read", {"file_path": str(ws / "app/greeting.py")}),
        ("Read", {"file_path": str(ws / "app/farewell.py")}),
        ("Edit", {"file_path": str(ws / "app/greeting.py"), "old_string": RENAME_DEF[0],
                  "new_string": RENAME_DEF[1]}),
        ("Edit", {"file_path": str(ws / "app/farewell.py"), "old_string": RENAME_IMPORT[0],
                  "new_string": RENAME_IMPORT[1]}),
        ("Bash", {"command": "python3 check.py", "description": "Run the check"}),
    ][step] if step < 6 else None


@dataclass
class Entry:
    """One request as the server saw it."""

    received: float
    done: float = 0.0
    agent: str | None = None  # None: a side request (no tools offered)
    step: int = -1
    nbytes: int = 0


class Script:
    """Answers each agent in its own vocabulary; the step is the number of assistant messages so far."""

    def __init__(self) -> None:
        self.workspace = Path(".")
        self.local = threading.local()

    def __call__(self, body: dict[str, Any], provider: str) -> Reply:
        tools = {t.get("name") for t in body.get("tools") or []}
        agent = "claude" if "Read" in tools else "ghostline" if "read" in tools else None
        step = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
        self.local.agent, self.local.step = agent, step
        if agent is None:
            return reply(text="ok")
        call = (_ghostline_call(step) if agent == "ghostline"
                else _claude_call(step, self.workspace, "Grep" in tools))
        if call is None:
            return reply(text="Renamed greet to welcome in both files; check.py passes.")
        return reply(text="", tool_calls=[call], chunk_size=64)


class TimedServer(FakeModelServer):
    """The fake server, recording when each request arrived and when its response was fully written."""

    def __init__(self, script: Script) -> None:
        super().__init__(script)
        self.timeline: list[Entry] = []

    def start(self) -> TimedServer:
        from http.server import ThreadingHTTPServer

        server = self

        class Handler(_Handler):
            fake = server

            def do_POST(self) -> None:  # noqa: N802
                size = int(self.headers.get("content-length") or 0)
                entry = Entry(received=time.perf_counter(), nbytes=size)
                super().do_POST()
                entry.done = time.perf_counter()
                local = server.script.local  # type: ignore[union-attr]
                entry.agent, entry.step = getattr(local, "agent", None), getattr(local, "step", -1)
                with server._lock:
                    server.timeline.append(entry)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()
        return self


# -- workspaces ----------------------------------------------------------------------------------------------


def _git(ws: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(ws), *args], check=True, capture_output=True)


def _write_small_repo(ws: Path) -> None:
    (ws / "app").mkdir(parents=True, exist_ok=True)
    (ws / "app/__init__.py").write_text("")
    (ws / "check.py").write_text(CHECK)
    (ws / ".gitignore").write_text("__pycache__/\n")
    (ws / "README.md").write_text("# demo\n\nA tiny project for the agent overhead benchmark.\n")
    reset_task_files(ws)


def _generate_tree(root: Path, files: int) -> None:
    per_dir = 100
    for i in range(files):
        d = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"m{i % per_dir:03d}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")


def build_workspace(base: Path, kind: str, files: int, fresh: bool) -> Path:
    """kind: small | committed | untracked (the generated tree committed, or left untracked)."""
    ws = base / (kind if kind == "small" else f"{kind}-{files}")
    marker = ws / ".bench-ready"
    if marker.exists() and not fresh:
        return ws
    shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir(parents=True)
    _git(ws, "init", "-q")
    _git(ws, "config", "user.email", "bench@example.com")
    _git(ws, "config", "user.name", "bench")
    _write_small_repo(ws)
    if kind != "small":
        _generate_tree(ws / "gen", files)
    if kind == "untracked":
        (ws / ".git/info/exclude").write_text(".bench-ready\n")
        _git(ws, "add", "app", "check.py", ".gitignore", "README.md")
    else:
        (ws / ".git/info/exclude").write_text(".bench-ready\n")
        _git(ws, "add", "-A")
    _git(ws, "commit", "-q", "-m", "init")
    marker.write_text("")
    return ws


def reset_task_files(ws: Path) -> None:
    (ws / "app/greeting.py").write_text(GREETING)
    (ws / "app/farewell.py").write_text(FAREWELL)
    shutil.rmtree(ws / "app/__pycache__", ignore_errors=True)


def task_done(ws: Path) -> bool:
    return ("def welcome(" in (ws / "app/greeting.py").read_text()
            and "import welcome" in (ws / "app/farewell.py").read_text())


# -- running the agents --------------------------------------------------------------------------------------


def agent_exe() -> list[str]:
    exe = Path(sys.executable).parent / "agent"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ghostline.agent"]


@dataclass(frozen=True)
class Agent:
    label: str  # the table's column
    vocabulary: str  # "ghostline" | "claude": the tools its requests offer (see Script)
    checkout: Path | None = None  # Ghostline: the checkout whose code runs
    warm: bool = False  # Ghostline: runs are forks of the warm process (agent/warm.py), which the warm-up run starts


def command(agent: Agent, srv: FakeModelServer, home: Path) -> tuple[list[str], dict[str, str]]:
    if agent.vocabulary == "claude":
        return claude_cmd(srv, home)
    return ghostline_cmd(srv, home, agent.checkout or REPO, agent.warm)


def ghostline_cmd(srv: FakeModelServer, home: Path, checkout: Path, warm: bool = False
                  ) -> tuple[list[str], dict[str, str]]:
    # Its directories are found as a user's are (platformdirs, from HOME), as Claude Code's are: its own home,
    # a state dir of its own for the warm runs (the warm process is keyed by it).
    env = {**os.environ, "PYTHONPATH": str(checkout), "HOME": str(home), "GHOSTLINE_EMBEDDINGS": "off",
           "ANTHROPIC_API_KEY": "sk-ant-bench", "CI": "1", "GHOSTLINE_WARM": "1" if warm else "0",
           "XDG_STATE_HOME": str(home / ("state-warm" if warm else "state"))}
    # Bytecode caches are written, as for any installed program: with PYTHONDONTWRITEBYTECODE set (some
    # sandboxes set it), every module changed since its last cache would be compiled again on every run.
    for name in ("GHOSTLINE_MODEL", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "PYTHONDONTWRITEBYTECODE",
                 "GHOSTLINE_DATA_DIR", "GHOSTLINE_CONFIG_DIR", "GHOSTLINE_STATE_DIR", "XDG_DATA_HOME",
                 "XDG_CONFIG_HOME"):
        env.pop(name, None)
    cmd = [*agent_exe(), "run", TASK, "-m", f"anthropic:{MODEL}", "--base-url", srv.anthropic_base_url,
           "-o", "json"]
    return cmd, env


def claude_cmd(srv: FakeModelServer, home: Path) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "HOME": str(home), "ANTHROPIC_BASE_URL": srv.anthropic_base_url,
           "ANTHROPIC_API_KEY": "sk-ant-bench", "IS_SANDBOX": "1", "DISABLE_AUTOUPDATER": "1",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    env.pop("ANTHROPIC_AUTH_TOKEN", None)
    cmd = ["claude", "-p", TASK, "--dangerously-skip-permissions", "--model", MODEL]
    return cmd, env


@dataclass
class Run:
    agent: str
    workspace: str
    rc: int
    done: bool
    wall: float
    first_request: float | None
    gaps: dict[str, float] = field(default_factory=dict)
    last_to_exit: float | None = None
    requests: int = 0
    side_requests: int = 0
    request_bytes: int = 0
    cpu: float = 0.0  # user + system seconds of the agent and every process it waited for
    git_bytes_added: int = 0  # what the run wrote into the workspace's .git
    store_bytes: int | None = None  # Ghostline's checkpoint stores after the run (they outlive it)


def run_once(agent: Agent, ws: Path, srv: TimedServer, home: Path) -> Run:
    reset_task_files(ws)
    srv.script.workspace = ws  # type: ignore[union-attr]
    cmd, env = command(agent, srv, home)
    with srv._lock:
        srv.timeline.clear()
    git_before = disk_bytes(ws / ".git")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ws, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=300)
    end = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(f"{agent.label} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-600:]}\n")
    with srv._lock:
        timeline = sorted(srv.timeline, key=lambda e: e.received)
    run = summarise(agent, ws.name, proc.returncode, task_done(ws), start, end, timeline)
    run.cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    run.git_bytes_added = disk_bytes(ws / ".git") - git_before
    if agent.vocabulary == "ghostline":
        run.store_bytes = disk_bytes(home / ".local" / "share" / "ghostline" / "checkpoints")
    return run


def summarise(agent: Agent, ws: str, rc: int, done: bool, start: float, end: float,
              timeline: list[Entry]) -> Run:
    main = [e for e in timeline if e.agent == agent.vocabulary]
    run = Run(agent.label, ws, rc, done, end - start, (timeline[0].received - start) if timeline else None,
              requests=len(main), side_requests=len(timeline) - len(main),
              request_bytes=sum(e.nbytes for e in timeline))
    for prev, nxt in zip(main, main[1:], strict=False):
        if 0 <= prev.step < len(GAP_LABELS):
            run.gaps[GAP_LABELS[prev.step]] = nxt.received - prev.done
    if main:
        run.last_to_exit = end - main[-1].done
    return run


# -- the table -----------------------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def metrics(runs: list[Run]) -> dict[str, float | None]:
    firsts = [r.first_request for r in runs if r.first_request is not None]
    out: dict[str, float | None] = {
        "launch -> first request (s)": _median(firsts),
        "launch -> first request, best run (s)": min(firsts) if firsts else None,
    }
    for label in GAP_LABELS:
        out[f"gap after {label} (s)"] = _median([r.gaps.get(label) for r in runs])
    out["edit - read gap, per writing turn (s)"] = _median([_edit_minus_read(r) for r in runs])
    out["last response -> exit (s)"] = _median([r.last_to_exit for r in runs])
    out["total wall (s)"] = _median([r.wall for r in runs])
    out["CPU, agent and its children (s)"] = _median([r.cpu for r in runs])
    out["requests (main + side)"] = _median([r.requests + r.side_requests for r in runs])
    out["request bytes (KiB)"] = _median([r.request_bytes / 1024 for r in runs])
    out[".git bytes written (KiB)"] = max((r.git_bytes_added / 1024 for r in runs), default=None)
    out["checkpoint store after (KiB)"] = _median([r.store_bytes / 1024 for r in runs if r.store_bytes is not None])
    out["task done (runs)"] = float(sum(r.done and r.rc == 0 for r in runs))
    return out


def _edit_minus_read(run: Run) -> float | None:
    """What a writing turn costs beyond a read turn (the checkpoint, mostly), from outside. The faster read is
    the baseline: work an agent does once in the background (Ghostline's token encoding loads during its
    second turn) lands in one of the reads' gaps and says nothing about reading."""
    edits = [v for k, v in run.gaps.items() if k.startswith("edit")]
    reads = [v for k, v in run.gaps.items() if k.startswith("read")]
    return statistics.mean(edits) - min(reads) if edits and reads else None


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"


def _ratio(a: float | None, b: float | None, key: str) -> str:
    return f"{a / b:.2f}" if a is not None and b not in (None, 0) and "done" not in key else "-"


def print_table(title: str, table: dict[str, dict[str, float | None]]) -> None:
    """One column per agent, then Ghostline's ratio to each other agent."""
    print(f"\n{title}")
    others = [label for label in table if label != "ghostline"]
    head = f"{'metric':<42}" + "".join(f" {label:>10}" for label in table)
    print(head + "".join(f" {'gl/' + label[:7]:>10}" for label in others))
    gl = table["ghostline"]
    for key in gl:
        line = f"{key:<42}" + "".join(f" {_fmt(col.get(key)):>10}" for col in table.values())
        print(line + "".join(f" {_ratio(gl.get(key), table[o].get(key), key):>10}" for o in others))


def time_command(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    subprocess.run(cmd, capture_output=True, env=env)
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env)
        ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(ms)


def cli_times(runs: int, baseline: Path | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, checkout in (("", REPO), ("baseline ", baseline)):
        if checkout is not None:
            env = {**os.environ, "PYTHONPATH": str(checkout)}
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # see ghostline_cmd
            for arg in ("--version", "--help"):
                out[f"{label}agent {arg} (ms)"] = time_command([*agent_exe(), arg], runs, env)
    if shutil.which("claude"):
        out["claude --version (ms)"] = time_command(["claude", "--version"], max(3, runs // 4), env)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="measured runs per agent and workspace")
    ap.add_argument("--files", type=int, default=18000, help="files in the generated tree")
    ap.add_argument("--workspaces", default="small,committed,untracked")
    ap.add_argument("--no-claude", action="store_true", help="Ghostline only, even when claude is installed")
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached workspaces")
    ap.add_argument("--baseline", type=Path, help="another Ghostline checkout, run alongside (before/after)")
    ap.add_argument("--no-warm", action="store_true", help="leave out the runs forked from the warm process")
    args = ap.parse_args()
    agents = [Agent("ghostline", "ghostline")]
    if not args.no_warm:
        agents.append(Agent("gl-warm", "ghostline", warm=True))
    if args.baseline is not None:
        agents.append(Agent("baseline", "ghostline", args.baseline.resolve()))
    if not args.no_claude and shutil.which("claude"):
        agents.append(Agent("claude", "claude"))
    cache = REPO / "bench/.cache/agent_overhead"
    home = Path(tempfile.mkdtemp(prefix="agent-overhead-"))
    load = os.getloadavg()[0]
    result: dict[str, Any] = {"agents": [a.label for a in agents], "runs": args.runs, "files": args.files,
                              "workspaces": {}, "loadavg_before": load, "cpu_count": os.cpu_count()}
    print(f"agents: {', '.join(a.label for a in agents)}; load average {load:.1f} on {os.cpu_count()} CPUs")
    script = Script()
    with TimedServer(script) as srv:
        for kind in args.workspaces.split(","):
            ws = build_workspace(cache, kind, args.files, args.fresh)
            for agent in agents:
                run_once(agent, ws, srv, home)  # warm-up: page cache, .pyc, first-run files
            runs: list[Run] = []
            for _ in range(args.runs):
                runs += [run_once(agent, ws, srv, home) for agent in agents]
            table = {a.label: metrics([r for r in runs if r.agent == a.label]) for a in agents}
            print_table(f"workspace: {ws.name} ({args.runs} runs each, medians)", table)
            result["workspaces"][ws.name] = {"medians": table, "runs": [r.__dict__ for r in runs]}
        for agent in agents:  # the warm servers this bench started (their key needs the server's address)
            if agent.warm:
                warm.query("stop", warm.socket_path(ghostline_cmd(srv, home, agent.checkout or REPO, True)[1]))
    cli = cli_times(20, args.baseline)
    print()
    for name, ms in cli.items():
        print(f"{name:<42} {ms:>10.1f}")
    result["cli_ms"] = cli
    result["loadavg_after"] = os.getloadavg()
    out = REPO / "bench/out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "agent_overhead.json").write_text(json.dumps(result, indent=2))
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
