"""The LSP bridge (`agent daemon lsp` / `python -m ghostline.daemon.lsp`) driven over stdio as a subprocess by a
Content-Length framed JSON-RPC client, against a real daemon HTTP server in-process on an ephemeral port."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ghostline.daemon.engine.classical import ClassicalCompleter
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.engine.types import Completion, CompletionResult
from ghostline.daemon.lsp.documents import UTF8, UTF16, UTF32, Document, DocumentStore, code_units
from ghostline.daemon.server.app import bound_port, create_app, start_server

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "lsp-test-token"
TIMEOUT = 15.0


# ----------------------------------------------------------------------------------------------- the client

class LspClient:
    """A minimal LSP client over a subprocess's stdin/stdout (Content-Length framing, JSON-RPC 2.0)."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self._next = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.notifications: list[dict[str, Any]] = []
        self._notified = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read_loop())
        self.stderr_lines: list[str] = []  # with watch_stderr()
        self._stderr_reader: asyncio.Future[None] | None = None

    @classmethod
    async def start(cls, *args: str) -> LspClient:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ghostline.daemon.lsp", *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        return cls(proc)

    def watch_stderr(self) -> None:
        """Collect the server's stderr log lines as they come (instead of reading it all at the end)."""
        async def _read() -> None:
            assert self.proc.stderr is not None
            while line := await self.proc.stderr.readline():
                self.stderr_lines.append(line.decode(errors="replace"))

        self._stderr_reader = asyncio.ensure_future(_read())

    def _send(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)

    async def _read_loop(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = await out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                k, _, v = line.decode().partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v)
            assert length is not None
            msg = json.loads(await out.readexactly(length))
            if "id" in msg and "method" not in msg:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            elif "id" in msg:  # a request from the server (e.g. window/workDoneProgress/create)
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            else:
                self.notifications.append(msg)
                self._notified.set()

    def request(self, method: str, params: Any) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        self._next += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next] = fut
        self._send({"jsonrpc": "2.0", "id": self._next, "method": method, "params": params})
        return self._next, fut

    async def call(self, method: str, params: Any) -> Any:
        _, fut = self.request(method, params)
        msg = await asyncio.wait_for(fut, TIMEOUT)
        assert "error" not in msg, msg
        return msg["result"]

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def wait_notification(self, method: str, count: int = 1) -> list[dict[str, Any]]:
        async def _wait() -> list[dict[str, Any]]:
            while True:
                got = [n for n in self.notifications if n["method"] == method]
                if len(got) >= count:
                    return got
                self._notified.clear()
                await self._notified.wait()

        return await asyncio.wait_for(_wait(), TIMEOUT)

    async def initialize(self, encodings: list[str] | None = None, root: Path | None = None) -> dict[str, Any]:
        caps: dict[str, Any] = {"textDocument": {"inlineCompletion": {"dynamicRegistration": False},
                                                 "synchronization": {"dynamicRegistration": False}}}
        if encodings is not None:
            caps["general"] = {"positionEncodings": encodings}
        res = await self.call("initialize", {"processId": os.getpid(), "capabilities": caps,
                                             "rootUri": root.as_uri() if root else None,
                                             "workspaceFolders": [{"uri": root.as_uri(), "name": "w"}] if root
                                             else None})
        self.notify("initialized", {})
        return res

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": version,
                                                              "text": text}})

    def change(self, uri: str, version: int, changes: list[dict[str, Any]]) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": changes})

    def inline(self, uri: str, line: int, character: int) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        return self.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 2}})

    async def shutdown(self) -> int:
        await self.call("shutdown", None)
        self.notify("exit", None)
        rc = await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        await asyncio.wait_for(self._reader, TIMEOUT)
        return rc

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        if self._stderr_reader is not None:
            self._stderr_reader.cancel()


def rng(sl: int, sc: int, el: int, ec: int) -> dict[str, Any]:
    return {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}


async def result_of(fut: asyncio.Future[dict[str, Any]]) -> Any:
    msg = await asyncio.wait_for(fut, TIMEOUT)
    assert "error" not in msg, msg
    return msg["result"]


