"""Local telemetry of the completion daemon: one row per completion request in a SQLite file (WAL) beside the
daemon's pid and log files, and later the request's outcome (accepted, typed through, dismissed).

What is stored: time, request id, endpoint, a salted hash of the client id (the editor's document), the file
extension, the answer's source (model/classical/remote; "deadline" for the classical stand-in of a late model),
prompt and reused token counts, per-stage latency (queue, prompt/prefill, predict, first token, total), the
number of characters shown, whether it was cancelled (and why), and the outcome. Never any code: no prefix, suffix, completion text, file name or path. Nothing is
ever sent anywhere; `agent daemon stats` reads the file, `--no-telemetry` turns recording off.

The hot path only appends to an in-memory queue (`record`/`feedback`): a background thread writes the queue in
one transaction every `flush_s` seconds or every `batch` rows. The queue is bounded: when the disk cannot keep
up, new rows are dropped and counted (`counters["dropped"]`). At startup (in that thread) rows older than
`retention_days` or beyond the newest `max_rows` are pruned.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostline.daemon.paths import telemetry_path

log = logging.getLogger("ghostline.daemon.telemetry")

SCHEMA_VERSION = 1
EVENTS = ("accepted", "typed_through", "dismissed")
_EXT = re.compile(r"^\.[A-Za-z0-9_+-]{1,15}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    client TEXT NOT NULL DEFAULT '',
    ext TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    reused_tokens INTEGER NOT NULL DEFAULT 0,
    predicted_tokens INTEGER NOT NULL DEFAULT 0,
    queue_ms REAL NOT NULL DEFAULT 0,
    prompt_ms REAL NOT NULL DEFAULT 0,
    predict_ms REAL NOT NULL DEFAULT 0,
    ttft_ms REAL NOT NULL DEFAULT 0,
    total_ms REAL NOT NULL DEFAULT 0,
    chars_shown INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    cancel_reason TEXT NOT NULL DEFAULT '',
    error INTEGER NOT NULL DEFAULT 0,
    warmup INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,
    outcome_chars INTEGER,
    outcome_ts REAL
);
CREATE INDEX IF NOT EXISTS requests_rid ON requests (request_id);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    event TEXT NOT NULL,
    chars INTEGER NOT NULL DEFAULT 0,
    matched INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS feedback_ts ON feedback (ts);
CREATE TABLE IF NOT EXISTS secret_blocks (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS secret_blocks_ts ON secret_blocks (ts);
"""

_COLUMNS = ("ts", "request_id", "endpoint", "client", "ext", "source", "prompt_tokens", "reused_tokens",
            "predicted_tokens", "queue_ms", "prompt_ms", "predict_ms", "ttft_ms", "total_ms", "chars_shown",
            "cancelled", "cancel_reason", "error", "warmup")


@dataclass
class Record:
    """One completion request as the hot path hands it over. `client` and `filename` stay in memory: the writer
    stores only a salted hash of the one and the extension of the other."""

    request_id: str
    endpoint: str
    client: str = ""
    filename: str = ""
    source: str = ""
    prompt_tokens: int = 0
    reused_tokens: int = 0
    predicted_tokens: int = 0
    queue_ms: float = 0.0
    prompt_ms: float = 0.0
    predict_ms: float = 0.0
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    chars_shown: int = 0
    cancelled: bool = False
    cancel_reason: str = ""
    error: bool = False
    warmup: bool = False
    ts: float = field(default_factory=time.time)
    secret_kinds: list[str] = field(default_factory=list)  # a suggestion cut for a secret: its kind, never the text


