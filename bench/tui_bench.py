"""TUI benchmark: the real `agent` console script in a pseudo-terminal against tests/fakeserver.py.

    .venv/bin/python bench/tui_bench.py [--words 3000] [--rate 600] [--launches 5] [--size 120x36] [--repeat N]

Measures
* launch: `agent` (bare, as a user starts it) to the input box's first paint (its placeholder appears on the
  screen), with the CPU time the process had used by then (the part a loaded machine cannot stretch), and to the
  session being ready (the footer says "ready");
* early keys: a message typed (with Enter) right after the process starts, before anything is painted — does
  it reach the model, and how long after launch;
* streaming: an answer of N words of Markdown at about R characters/s: bytes written to the terminal per
  character of answer, CPU of the agent process (utime+stime from /proc, all its threads) as % of one core,
  screen clears; for the TUI, for the TUI with its frame budget off (GHOSTLINE_TUI_FRAME_MS=0, the baseline
  measured in the same run), and for `agent run`'s plain text renderer;
* `agent --version` wall time.

Targets: prompt painted < 500 ms; early keys arrive; <= 10 bytes/char and <= 15 % of a core while streaming.
Prints a table and writes bench/out/tui_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import random
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.agent.tui.vt import VirtualTerminal  # noqa: E402
from tests.fakeserver import FakeModelServer, reply  # noqa: E402

MODEL = "anthropic:claude-sonnet-5-5"
PLACEHOLDER = "Enter sends"
READY = "ready ·"
START_MARK = "ZZSTARTZZ"
END_MARK = "ZZENDZZ"
EARLY_MESSAGE = "typed before the first paint"
VOCAB = ("the agent reads file and runs tests before it changes code so that every edit is checked against "
         "what repository already does a function returns value when called with two numbers we keep small "
         "steps each change stays reviewable output shows which lines moved where").split()
TARGETS = {"prompt_ms": 500.0, "bytes_per_char": 10.0, "cpu_pct": 15.0}


def answer_text(words: int, seed: int = 7) -> str:
    """Deterministic Markdown prose: paragraphs, a heading now and then, lists, inline and fenced code."""
    rng = random.Random(seed)
    out: list[str] = [START_MARK]
    n = 0
    section = 0
    while n < words:
        if n and rng.random() < 0.15:
            section += 1
            out.append(f"## Section {section}")
        if rng.random() < 0.2:
            items = [" ".join(rng.choice(VOCAB) for _ in range(rng.randint(4, 9))) for _ in range(4)]
            out.append("\n".join(f"- {i}" for i in items))
            n += sum(len(i.split()) for i in items)
        elif rng.random() < 0.08:
            out.append("```python\n" + "\n".join(f"def step_{k}(x):\n    return x + {k}" for k in range(3)) + "\n```")
            n += 18
        else:
            size = rng.randint(40, 90)
            para = [rng.choice(VOCAB) for _ in range(size)]
            para[rng.randrange(size)] = "`read_file()`"
            out.append(" ".join(para).capitalize() + ".")
            n += size
    out.append(END_MARK)
    return "\n\n".join(out)


@dataclass
class Child:
    """A process on a pseudo-terminal: what it writes is counted and applied to a virtual screen, which is where
    the benchmark looks for text (an app that writes only what changed may write a word in pieces)."""

    pid: int
    fd: int
    started: float
    vt: VirtualTerminal
    out: bytearray = field(default_factory=bytearray)

    def pump(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            return False
        self.out += data
        self.vt.feed(data)
        return bool(data)

    def wait_for(self, pred, timeout: float, what: str) -> float:
        """Pump output until pred(the screen's text) holds; returns the time it first held."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.vt.screen()):
                return time.monotonic()
            if not self.pump(0.01):
                break
        if pred(self.vt.screen()):
            return time.monotonic()
        raise RuntimeError(f"timed out waiting for {what}; the screen said:\n{self.vt.screen()}")

    def cpu_s(self) -> float:
        """utime + stime of the process so far (all threads), from /proc."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def finish(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status, _ = os.wait4(self.pid, os.WNOHANG)
            if done:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            self.pump(0.05)
        os.kill(self.pid, signal.SIGKILL)
        _, status, _ = os.wait4(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def spawn(argv: list[str], env: dict[str, str], cwd: Path, size: tuple[int, int],
          type_first: bytes = b"") -> Child:
    started = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir(cwd)
            import fcntl
            import termios

            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    child = Child(pid, fd, started, VirtualTerminal(*size))
    if type_first:
        child.write(type_first)  # as a user who starts typing at once: before the first paint
    return child


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, srv: FakeModelServer) -> None:
        self.args = args
        self.srv = srv
        self.size = tuple(int(x) for x in args.size.split("x"))
        self.agent = str(Path(sys.executable).parent / "agent")
        self.repo = tmp / "repo"
        self.repo.mkdir()
        (self.repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
        for cmd in (["init", "-q"], ["add", "-A"], ["-c", "user.email=b@e", "-c", "user.name=b", "commit", "-qm", "i"]):
            subprocess.run(["git", *cmd], cwd=self.repo, check=True)
        self.env = {**os.environ, "TERM": "xterm-256color", "ANTHROPIC_BASE_URL": srv.anthropic_base_url,
                    "ANTHROPIC_API_KEY": "k", "XDG_DATA_HOME": str(tmp / "data"),
                    "XDG_CONFIG_HOME": str(tmp / "cfg"), "GHOSTLINE_EMBEDDINGS": "off",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        # As a user has it: compiled modules cached (a checkout run with PYTHONDONTWRITEBYTECODE compiles the
        # project's modules on every start).
        for name in ("CI", "GHOSTLINE_MODEL", "TEXTUAL_DRIVER", "GHOSTLINE_TUI_FRAME_MS", "COLUMNS", "LINES",
                     "PYTHONDONTWRITEBYTECODE"):
            self.env.pop(name, None)

    def tui(self, env: dict[str, str] | None = None, type_first: bytes = b"") -> Child:
        return spawn([self.agent, "--model", MODEL, "--approval", "auto"], {**self.env, **(env or {})},
                     self.repo, self.size, type_first)

    def quit(self, child: Child) -> int:
        child.write(b"\x04")  # Ctrl+D on the empty input
        return child.finish()

    def launch(self) -> dict[str, float]:
        child = self.tui()
        painted = child.wait_for(lambda t: PLACEHOLDER in t, 60, "the input box")
        cpu = child.cpu_s()  # what the machine's load cannot stretch: the work done before the paint
        ready = child.wait_for(lambda t: READY in t, 60, "the ready footer")
        code = self.quit(child)
        return {"prompt_ms": (painted - child.started) * 1000, "prompt_cpu_ms": cpu * 1000,
                "ready_ms": (ready - child.started) * 1000, "exit_code": code}

    def early_keys(self) -> dict[str, object]:
        before = len(self.srv.requests)
        child = self.tui(type_first=EARLY_MESSAGE.encode() + b"\r")
        arrived = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and arrived is None:
            child.pump(0.02)
            if any(EARLY_MESSAGE in json.dumps(r.body.get("messages", [])) for r in self.srv.requests[before:]):
                arrived = time.monotonic()
        if arrived is not None:
            child.wait_for(lambda t: "Got it." in t, 30, "the reply")
        code = self.quit(child)
        return {"arrived": arrived is not None,
                "arrived_ms": None if arrived is None else (arrived - child.started) * 1000, "exit_code": code}

    def stream(self, name: str, argv: list[str] | None = None, env: dict[str, str] | None = None) -> dict:
        text = answer_text(self.args.words)
        if argv is None:
            child = self.tui(env)
            child.wait_for(lambda t: READY in t, 60, "the ready footer")
            child.write(b"stream please\r")
        else:
            child = spawn(argv, self.env, self.repo, self.size)
        # From the answer's first paint to its last: what the answer costs, not the launch.
        t0 = child.wait_for(lambda t: START_MARK in t, 60, f"the answer ({name})")
        mark, cpu0 = len(child.out), child.cpu_s()
        t1 = child.wait_for(lambda t: END_MARK in t, 600, f"the end of the answer ({name})")
        cpu1 = child.cpu_s()
        written = len(child.out) - mark
        clears = child.out[mark:].count(b"\x1b[2J")
        code = self.quit(child) if argv is None else child.finish()
        wall = t1 - t0
        return {"name": name, "chars": len(text), "wall_s": wall, "chars_per_s": len(text) / wall,
                "bytes": written, "bytes_per_char": written / len(text), "cpu_s": cpu1 - cpu0,
                "cpu_pct": 100 * (cpu1 - cpu0) / wall, "clears": clears, "exit_code": code}


def median_row(runs: list[dict]) -> dict:
    """One row from repeated runs: the median of each figure (a shared machine's load varies between runs)."""
    row = dict(runs[0])
    for key in ("wall_s", "chars_per_s", "bytes", "bytes_per_char", "cpu_s", "cpu_pct", "clears"):
        row[key] = statistics.median(r[key] for r in runs)
    row["runs"] = len(runs)
    row["cpu_pct_each"] = [round(r["cpu_pct"], 1) for r in runs]
    return row


def script_for(args: argparse.Namespace):
    chunk = 6
    delay = chunk / args.rate

    def script(body: dict, provider: str):
        last = json.dumps(body.get("messages", [])[-1:])
        if "stream please" in last:
            return reply(answer_text(args.words), chunk_size=chunk, chunk_delay_s=delay)
        return reply("Got it.")

    return script


def version_ms(agent: str, env: dict[str, str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([agent, "--version"], env=env, stdout=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--words", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=600.0, help="characters per second of the streamed answer")
    ap.add_argument("--launches", type=int, default=5)
    ap.add_argument("--size", default="120x36")
    ap.add_argument("--repeat", type=int, default=1, help="stream runs per renderer (the table shows medians)")
    ap.add_argument("--skip-stream", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeModelServer(script_for(args)) as srv:
        srv._httpd.handle_error = lambda *a: None  # a client that hangs up after the last event is no news
        b = Bench(args, Path(tmp), srv)
        result: dict = {"size": args.size, "words": args.words, "rate": args.rate, "cpu_count": os.cpu_count(),
                        "load_avg": os.getloadavg()}
        result["version_ms"] = version_ms(b.agent, b.env)
        launches = [b.launch() for _ in range(args.launches)]
        result["launches"] = launches
        result["prompt_ms"] = statistics.median(x["prompt_ms"] for x in launches)
        result["prompt_cpu_ms"] = statistics.median(x["prompt_cpu_ms"] for x in launches)
        result["ready_ms"] = statistics.median(x["ready_ms"] for x in launches)
        result["early_keys"] = b.early_keys()
        if not args.skip_stream:
            cases = [("agent (TUI)", {}), ("agent, frame budget off", {"env": {"GHOSTLINE_TUI_FRAME_MS": "0"}}),
                     ("agent run (text)", {"argv": [b.agent, "run", "--model", MODEL, "stream please"]})]
            runs = [[b.stream(name, **kw) for name, kw in cases] for _ in range(args.repeat)]  # interleaved
            rows = [median_row([r[i] for r in runs]) for i in range(len(cases))]
            base = rows[1]
            for r in rows:
                r["bytes_ratio"] = r["bytes_per_char"] / base["bytes_per_char"]
                r["cpu_ratio"] = r["cpu_pct"] / base["cpu_pct"] if base["cpu_pct"] else None
            result["stream"] = rows
        result["load_avg_after"] = os.getloadavg()
    report(result)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tui_bench.json").write_text(json.dumps(result, indent=2))


def report(r: dict) -> None:
    ek = r["early_keys"]
    arrived = f"yes, at {ek['arrived_ms']:.0f} ms" if ek["arrived"] else "NO"
    print(f"terminal {r['size']}, {r['cpu_count']} cores, load {r['load_avg'][0]:.1f}")
    print(f"agent --version            {r['version_ms']:8.0f} ms")
    print(f"launch -> prompt painted   {r['prompt_ms']:8.0f} ms   (median of {len(r['launches'])}; target < "
          f"{TARGETS['prompt_ms']:.0f}; {r['prompt_cpu_ms']:.0f} ms of CPU by then)")
    print(f"launch -> session ready    {r['ready_ms']:8.0f} ms")
    print(f"keys typed at launch       {arrived}")
    if "stream" not in r:
        return
    print(f"\nstream: {r['words']} words at ~{r['rate']:.0f} chars/s, median of {r['stream'][0]['runs']} "
          f"(targets <= {TARGETS['bytes_per_char']:.0f} bytes/char, <= {TARGETS['cpu_pct']:.0f}% of a core)")
    print(f"{'renderer':<26} {'chars/s':>8} {'bytes':>10} {'bytes/char':>10} {'x base':>7} {'cpu %':>6} "
          f"{'x base':>7} {'clears':>6}")
    for s in r["stream"]:
        cpu_ratio = f"{s['cpu_ratio']:.2f}" if s["cpu_ratio"] is not None else "-"
        print(f"{s['name']:<26} {s['chars_per_s']:>8.0f} {s['bytes']:>10,.0f} {s['bytes_per_char']:>10.1f} "
              f"{s['bytes_ratio']:>7.2f} {s['cpu_pct']:>6.1f} {cpu_ratio:>7} {s['clears']:>6.0f}")


if __name__ == "__main__":
    main()