# ----------------------------------------------------------------------------------------------- the daemon

class RecordingEngine(Engine):
    """The real engine (classical completer, or the tiny model) that also keeps what each request carried."""

    def __init__(self, *a: Any, supersede: bool = True, **kw: Any):
        super().__init__(*a, **kw)
        self.requests: list[Any] = []
        self.jobs: list[Any] = []
        self.supersede = supersede  # False: ignore client ids, so only a client hang-up can cancel a job

    def submit(self, req):  # type: ignore[no-untyped-def]
        self.requests.append(req)
        if not self.supersede:
            req = dataclasses.replace(req, client_id="")
        job = super().submit(req)
        self.jobs.append(job)
        return job


class HeldBackend:
    """A backend whose jobs stay in flight until the test answers them (release) or they are cancelled: a
    model that has not finished yet, to observe cancellation deterministically."""

    kind = "held"
    counters: dict[str, float] = {}
    busy = False
    name = "held-model"
    n_ctx = 4096

    def __init__(self) -> None:
        self.jobs: list[Any] = []
        self.arrived = asyncio.Event()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def submit(self, job) -> None:  # type: ignore[no-untyped-def]
        self.jobs.append(job)
        self.arrived.set()

    def release(self, job, text: str) -> None:  # type: ignore[no-untyped-def]
        job.finish(CompletionResult([Completion(text, [], "eos")], model=self.name))

    async def wait_jobs(self, n: int) -> None:
        async def _w() -> None:
            while len(self.jobs) < n:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(_w(), TIMEOUT)


async def _serve(engine: Engine, token: str | None) -> tuple[Any, str]:
    app = create_app(engine, token=token)
    runner = await start_server(app, "127.0.0.1", 0)
    return runner, f"http://127.0.0.1:{bound_port(runner)}"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    p = tmp_path / "token"
    p.write_text(TOKEN + "\n")
    return p


@pytest.fixture
async def classical_daemon():
    eng = RecordingEngine(None, ClassicalCompleter())
    runner, url = await _serve(eng, TOKEN)
    yield SimpleNamespace(engine=eng, url=url)
    await runner.cleanup()


@pytest.fixture
async def held_daemon():
    be = HeldBackend()
    eng = RecordingEngine(be, ClassicalCompleter())  # type: ignore[arg-type]
    runner, url = await _serve(eng, TOKEN)
    yield SimpleNamespace(engine=eng, backend=be, url=url)
    for j in be.jobs:
        j.cancel()
    await runner.cleanup()


@pytest.fixture
async def client_factory():
    clients: list[LspClient] = []

    async def make(*args: str) -> LspClient:
        c = await LspClient.start(*args)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.kill()


# -------------------------------------------------------------------------------------------------- tests

async def test_initialize_capabilities_and_clean_exit(client_factory, classical_daemon, token_file):
    c = await client_factory("--url", classical_daemon.url, "--token-file", str(token_file))
    res = await c.initialize()
    caps = res["capabilities"]
    assert caps["inlineCompletionProvider"] == {} or caps["inlineCompletionProvider"] is True
    sync = caps["textDocumentSync"]
    assert sync["change"] == 2 and sync["openClose"] is True  # incremental
    assert caps.get("positionEncoding", "utf-16") == "utf-16"
    assert res["serverInfo"]["name"] == "ghostline-lsp"
    assert await c.shutdown() == 0
    err = (await c.proc.stderr.read()).decode()  # type: ignore[union-attr]
    assert "Traceback" not in err


async def test_exit_without_shutdown_is_status_1(client_factory, classical_daemon, token_file):
    c = await client_factory("--url", classical_daemon.url, "--token-file", str(token_file))
    await c.initialize()
    c.notify("exit", None)
    assert await asyncio.wait_for(c.proc.wait(), TIMEOUT) == 1