def record_from(endpoint: str, req: Any, res: Any, total_ms: float, cancel_reason: str = "",
                secret_kinds: list[str] | None = None) -> Record:
    """A Record from an engine CompletionRequest and its CompletionResult (duck-typed)."""
    content = res.content if res.completions else ""
    cancelled = bool(res.cancelled)
    error = bool(res.error) and not res.completions
    return Record(
        request_id=req.request_id, endpoint=endpoint, client=req.client_id or "", filename=req.filename or "",
        # a deadline's classical stand-in is its own source: how often the model is too slow matters
        source="deadline" if getattr(res, "deadline_missed", False) else (res.source or ""), prompt_tokens=int(res.prompt_tokens), reused_tokens=int(res.tokens_reused),
        predicted_tokens=int(res.predicted_n), queue_ms=float(res.queue_ms), prompt_ms=float(res.prompt_ms),
        predict_ms=float(res.predicted_ms), ttft_ms=float(res.ttft_ms), total_ms=float(total_ms),
        chars_shown=0 if (cancelled or error) else len(content), cancelled=cancelled,
        cancel_reason=(cancel_reason or "cancelled") if cancelled else "", error=bool(res.error),
        warmup=req.n_predict == 0, secret_kinds=list(secret_kinds or []),
    )


def extension(filename: str) -> str:
    """The file extension ('.py'), lower-cased; '' when there is none or it does not look like one."""
    if not filename:
        return ""
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].split("?", 1)[0]
    if "." not in name.strip("."):
        return ""
    ext = "." + name.rsplit(".", 1)[-1].lower()
    return ext if _EXT.match(ext) else ""


