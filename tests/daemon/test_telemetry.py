"""Local telemetry: the SQLite store (batching, bounds, retention, no code text), the server's rows for every
endpoint (cancelled ones too), POST /v1/feedback, the LSP bridge's outcomes, `agent daemon stats`, and
--no-telemetry."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from typer.testing import CliRunner

from ghostline.daemon.engine.classical import ClassicalCompleter
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.paths import telemetry_path, token_path
from ghostline.daemon.server.app import bound_port, create_app, start_server
from ghostline.daemon.telemetry import (
    Record,
    Telemetry,
    extension,
    load_stats,
    open_store,
    parse_since,
    percentile,
    prune,
)
from tests.daemon.test_lsp import TOKEN as LSP_TOKEN
from tests.daemon.test_lsp import HeldBackend, client_factory, rng  # noqa: F401  (client_factory: a fixture)
from tests.daemon.test_server import llama_vim_fim_body

TOKEN = "telemetry-token"
SECRET = "zq_unmistakable_identifier_4711"  # a distinctive string that must never reach the store


def rows(path: Path, where: str = "1") -> list[sqlite3.Row]:
    conn = sqlite3.connect(str(path))
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(f"SELECT * FROM requests WHERE {where} ORDER BY id").fetchall()
    finally:
        conn.close()


class WatchedTelemetry(Telemetry):
    """Telemetry that wakes the test whenever a row or an outcome is queued (from the server's event loop, the
    test's own), and whenever its writer has written some: the test waits for the counters instead of polling."""

    def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
        super().__init__(*a, **kw)
        self._queued = asyncio.Event()

    def record(self, rec: Record) -> bool:
        try:
            return super().record(rec)
        finally:
            self._queued.set()

    def feedback(self, request_id: str, event: str, chars: int = 0) -> bool:
        try:
            return super().feedback(request_id, event, chars)
        finally:
            self._queued.set()

    async def until(self, pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        async def _wait() -> None:
            while not pred():
                self._queued.clear()
                await self._queued.wait()

        await asyncio.wait_for(_wait(), timeout)

    def wait_written(self, n: int, timeout: float = 10.0) -> bool:
        """Until the writer has written n rows, without waking it (the writer notifies after every batch)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.counters["written"] >= n, timeout)


# --------------------------------------------------------------------------------------------------- the store

def test_writes_are_batched_and_bounded(tmp_path):
    db = tmp_path / "t.sqlite3"
    tel = WatchedTelemetry(db, flush_s=60.0, batch=3, max_pending=4)
    tel.start()
    assert tel.record(Record("r1", "/infill")) and tel.record(Record("r2", "/infill"))
    assert tel.counters["written"] == 0  # below the batch size and long before the flush interval: queued only
    tel.record(Record("r3", "/infill"))  # the batch is full: the writer wakes
    assert tel.wait_written(3)
    assert [r["request_id"] for r in rows(db)] == ["r1", "r2", "r3"]
    # a writer that cannot keep up: the queue is bounded, the overflow dropped and counted, never blocking
    tel.batch = 100
    for i in range(6):
        tel.record(Record(f"q{i}", "/infill"))
    assert tel.counters["dropped"] == 2 and tel.counters["recorded"] == 7
    tel.close()
    assert len(rows(db)) == 7
    assert not tel.record(Record("late", "/infill"))  # closed: dropped, not queued


def test_retention_prunes_old_rows_and_keeps_the_newest(tmp_path):
    db = tmp_path / "t.sqlite3"
    conn = open_store(db)
    now = time.time()
    with conn:
        for i in range(10):
            conn.execute("INSERT INTO requests (ts, request_id, endpoint) VALUES (?,?,?)",
                         (now - 40 * 86400 if i < 3 else now - i, f"r{i}", "/infill"))
    assert prune(conn, retention_days=30, max_rows=5, now=now) == 5
    assert [r[0] for r in conn.execute("SELECT request_id FROM requests ORDER BY id")] == [
        "r5", "r6", "r7", "r8", "r9"]
    with conn:
        conn.execute("INSERT INTO requests (ts, request_id, endpoint) VALUES (?,?,?)", (now - 31 * 86400, "old", "x"))
    conn.close()
    tel = Telemetry(db)  # at startup, the writer prunes with the defaults (30 days, 200k rows)
    tel.start()
    tel.flush()
    tel.close()
    assert [r["request_id"] for r in rows(db)] == ["r5", "r6", "r7", "r8", "r9"]


def test_helpers():
    assert extension("src/app/Main.PY") == ".py" and extension("file:///w/x.tar.gz") == ".gz"
    assert extension("Makefile") == "" and extension("") == "" and extension(".bashrc") == ""
    assert parse_since("7d") == 7 * 86400 and parse_since("24h") == 86400 and parse_since("all") is None
    with pytest.raises(ValueError):
        parse_since("seven days")
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0 and percentile([1.0, 2.0], 99) == 2.0


# -------------------------------------------------------------------------------------------------- the server

@pytest.fixture
async def daemon(tmp_path):
    """A daemon with telemetry: the held backend (jobs answered or cancelled by the test), classical fallback."""
    be = HeldBackend()
    eng = Engine(be, ClassicalCompleter())  # type: ignore[arg-type]
    tel = WatchedTelemetry(tmp_path / "state" / "telemetry.sqlite3", flush_s=0.05)
    runner = await start_server(create_app(eng, token=TOKEN, telemetry=tel), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bound_port(runner)}"
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as c:
        yield SimpleNamespace(url=url, engine=eng, backend=be, tel=tel, client=c, db=tel.path)
    for j in be.jobs:
        j.cancel()
    await runner.cleanup()


async def _answer_next(d, text: str, n: int) -> None:  # type: ignore[no-untyped-def]
    await d.backend.wait_jobs(n)
    d.backend.release(d.backend.jobs[n - 1], text)


async def test_rows_for_infill_and_ghost_including_cancelled(daemon):
    d = daemon
    body = {"input_prefix": f"def {SECRET}(x):\n    ", "input_suffix": f"\n# {SECRET}\n", "prompt": "ret",
            "filename": f"pkg/{SECRET}.py", "client_id": f"file:///w/{SECRET}.py", "n_predict": 16}
    answer = asyncio.ensure_future(_answer_next(d, f"urn {SECRET}", 1))
    r = await d.client.post("/infill", json=body)
    await answer
    obj = r.json()
    assert obj["content"] == f"urn {SECRET}" and obj["id"] == r.headers["X-Request-Id"]
    # llama.vim's byte-level contract holds with telemetry on: exactly the fields it asked for, no id
    answer = asyncio.ensure_future(_answer_next(d, "data = f.read()", 2))
    r2 = await d.client.post("/infill", content=llama_vim_fim_body("def f(p):\n", "    ", "\n", 4))
    await answer
    assert r2.text.startswith('{"content":"') and "id" not in r2.json() and r2.headers["X-Request-Id"]

    # /v1/ghost: one cancelled by id, one superseded by a newer request of the same document, one answered
    async def ghost(rid: str) -> str:
        return (await d.client.post("/v1/ghost", json={"id": rid, "prefix": "x = ", "document": "doc-1",
                                                        "filename": "a.ts"})).text

    g1 = asyncio.ensure_future(ghost("g1"))
    await d.backend.wait_jobs(3)
    assert (await d.client.post("/v1/ghost/cancel", json={"id": "g1"})).json()["cancelled"] is True
    assert "event: cancelled" in await g1
    g2 = asyncio.ensure_future(ghost("g2"))
    await d.backend.wait_jobs(4)
    g3 = asyncio.ensure_future(ghost("g3"))
    await d.backend.wait_jobs(5)
    assert "event: cancelled" in await g2
    d.backend.release(d.backend.jobs[4], "42")
    assert "event: done" in await g3
    # a client that hangs up: its job is cancelled, the row says why
    with pytest.raises(httpx.ReadTimeout):
        await d.client.post("/infill", json={"input_prefix": "y = "}, timeout=0.3)
    await d.tel.until(lambda: d.tel.counters["recorded"] >= 6)
    d.tel.flush()
    got = {r["request_id"]: r for r in rows(d.db)}
    first = got[obj["id"]]
    assert (first["endpoint"], first["source"], first["ext"], first["chars_shown"], first["cancelled"]) == (
        "/infill", "model", ".py", len(obj["content"]), 0)
    assert first["client"] and len(first["client"]) == 16 and first["total_ms"] > 0
    assert got[r2.headers["X-Request-Id"]]["chars_shown"] == len("data = f.read()")
    assert (got["g1"]["cancelled"], got["g1"]["cancel_reason"], got["g1"]["chars_shown"]) == (1, "explicit", 0)
    assert (got["g2"]["cancelled"], got["g2"]["cancel_reason"]) == (1, "superseded")
    assert (got["g3"]["endpoint"], got["g3"]["ext"], got["g3"]["chars_shown"], got["g3"]["cancelled"]) == (
        "/v1/ghost", ".ts", 2, 0)
    assert got["g2"]["client"] == got["g3"]["client"] != first["client"]
    (hung,) = [r for r in got.values() if r["cancel_reason"] == "disconnect"]
    assert hung["endpoint"] == "/infill"
    # never any code: not the prefix, suffix, completion, file name or client id
    d.tel.close()
    raw = b"".join(p.read_bytes() for p in d.db.parent.glob("telemetry.sqlite3*"))
    assert SECRET.encode() not in raw and b"doc-1" not in raw and b"data = f.read()" not in raw


async def test_openai_and_classical_rows(tmp_path):
    cl = ClassicalCompleter()
    cl.add_text("serialize_payload serialize_payload")
    tel = WatchedTelemetry(tmp_path / "t.sqlite3", flush_s=0.05)
    runner = await start_server(create_app(Engine(None, cl), token=TOKEN, telemetry=tel), "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(runner)}"
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            o = (await c.post("/v1/completions", json={"prompt": "x = serialize_p", "suffix": ""})).json()
            s = await c.post("/infill", json={"input_prefix": "x = ", "prompt": "serialize_p", "stream": True})
            w = (await c.post("/infill", json={"input_extra": [{"text": "a = 1\n"}], "n_predict": 0})).json()
            metrics = (await c.get("/metrics")).text
        await tel.until(lambda: tel.counters["recorded"] >= 3)
        tel.flush()
        got = {r["request_id"]: r for r in rows(tel.path)}
        assert got[o["id"]]["endpoint"] == "/v1/completions" and got[o["id"]]["source"] == "classical"
        assert got[o["id"]]["chars_shown"] == len("ayload") == len(o["choices"][0]["text"])
        assert got[s.headers["X-Request-Id"]]["endpoint"] == "/infill"
        assert got[w["id"]]["warmup"] == 1
        assert "ghostline_telemetry_recorded_total" in metrics
    finally:
        await runner.cleanup()


async def test_feedback_endpoint(daemon):
    d = daemon
    answer = asyncio.ensure_future(_answer_next(d, "value", 1))
    rid = (await d.client.post("/infill", json={"input_prefix": "x = "})).json()["id"]
    await answer
    async with httpx.AsyncClient(base_url=d.url) as anon:
        r = await anon.post("/v1/feedback", json={"id": rid, "event": "accepted"})
        assert r.status_code == 401
    for bad, msg in (({"event": "accepted"}, "'id'"), ({"id": rid, "event": "liked"}, "'event'"),
                     ({"id": rid, "event": "accepted", "chars": -1}, "'chars'"),
                     ({"id": rid, "event": "accepted", "chars": "3"}, "'chars'")):
        r = await d.client.post("/v1/feedback", json=bad)
        assert r.status_code == 400 and msg in r.json()["error"]["message"], bad
    assert (await d.client.post("/v1/feedback", content=b"{nope")).status_code == 400
    r = await d.client.post("/v1/feedback", json={"id": rid, "event": "accepted", "chars": 5})
    # an accepted model suggestion also starts computing the next one in the background
    assert r.json() == {"id": rid, "event": "accepted", "recorded": True, "prefetching": True}
    await d.client.post("/v1/feedback", json={"id": rid, "event": "dismissed"})  # never downgrades accepted
    await d.client.post("/v1/feedback", json={"id": "cmpl-unknown", "event": "dismissed"})
    metrics = (await d.client.get("/metrics")).text
    assert "ghostline_feedback_accepted_total 1" in metrics
    d.tel.flush()
    (row,) = rows(d.db, f"request_id = '{rid}'")
    assert (row["outcome"], row["outcome_chars"]) == ("accepted", 5)
    st = load_stats(d.db)
    assert st["unmatched_feedback"] == 1 and st["by_source"]["all"]["acceptance_rate"] == 1.0


async def test_feedback_without_telemetry_is_not_recorded():
    runner = await start_server(create_app(Engine(None, ClassicalCompleter()), token=None), "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bound_port(runner)}") as c:
            r = await c.post("/v1/feedback", json={"id": "x", "event": "dismissed"})
            assert r.json()["recorded"] is False
            assert "id" not in (await c.post("/infill", json={"input_prefix": "x"})).json()
    finally:
        await runner.cleanup()


# ----------------------------------------------------------------------------------------------- the LSP bridge

async def test_lsp_accept_command_typed_through_and_dismissed(client_factory, tmp_path):  # noqa: F811
    tel = WatchedTelemetry(tmp_path / "t.sqlite3", flush_s=0.05)
    runner = await start_server(create_app(Engine(None, ClassicalCompleter()), token=LSP_TOKEN, telemetry=tel),
                                "127.0.0.1", 0)
    tf = tmp_path / "token"
    tf.write_text(LSP_TOKEN)
    try:
        c = await client_factory("--url", f"http://127.0.0.1:{bound_port(runner)}", "--token-file", str(tf))
        caps = (await c.initialize())["capabilities"]
        assert "ghostline.accepted" in caps["executeCommandProvider"]["commands"]
        uri = (tmp_path / "m.py").as_uri()
        c.open(uri, "alpha_beta = 1\nal")

        async def inline(line: int, ch: int) -> list:
            return await c.call("textDocument/inlineCompletion", {
                "textDocument": {"uri": uri}, "position": {"line": line, "character": ch},
                "context": {"triggerKind": 2}})

        (item,) = await inline(1, 2)
        assert item["insertText"] == "pha_beta" and item["command"]["command"] == "ghostline.accepted"
        rid1, chars = item["command"]["arguments"]
        assert chars == len("pha_beta")
        # the user types "ph" over the ghost text, then the editor asks again: the first was typed through
        c.change(uri, 2, [{"range": rng(1, 2, 1, 2), "text": "p"}])
        c.change(uri, 3, [{"range": rng(1, 3, 1, 3), "text": "h"}])
        (item2,) = await inline(1, 4)
        rid2 = item2["command"]["arguments"][0]
        assert item2["insertText"] == "a_beta" and rid2 != rid1
        # asked again without typing: the second was dismissed; the third is accepted through its command
        (item3,) = await inline(1, 4)
        rid3 = item3["command"]["arguments"][0]
        c.change(uri, 4, [{"range": rng(1, 4, 1, 4), "text": "a_beta"}])
        await c.call("workspace/executeCommand", {"command": "ghostline.accepted",
                                                  "arguments": item3["command"]["arguments"]})
        await tel.until(lambda: tel.counters["accepted"] >= 1 and tel.counters["dismissed"] >= 1
                        and tel.counters["typed_through"] >= 1)
        # a completion still shown when the editor shuts the server down is settled then (dismissed)
        uri2 = (tmp_path / "n.py").as_uri()
        c.open(uri2, "gamma_delta = 2\nga")
        (item4,) = await c.call("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri2}, "position": {"line": 1, "character": 2}, "context": {"triggerKind": 2}})
        rid4 = item4["command"]["arguments"][0]
        assert await c.shutdown() == 0
        await tel.until(lambda: tel.counters["dismissed"] >= 2)
        tel.flush()
        got = {r["request_id"]: (r["outcome"], r["outcome_chars"]) for r in rows(tel.path)}
        assert got[rid1] == ("typed_through", 2)
        assert got[rid2] == ("dismissed", 0)
        assert got[rid3] == ("accepted", len("a_beta"))
        assert got[rid4] == ("dismissed", 0)
    finally:
        await runner.cleanup()


def test_typed_through_tracking_follows_the_cursor():
    from ghostline.daemon.lsp.documents import UTF16, Document
    from ghostline.daemon.lsp.server import Shown

    doc = Document("file:///m.py", "x = 1\nre")
    sh = Shown("r", "turn value", len(doc.text))

    def edit(change: dict) -> None:
        sh.observe(doc, change, UTF16)
        doc.apply_change(change, UTF16)

    edit({"range": rng(0, 0, 0, 0), "text": "# c\n"})  # an edit above: the anchor moves with it
    edit({"range": rng(2, 2, 2, 2), "text": "tu"})
    edit({"text": doc.text + "r"})  # full-document sync: the insertion at the cursor is found
    assert (sh.typed, sh.diverged) == (3, False)
    edit({"range": rng(2, 5, 2, 5), "text": "x"})  # not the completion's next character
    assert (sh.typed, sh.diverged) == (3, True)
    sh2 = Shown("r2", "abc", 0)
    sh2.observe(Document("u", "zz"), {"range": rng(0, 1, 0, 2), "text": ""}, UTF16)  # after the cursor: ignored
    assert (sh2.typed, sh2.diverged) == (0, False)


# ------------------------------------------------------------------------------------------ the stats command

def test_stats_command(daemon_cli):
    r = CliRunner().invoke(daemon_cli, ["daemon", "stats"])
    assert r.exit_code == 1 and "no telemetry recorded yet" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    tel = Telemetry(telemetry_path())
    now = time.time()
    tel.record(Record("m1", "/infill", source="model", prompt_tokens=100, reused_tokens=80, queue_ms=1,
                      prompt_ms=10, predict_ms=30, ttft_ms=12, total_ms=45, chars_shown=8))
    tel.record(Record("m2", "/infill", source="model", prompt_tokens=100, reused_tokens=0, total_ms=60,
                      chars_shown=0, cancelled=True, cancel_reason="superseded"))
    tel.record(Record("c1", "/v1/ghost", source="classical", total_ms=2, chars_shown=4))
    tel.record(Record("c2", "/v1/ghost", source="classical", total_ms=3, chars_shown=0))
    tel.record(Record("old", "/infill", source="model", total_ms=9, chars_shown=3, ts=now - 10 * 86400))
    tel.feedback("m1", "accepted", 8)
    tel.feedback("c1", "typed_through", 2)
    tel.close()
    r = CliRunner().invoke(daemon_cli, ["daemon", "stats", "--json"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)
    a = st["by_source"]["all"]
    assert (a["requests"], a["shown"], a["accepted"], a["typed_through"], a["cancelled"]) == (4, 2, 1, 1, 1)
    assert a["acceptance_rate"] == 1.0 and a["shown_rate"] == 0.5 and a["cancelled_share"] == 0.25
    assert a["kv_reuse_share"] == 0.4
    m = st["by_source"]["model"]
    assert m["latency_ms"]["prompt_ms"]["p50"] == 10 and m["latency_ms"]["total_ms"]["n"] == 1
    assert st["by_source"]["classical"]["latency_ms"]["prompt_ms"] is None
    r = CliRunner().invoke(daemon_cli, ["daemon", "stats", "--since", "all"])
    assert r.exit_code == 0 and "[all] requests 5" in r.output and "[classical]" in r.output
    assert "p50" in r.output and "total" in r.output
    r = CliRunner().invoke(daemon_cli, ["daemon", "stats", "--since", "1h"])
    assert "[all] requests 4" in r.output
    r = CliRunner().invoke(daemon_cli, ["daemon", "stats", "--since", "soon"])
    assert r.exit_code == 2 and "--since" in r.output


# ------------------------------------------------------------------------------------------- --no-telemetry

def test_no_telemetry_option(daemon_cli, monkeypatch):
    import ghostline.daemon.server.app as server_app
    from ghostline.daemon.__main__ import build_parser
    from ghostline.daemon.server.process import ServeOptions, serve

    assert "--no-telemetry" in ServeOptions(no_telemetry=True).argv()
    assert "--no-telemetry" not in ServeOptions().argv()
    assert build_parser().parse_args(["serve", "--no-telemetry"]).no_telemetry is True
    for cmd in ("serve", "start"):
        assert "--no-telemetry" in CliRunner().invoke(daemon_cli, ["daemon", cmd, "--help"]).output
    seen = []

    async def fake_serve_forever(engine, host, port, token, **kw):  # type: ignore[no-untyped-def]
        seen.append(kw.get("telemetry"))

    monkeypatch.setattr(server_app, "serve_forever", fake_serve_forever)
    serve(ServeOptions(no_auth=True, no_telemetry=True), announce=lambda m: None)
    serve(ServeOptions(no_auth=True), announce=lambda m: None)
    assert seen[0] is None and isinstance(seen[1], Telemetry) and seen[1].path == telemetry_path()
    assert not telemetry_path().exists()  # the fake server never started the writer


def test_background_daemon_records_and_no_telemetry_does_not(daemon_cli):
    """The real `agent daemon start` process: rows written by the time it is stopped (shutdown flushes the
    queue); with --no-telemetry no store is created at all."""
    import socket

    def roundtrip(*flags: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        r = CliRunner().invoke(daemon_cli, ["daemon", "start", "--port", str(port), *flags])
        assert r.exit_code == 0, r.output
        try:
            hdr = {"Authorization": f"Bearer {token_path().read_text().strip()}"}
            obj = httpx.post(f"http://127.0.0.1:{port}/infill", json={"input_prefix": f"{SECRET} = 1\nzq_un"},
                             headers=hdr).json()
            assert obj["content"] == SECRET[5:] and ("id" in obj) == (not flags)
        finally:
            assert CliRunner().invoke(daemon_cli, ["daemon", "stop"]).exit_code == 0

    roundtrip("--no-telemetry")
    assert not telemetry_path().exists()
    assert CliRunner().invoke(daemon_cli, ["daemon", "stats"]).exit_code == 1
    roundtrip()
    r = CliRunner().invoke(daemon_cli, ["daemon", "stats"])
    assert r.exit_code == 0 and "[classical] requests 1  shown 1 (100.0%)" in r.output, r.output
    assert "last 7d" in r.output


async def test_a_deadline_stand_in_is_recorded_as_its_own_source(backend):
    from ghostline.daemon.engine.types import CompletionRequest
    from ghostline.daemon.telemetry import record_from

    cl = ClassicalCompleter()
    cl.add_text("deadline_value deadline_value")
    eng = Engine(backend, cl)
    req = CompletionRequest(prefix="y = deadline_v", n_predict=100_000, deadline_ms=30)
    res = await eng.submit(req).result()
    assert res.source == "classical" and res.deadline_missed  # the reply still says classical
    assert record_from("/infill", req, res, 31.0).source == "deadline"
    on_time = await eng.submit(CompletionRequest(prefix="y = 1\n", n_predict=1)).result()
    assert not on_time.deadline_missed and record_from("/infill", req, on_time, 5.0).source == "model"