async def test_editor_going_away_ends_the_server_cleanly(client_factory, classical_daemon, token_file, tmp_path):
    c = await client_factory("--url", classical_daemon.url, "--token-file", str(token_file))
    await c.initialize()
    uri = (tmp_path / "m.py").as_uri()
    c.open(uri, "alpha_beta = 1\nal")
    res = await c.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": 1, "character": 2}, "context": {"triggerKind": 1}})
    assert res == [{"insertText": "pha_beta"}]
    c.proc.stdin.close()  # type: ignore[union-attr]  # stdin closed without shutdown/exit
    assert await asyncio.wait_for(c.proc.wait(), TIMEOUT) == 1
    err = (await c.proc.stderr.read()).decode()  # type: ignore[union-attr]
    assert "Traceback" not in err and "Unclosed" not in err


async def test_non_bmp_incremental_edits_reach_the_daemon_exactly(client_factory, held_daemon, token_file,
                                                                  tmp_path):
    d = held_daemon
    c = await client_factory("--url", d.url, "--token-file", str(token_file))
    await c.initialize(root=tmp_path)
    other = (tmp_path / "util.py").as_uri()
    uri = (tmp_path / "pkg" / "main.py").as_uri()
    c.open(other, "def helper(x):\n    return x * 2\n")
    c.open(uri, "s = '😀é'\nprint(s)\n")
    # UTF-16: 😀 is two code units. Insert "𝄞 " after the emoji (line 0, char 7 = s,space,=,space,',😀x2)
    c.change(uri, 2, [{"range": rng(0, 7, 0, 7), "text": "𝄞 "}])
    # replace "print" by "log\r\nlog" (a CRLF inside the buffer; lines break at \r\n)
    c.change(uri, 3, [{"range": rng(1, 0, 1, 5), "text": "log\r\nlog"}])
    # form feed and U+2028 are not line breaks in LSP: the next line is still line 3
    c.change(uri, 4, [{"range": rng(2, 3, 2, 3), "text": "\f\u2028"}, {"range": rng(3, 0, 3, 0), "text": "z = 🐍"}])
    expected = "s = '😀𝄞 é'\nlog\r\nlog\f\u2028(s)\nz = 🐍"
    # cursor between 'z = ' and the snake (line 3, char 4); then after the snake (char 6 in UTF-16)
    _, fut = c.inline(uri, 3, 4)
    await d.backend.wait_jobs(1)
    req = d.engine.requests[-1]
    assert req.prefix == "s = '😀𝄞 é'\nlog\r\nlog\f\u2028(s)\nz = "
    assert req.suffix == "🐍"
    assert req.prefix + req.suffix == expected
    assert req.client_id == uri and req.filename == "pkg/main.py" and req.n_indent == 0
    assert [(e.filename, e.text) for e in req.extra] == [("util.py", "def helper(x):\n    return x * 2\n")]
    d.backend.release(d.backend.jobs[0], "value")
    assert await result_of(fut) == [{"insertText": "value"}]
    _, fut = c.inline(uri, 3, 6)
    await d.backend.wait_jobs(2)
    assert d.engine.requests[-1].prefix == expected and d.engine.requests[-1].suffix == ""
    d.backend.release(d.backend.jobs[1], "")
    assert await result_of(fut) == []
    assert await c.shutdown() == 0