class Telemetry:
    """The store's writer. `record`/`feedback` are cheap and thread-safe (an append to a bounded queue)."""

    def __init__(self, path: Path | str, *, flush_s: float = 1.0, batch: int = 256, max_pending: int = 10_000,
                 retention_days: float = 30.0, max_rows: int = 200_000):
        self.path = Path(path)
        self.flush_s = flush_s
        self.batch = batch
        self.max_pending = max_pending
        self.retention_days = retention_days
        self.max_rows = max_rows
        self.counters: dict[str, int] = {"recorded": 0, "dropped": 0, "written": 0, "write_errors": 0,
                                         "accepted": 0, "typed_through": 0, "dismissed": 0}
        self._q: collections.deque[tuple[str, Any]] = collections.deque()
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._enqueued = 0
        self._processed = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._salt = b""
        self.failed = ""  # why the store could not be opened ('' while it works)

    # ------------------------------------------------------------------------------------------- hot path
    def record(self, rec: Record) -> bool:
        """Queue one request row; False (and counted) when the queue is full or the store is closed."""
        if not self._put(("row", rec)):
            return False
        self.counters["recorded"] += 1
        return True

    def feedback(self, request_id: str, event: str, chars: int = 0) -> bool:
        """Queue an outcome for a request id (an unknown id is kept in the feedback table only)."""
        if event not in EVENTS:
            raise ValueError(f"unknown feedback event {event!r}")
        if not self._put(("feedback", (time.time(), request_id, event, int(chars)))):
            return False
        self.counters[event] += 1
        return True

    def _put(self, op: tuple[str, Any]) -> bool:
        if self._stopping or self.failed:
            self.counters["dropped"] += 1
            return False
        if len(self._q) >= self.max_pending:  # the writer is behind (slow disk): drop, never block
            self.counters["dropped"] += 1
            return False
        if self._thread is None:
            self.start()
        self._q.append(op)
        with self._cond:
            self._enqueued += 1
        if len(self._q) >= self.batch:
            self._wake.set()
        return True

    # ----------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the writer thread (idempotent); it opens the file and prunes old rows first."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="ghostline-telemetry", daemon=True)
        self._thread.start()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until everything queued so far is written (or dropped by a write error). For tests and close."""
        if self._thread is None:
            return True
        with self._cond:
            target = self._enqueued
        self._wake.set()
        with self._cond:
            return self._cond.wait_for(lambda: self._processed >= target or not self._alive(), timeout)

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued and stop the writer."""
        if self._thread is None:
            self._stopping = True
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    # ---------------------------------------------------------------------------------------- the writer
    def _run(self) -> None:
        try:
            conn = open_store(self.path)
            self._salt = _salt(conn)
            prune(conn, retention_days=self.retention_days, max_rows=self.max_rows)
        except (sqlite3.Error, OSError) as e:
            self.failed = str(e) or type(e).__name__
            log.warning("telemetry disabled: cannot open %s: %s", self.path, self.failed)
            self._q.clear()
            with self._cond:
                self._cond.notify_all()
            return
        try:
            while True:
                self._wake.wait(self.flush_s)
                self._wake.clear()
                self._drain(conn)
                if self._stopping:
                    self._drain(conn)
                    break
        finally:
            conn.close()
            with self._cond:
                self._cond.notify_all()

    def _drain(self, conn: sqlite3.Connection) -> None:
        while self._q:
            ops: list[tuple[str, Any]] = []
            while self._q and len(ops) < 4 * self.batch:
                ops.append(self._q.popleft())
            try:
                self._write(conn, ops)
                self.counters["written"] += len(ops)
            except sqlite3.Error as e:
                self.counters["write_errors"] += 1
                log.warning("telemetry: %d rows not written: %s", len(ops), e)
                try:
                    conn.rollback()
                except sqlite3.Error:
                    pass
            with self._cond:
                self._processed += len(ops)
                self._cond.notify_all()

    def _write(self, conn: sqlite3.Connection, ops: list[tuple[str, Any]]) -> None:
        marks = ",".join("?" * len(_COLUMNS))
        with conn:
            for kind, op in ops:
                if kind == "row":
                    r: Record = op
                    conn.execute(f"INSERT INTO requests ({','.join(_COLUMNS)}) VALUES ({marks})", (
                        r.ts, r.request_id, r.endpoint, self.client_hash(r.client), extension(r.filename),
                        r.source, r.prompt_tokens, r.reused_tokens, r.predicted_tokens, r.queue_ms, r.prompt_ms,
                        r.predict_ms, r.ttft_ms, r.total_ms, r.chars_shown, int(r.cancelled), r.cancel_reason,
                        int(r.error), int(r.warmup)))
                    for kind in r.secret_kinds:
                        conn.execute("INSERT INTO secret_blocks (ts, request_id, kind) VALUES (?,?,?)",
                                     (r.ts, r.request_id, kind))
                else:
                    ts, rid, event, chars = op
                    row = conn.execute("SELECT id, outcome FROM requests WHERE request_id = ? ORDER BY id DESC "
                                       "LIMIT 1", (rid,)).fetchone()
                    # an outcome never downgrades: accepted/typed through win over dismissed
                    if row is not None and (row[1] in (None, "dismissed") or event != "dismissed"):
                        conn.execute("UPDATE requests SET outcome = ?, outcome_chars = ?, outcome_ts = ? "
                                     "WHERE id = ?", (event, chars, ts, row[0]))
                    conn.execute("INSERT INTO feedback (ts, request_id, event, chars, matched) VALUES (?,?,?,?,?)",
                                 (ts, rid, event, chars, int(row is not None)))

    def client_hash(self, client: str) -> str:
        if not client:
            return ""
        return hashlib.sha256(self._salt + client.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ the file

def open_store(path: Path, *, create: bool = True) -> sqlite3.Connection:
    path = Path(path)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=5.0, check_same_thread=False, isolation_level="DEFERRED")
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        if create:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            with conn:
                conn.executescript(_SCHEMA)
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))
            try:
                os.chmod(path, 0o600)
            except OSError:
                pass
    except BaseException:
        conn.close()
        raise
    return conn


def _salt(conn: sqlite3.Connection) -> bytes:
    row = conn.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
    if row:
        return bytes.fromhex(row[0])
    salt = secrets.token_bytes(16)
    with conn:
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', ?)", (salt.hex(),))
    row = conn.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
    return bytes.fromhex(row[0])


def prune(conn: sqlite3.Connection, *, retention_days: float = 30.0, max_rows: int = 200_000,
          now: float | None = None) -> int:
    """Delete rows older than `retention_days` and all but the newest `max_rows` (requests and feedback).
    Returns the number of request rows deleted."""
    cutoff = (now if now is not None else time.time()) - retention_days * 86400.0
    with conn:
        n = conn.execute("DELETE FROM requests WHERE ts < ?", (cutoff,)).rowcount
        n += conn.execute("DELETE FROM requests WHERE id <= (SELECT id FROM requests ORDER BY id DESC LIMIT 1 "
                          "OFFSET ?)", (max_rows,)).rowcount
        conn.execute("DELETE FROM feedback WHERE ts < ?", (cutoff,))
        conn.execute("DELETE FROM secret_blocks WHERE ts < ?", (cutoff,))
        conn.execute("DELETE FROM feedback WHERE id <= (SELECT id FROM feedback ORDER BY id DESC LIMIT 1 "
                     "OFFSET ?)", (max_rows,))
    return n


# ------------------------------------------------------------------------------------------------- stats

STAGES = ("queue_ms", "prompt_ms", "predict_ms", "ttft_ms", "total_ms")


class NoStore(Exception):
    """There is no telemetry file yet."""


def parse_since(text: str) -> float | None:
    """'7d', '24h', '30m', '90s', '2w' -> seconds; 'all' -> None. ValueError otherwise."""
    t = text.strip().lower()
    if t in ("all", "ever", ""):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", t)
    if not m:
        raise ValueError(f"--since must look like 7d, 24h, 30m or 'all', got {text!r}")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[m.group(2)]


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(xs)
    k = max(1, math.ceil(q / 100.0 * len(s)))
    return s[min(k, len(s)) - 1]


def load_stats(path: Path | str | None = None, since_s: float | None = 7 * 86400.0,
               now: float | None = None) -> dict[str, Any]:
    """Aggregate the store (read while the daemon runs or not). Raises NoStore when the file does not exist."""
    p = Path(path) if path is not None else telemetry_path()
    if not p.is_file():
        raise NoStore(f"no telemetry recorded yet ({p} does not exist; the daemon writes it while serving "
                      "unless started with --no-telemetry)")
    now = now if now is not None else time.time()
    cutoff = now - since_s if since_s is not None else 0.0
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as e:
        raise NoStore(f"cannot read the telemetry store {p}: {e}") from e
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        rows = conn.execute(
            "SELECT source, prompt_tokens, reused_tokens, queue_ms, prompt_ms, predict_ms, ttft_ms, total_ms, "
            "chars_shown, cancelled, error, warmup, outcome, outcome_chars FROM requests WHERE ts >= ?",
            (cutoff,)).fetchall()
        unmatched = conn.execute("SELECT COUNT(*) FROM feedback WHERE ts >= ? AND matched = 0",
                                 (cutoff,)).fetchone()[0]
        blocks = _secret_blocks(conn, cutoff)
    except sqlite3.Error as e:
        raise NoStore(f"cannot read the telemetry store {p}: {e}") from e
    finally:
        conn.close()
    out: dict[str, Any] = {"store": str(p), "since_s": since_s, "warmups": 0, "unmatched_feedback": unmatched}
    groups: dict[str, list[tuple[Any, ...]]] = {"all": []}
    for r in rows:
        if r[11]:  # cache warm-ups (n_predict 0): no completion asked for
            out["warmups"] += 1
            continue
        groups["all"].append(r)
        groups.setdefault(r[0] or "unknown", []).append(r)
    out["by_source"] = {k: _aggregate(v) for k, v in groups.items()}
    out["secrets_blocked"] = blocks
    return out


def _secret_blocks(conn: sqlite3.Connection, cutoff: float) -> dict[str, int]:
    """Suggestions cut for a secret, by kind (a store written before the table existed has none)."""
    try:
        rows = conn.execute("SELECT kind, COUNT(*) FROM secret_blocks WHERE ts >= ? GROUP BY kind",
                            (cutoff,)).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {k: int(n) for k, n in rows}