async def test_token_sent_and_rest_of_line_not_duplicated(client_factory, classical_daemon, token_file, tmp_path):
    seen: list[str] = []
    from aiohttp import web

    from ghostline.daemon.server.app import create_app as _create

    # the same daemon app behind a middleware that records the Authorization header it received
    @web.middleware
    async def record(request, handler):  # type: ignore[no-untyped-def]
        seen.append(request.headers.get("Authorization", ""))
        return await handler(request)

    app = _create(classical_daemon.engine, token=TOKEN)
    app.middlewares.insert(0, record)
    runner = await start_server(app, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(runner)}"
        c = await client_factory("--url", url, "--token-file", str(token_file))
        res = await c.initialize(encodings=["utf-32", "utf-16"])
        assert res["capabilities"]["positionEncoding"] == "utf-32"
        uri = (tmp_path / "a.py").as_uri()
        c.open(uri, "def compute_total(items):\n    pass\n\nx = '😀' + comp()\n")
        # utf-32 negotiated: characters are code points (14 is after "comp"; in UTF-16 it would be after "com")
        _, fut = c.inline(uri, 3, 14)
        items = await result_of(fut)
        assert seen == [f"Bearer {TOKEN}"]
        assert items == [{"insertText": "ute_total"}]  # "()" right of the cursor is not repeated: no range
        req = classical_daemon.engine.requests[-1]
        assert req.prefix.endswith("x = '😀' + comp") and req.suffix == "()\n"
        # the completion ended with the ")" right of the cursor: the daemon stops before it (not doubled)
        other = (tmp_path / "b.py").as_uri()
        c.open(other, "print(total_sum)\nprint()\n")
        _, fut = c.inline(other, 1, 6)
        assert await result_of(fut) == [{"insertText": "total_sum"}]
    finally:
        await runner.cleanup()


def test_reply_replaces_rest_of_line_it_repeats():
    from lsprotocol import types

    from ghostline.daemon.lsp.server import InfillRequest, reply_items

    doc = Document("file:///t.py", "y = f(😀, )  \nz\n")
    off = doc.offset_at(0, 10, UTF16)  # after "😀, "
    req = InfillRequest({}, doc.text[:off], doc.text[off:], types.Position(line=0, character=10))
    (item,) = reply_items("b)", req, UTF16)
    assert item.insert_text == "b)" and item.range is not None
    assert (item.range.start.line, item.range.start.character, item.range.end.character) == (0, 10, 13)
    (item,) = reply_items("b", req, UTF16)
    assert item.range is None  # nothing repeated: plain insertion at the cursor
    (item,) = reply_items("b)\n    return y", req, UTF16)
    assert item.range is not None and item.range.end.character == 13
    req.position = types.Position(line=0, character=12)  # the same cursor in UTF-8 code units
    (item,) = reply_items("b)", req, UTF8)
    assert (item.range.start.character, item.range.end.character) == (12, 15)
    assert reply_items("   ", req, UTF16) == []


async def test_superseded_and_cancelled_requests_are_abandoned(client_factory, held_daemon, token_file, tmp_path):
    d = held_daemon
    d.engine.supersede = False  # the daemon's own per-client cancel off: what cancels job1 is the bridge hanging up
    c = await client_factory("--url", d.url, "--token-file", str(token_file))
    await c.initialize()
    a, b = (tmp_path / "a.py").as_uri(), (tmp_path / "b.py").as_uri()
    c.open(a, "import os\nos.pa")
    c.open(b, "x = 1\n")
    _, first = c.inline(a, 1, 4)
    await d.backend.wait_jobs(1)
    c.change(a, 2, [{"range": rng(1, 5, 1, 5), "text": "t"}])
    _, second = c.inline(a, 1, 6)
    # the older request is answered (empty) while the daemon still holds the newer one
    assert await result_of(first) == []
    await d.backend.wait_jobs(2)
    job1, job2 = d.backend.jobs
    assert not second.done() and d.engine.requests[0].client_id == d.engine.requests[1].client_id == a

    async def _cancelled(job) -> None:  # type: ignore[no-untyped-def]
        # a held job is answered only by its cancel (or the test's release)
        assert (await asyncio.wait_for(job.result(), TIMEOUT)).cancelled and job.cancelled

    await _cancelled(job1)
    assert not job2.cancelled
    assert d.engine.requests[1].prefix == "import os\nos.pat"
    # $/cancelRequest: the editor's cancel drops the HTTP request at once; the daemon sees the hang-up and
    # cancels that job
    rid, third = c.inline(b, 1, 0)
    await d.backend.wait_jobs(3)
    job3 = d.backend.jobs[2]
    c.notify("$/cancelRequest", {"id": rid})
    msg = await asyncio.wait_for(third, TIMEOUT)
    assert msg["error"]["code"] == -32800
    await _cancelled(job3)
    d.backend.release(job2, "h")
    assert await result_of(second) == [{"insertText": "h"}]
    assert await c.shutdown() == 0