def _aggregate(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    n = len(rows)
    shown = [r for r in rows if r[8] > 0]
    outcomes = collections.Counter(r[12] for r in shown if r[12])
    accepted = outcomes["accepted"] + outcomes["typed_through"]
    cancelled = sum(1 for r in rows if r[9])
    errors = sum(1 for r in rows if r[10])
    prompt = sum(r[1] for r in rows)
    reused = sum(r[2] for r in rows)
    answered = [r for r in rows if not r[9] and not r[10]]
    latency: dict[str, dict[str, float] | None] = {}
    for i, stage in enumerate(STAGES, start=3):
        xs = [float(r[i]) for r in answered if stage == "total_ms" or r[i] > 0]
        latency[stage] = ({"p50": percentile(xs, 50), "p90": percentile(xs, 90), "p99": percentile(xs, 99),
                           "n": len(xs)} if xs else None)
    return {
        "requests": n, "shown": len(shown), "shown_rate": len(shown) / n if n else 0.0,
        "accepted": outcomes["accepted"], "typed_through": outcomes["typed_through"],
        "dismissed": outcomes["dismissed"], "no_outcome": len(shown) - sum(outcomes.values()),
        "acceptance_rate": accepted / len(shown) if shown else 0.0,
        "cancelled": cancelled, "cancelled_share": cancelled / n if n else 0.0, "errors": errors,
        "prompt_tokens": prompt, "reused_tokens": reused, "kv_reuse_share": reused / prompt if prompt else 0.0,
        "requests_with_reuse": sum(1 for r in rows if r[2] > 0),
        "latency_ms": latency,
    }


def _fmt_since(since_s: float | None) -> str:
    if since_s is None:
        return "all time"
    for unit, sec in (("d", 86400), ("h", 3600), ("m", 60)):
        if since_s >= sec and since_s % sec == 0:
            return f"last {since_s / sec:g}{unit}"
    return f"last {since_s:g}s"


def format_stats(stats: dict[str, Any]) -> str:
    """The human-readable report of load_stats()."""
    lines = [f"ghostline completion telemetry, {_fmt_since(stats['since_s'])} (local only: {stats['store']})"]
    groups = stats["by_source"]
    if not groups["all"]["requests"]:
        lines.append("no completion requests recorded in this period")
        return "\n".join(lines)
    sources = sorted(k for k in groups if k != "all")
    for name in ["all", *sources] if len(sources) > 1 else sources:
        g = groups[name]
        lines.append("")
        lines.append(f"[{name}] requests {g['requests']}  shown {g['shown']} ({g['shown_rate']:.1%})  "
                     f"acceptance {g['acceptance_rate']:.1%} (accepted {g['accepted']}, typed through "
                     f"{g['typed_through']}, dismissed {g['dismissed']}, no outcome {g['no_outcome']})")
        lines.append(f"  cancelled {g['cancelled']} ({g['cancelled_share']:.1%})  errors {g['errors']}  "
                     f"KV reuse {g['kv_reuse_share']:.1%} of {g['prompt_tokens']} prompt tokens "
                     f"({g['requests_with_reuse']} requests reused)")
        lines.append(f"  {'latency ms':<12}{'p50':>10}{'p90':>10}{'p99':>10}{'n':>8}")
        for stage in STAGES:
            lat = g["latency_ms"][stage]
            label = stage[:-3]
            if lat is None:
                lines.append(f"  {label:<12}{'-':>10}{'-':>10}{'-':>10}{0:>8}")
            else:
                lines.append(f"  {label:<12}{lat['p50']:>10.1f}{lat['p90']:>10.1f}{lat['p99']:>10.1f}"
                             f"{lat['n']:>8}")
    if stats.get("secrets_blocked"):
        lines.append("")
        lines.append("suggestions cut for a secret: " + ", ".join(
            f"{k} {n}" for k, n in sorted(stats["secrets_blocked"].items())))
    extra = []
    if stats["warmups"]:
        extra.append(f"{stats['warmups']} cache warm-ups not counted")
    if stats["unmatched_feedback"]:
        extra.append(f"{stats['unmatched_feedback']} feedback events for unknown requests")
    if extra:
        lines.append("")
        lines.append("; ".join(extra))
    return "\n".join(lines)