async def test_daemon_down_falls_back_to_classical_and_tells_once(client_factory, token_file, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # a retry window shorter than a round trip: the bridge tries the daemon again at (almost) every request
    c = await client_factory("--url", f"http://127.0.0.1:{port}", "--token-file", str(token_file),
                             "--retry-s", "0.001")
    c.watch_stderr()
    await c.initialize()
    lib, uri = (tmp_path / "lib.py").as_uri(), (tmp_path / "m.py").as_uri()
    c.open(lib, "def render_template(name):\n    return name\n")
    c.open(uri, "x = ren")
    assert await c.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": 0, "character": 7},
        "context": {"triggerKind": 2}}) == [{"insertText": "der_template"}]
    # unsaved edits count for the fallback too; and the retry after --retry-s fails again without a new notice
    c.change(uri, 2, [{"range": rng(0, 7, 0, 7), "text": "der_template('x')\ny = rend"}])

    async def complete() -> None:
        res = await c.call("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": 1, "character": 8}, "context": {"triggerKind": 2}})
        assert res == [{"insertText": "er_template"}]

    async def retried() -> None:  # each failed try logs a warning
        while sum("is not reachable" in line for line in c.stderr_lines) < 2:
            await complete()

    await asyncio.wait_for(retried(), TIMEOUT)
    for _ in range(3):
        await complete()
    logs = [n for n in c.notifications if n["method"] in ("window/logMessage", "window/showMessage")]
    assert len(logs) == 1 and logs[0]["method"] == "window/logMessage"
    assert "not reachable" in logs[0]["params"]["message"] and logs[0]["params"]["type"] == 2
    assert await c.shutdown() == 0


async def test_wrong_token_shows_message_then_recovers(client_factory, classical_daemon, tmp_path):
    bad = tmp_path / "bad-token"
    bad.write_text("wrong\n")
    c = await client_factory("--url", classical_daemon.url, "--token-file", str(bad), "--retry-s", "0.001")
    await c.initialize()
    uri = (tmp_path / "m.py").as_uri()
    c.open(uri, "value_one = 1\nval")
    res = await c.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": 1, "character": 3}, "context": {"triggerKind": 1}})
    assert res == [{"insertText": "ue_one"}]  # classical, in-process
    (shown,) = await c.wait_notification("window/showMessage")
    assert shown["params"]["type"] == 1 and "401" in shown["params"]["message"]
    assert classical_daemon.engine.requests == []  # the daemon refused it before the engine
    # the user fixes the token file; after the retry delay the daemon answers again
    bad.write_text(TOKEN + "\n")

    async def reconnected() -> None:
        while not classical_daemon.engine.requests:
            res = await c.call("textDocument/inlineCompletion", {
                "textDocument": {"uri": uri}, "position": {"line": 1, "character": 3}, "context": {"triggerKind": 1}})
            assert res == [{"insertText": "ue_one"}]

    await asyncio.wait_for(reconnected(), TIMEOUT)
    assert len(classical_daemon.engine.requests) == 1
    infos = await c.wait_notification("window/logMessage")
    assert "connected" in infos[-1]["params"]["message"]
    assert await c.shutdown() == 0


async def test_tiny_model_completion_through_lsp(client_factory, backend, token_file, tmp_path):
    eng = RecordingEngine(backend, ClassicalCompleter())
    runner, url = await _serve(eng, TOKEN)
    try:
        c = await client_factory("--url", url, "--token-file", str(token_file))
        await c.initialize()
        uri = (tmp_path / "m.py").as_uri()
        c.open(uri, "def add(a, b):\n    return \n")
        res = await c.call("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": 1, "character": 11}, "context": {"triggerKind": 2}})
        assert len(eng.jobs) == 1
        result = await eng.jobs[0].result()
        assert result.source == "model" and not result.cancelled
        expected = [{"insertText": result.content}] if result.content.strip() else []
        assert res == expected
        assert await c.shutdown() == 0
    finally:
        await runner.cleanup()


def test_selected_completion_item_is_extended_over_its_range():
    """With the completion menu open, the ghost text continues the highlighted item and uses its range."""
    from lsprotocol import types

    from ghostline.daemon.lsp.server import build_request, create_server, reply_items

    srv = create_server()
    doc = srv.store.open("file:///w/m.py", "s = '😀'\nx = com()\n")
    srv.store.open("file:///w/o.py", "def compute(): pass\n")
    sel = types.SelectedCompletionInfo(range=types.Range(start=types.Position(line=1, character=4),
                                                         end=types.Position(line=1, character=7)), text="compute")
    req = build_request(doc, 1, 7, UTF16, srv, sel)
    assert req.body["input_prefix"] == "s = '😀'\nx = compute" and req.body["input_suffix"] == "()\n"
    assert req.body["client_id"] == doc.uri and req.body["input_extra"] == [
        {"text": "def compute(): pass\n", "filename": "/w/o.py"}]
    assert req.position == types.Position(line=1, character=7)
    (item,) = reply_items("_total", req, UTF16)
    assert item.insert_text == "compute_total" and item.range == sel.range
    assert reply_items("", req, UTF16) == []


# ------------------------------------------------------------------------------------------- buffer model

def test_document_positions_and_edits():
    d = Document("file:///x", "a😀b\r\nc\rd\n\fé\u2028f")
    assert d.line_count() == 4 and d.line_text(0) == "a😀b" and d.line_text(3) == "\fé\u2028f"
    assert d.offset_at(0, 3, UTF16) == 2 and d.offset_at(0, 2, UTF16) == 1  # mid surrogate -> start of char
    assert d.offset_at(0, 5, UTF8) == 2 and d.offset_at(0, 2, UTF32) == 2
    assert d.offset_at(0, 99, UTF16) == 3 and d.offset_at(9, 0, UTF16) == len(d.text)
    assert d.position_at(d.text.index("f"), UTF16) == (3, 3) and d.position_at(d.text.index("f"), UTF8) == (3, 6)
    d.apply_change({"range": rng(0, 3, 1, 1), "text": "X"})
    assert d.text == "a😀X\rd\n\fé\u2028f" and d.edit_line == 0 and d.line_count() == 3
    d.apply_change({"text": "new"})
    assert d.text == "new" and d.line_count() == 1
    assert code_units("😀é", UTF16) == 3 and code_units("😀é", UTF8) == 6 and code_units("😀é", UTF32) == 2


def test_extra_context_recency_and_bounds():
    st = DocumentStore()
    st.open("a", "\n".join(f"a{i}" for i in range(200)) + "\n")
    st.open("b", "b0\nb1\n")
    st.open("cur", "x")
    st.open("c", "c0\n")
    st.change("a", [{"range": rng(150, 0, 150, 0), "text": "# edit\n"}])
    ctx = st.extra_context("cur", n_chunks=2, chunk_lines=10, max_chars=10_000)
    # the two most recently edited other buffers, oldest first (most recent last, nearest the cursor)
    assert [c.filename for c in ctx] == ["c", "a"]
    assert ctx[1].text.splitlines()[0] == "a145" and "# edit" in ctx[1].text and len(ctx[1].text.splitlines()) == 10
    ctx = st.extra_context("cur", n_chunks=16, chunk_lines=64, max_chars=20)
    assert len("".join(c.text for c in ctx)) <= 20 and ctx[-1].filename == "a"


# ---------------------------------------------------------------------------------------------------- CLI

def test_cli_help_via_console_script():
    agent = ROOT / ".venv" / "bin" / "agent"
    if not agent.exists():
        pytest.skip("no .venv/bin/agent console script")
    r = subprocess.run([str(agent), "daemon", "lsp", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "--url" in r.stdout and "--token-file" in r.stdout
    r = subprocess.run([str(agent), "daemon", "lsp", "--url", "ftp://x"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "--url must be" in r.stderr and "Traceback" not in r.stderr
