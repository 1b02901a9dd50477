"""The LSP bridge: a stdio language server (pygls) that answers LSP 3.18 `textDocument/inlineCompletion` with
ghost text from the completion daemon's llama.cpp-compatible POST /infill.

* Documents are the editor's buffers (incremental sync, kept here with exact LSP line and position-encoding
  rules: see `daemon.lsp.documents`), so unsaved text counts.
* A request sends prefix/suffix around the cursor, chunks of the other open buffers (`input_extra`), n_indent
  and the document URI as the daemon's client id: a newer request for the same document supersedes the older
  one in the daemon, and here its HTTP request is abandoned at once (as on `$/cancelRequest`), which makes the
  daemon cancel the job.
* When the daemon is not reachable (not running, or it refuses the token) the answer comes from an in-process
  classical completer over the open buffers; the user is told once per outage, and the daemon is tried again
  after `retry_s`.
* Outcomes for the daemon's local telemetry, when its reply carries a request id (the daemon records telemetry):
  each item gets the command `ghostline.accepted` (LSP 3.18: the client runs it after inserting the item), which
  posts `accepted` to /v1/feedback; text the user types at the cursor that matches the start of the shown
  completion makes it `typed_through`; when the next completion for the document is asked for (or the document
  is closed) a completion with neither outcome is `dismissed`. Only ids, event names and lengths are posted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from ghostline.daemon.engine.classical import ClassicalCompleter
from ghostline.daemon.engine.guard import guard_completions
from ghostline.daemon.engine.secrets import SecretScanner
from ghostline.daemon.engine.types import Completion, CompletionRequest
from ghostline.daemon.lsp.documents import UTF16, Document, DocumentStore, _change_parts, code_units
from ghostline.daemon.paths import token_path

log = logging.getLogger("ghostline.lsp")

DEFAULT_URL = "http://127.0.0.1:8012"
SERVER_NAME = "ghostline-lsp"
ACCEPT_COMMAND = "ghostline.accepted"


def default_daemon_url() -> str:
    """The running background daemon's address (its pid file), else llama.cpp's default port on loopback."""
    from ghostline.daemon.server.process import read_pid

    info = read_pid()
    if info and isinstance(info.get("port"), int):
        host = str(info.get("host") or "127.0.0.1")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{info['port']}"
    return DEFAULT_URL


def read_token(path: Path | None) -> str:
    """The bearer token from the daemon's token file ('' when there is none; never created from here)."""
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


@dataclass
class BridgeOptions:
    url: str | None = None  # None: follow the background daemon's pid file (re-read on every retry)
    token_file: Path | None = None  # None: the daemon's token file
    retry_s: float = 10.0  # after a failure, answer classically this long before trying the daemon again
    n_predict: int = 128
    t_max_prompt_ms: float = 500.0
    t_max_predict_ms: float = 1000.0
    max_prefix_lines: int = 1024  # bounds on what is sent per keystroke (the daemon truncates further)
    max_suffix_lines: int = 256
    extra_chunks: int = 16  # input_extra: at most this many chunks ...
    extra_chunk_lines: int = 64  # ... of this many lines ...
    extra_max_chars: int = 32768  # ... and this many characters in all
    connect_timeout_s: float = 2.0
    request_timeout_s: float = 30.0


class DaemonUnavailable(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind  # "unreachable" | "auth" (401) | "refused" (403) | "timeout"
        self.detail = detail


class GhostlineProtocol(LanguageServerProtocol):
    """pygls' protocol with the text synchronisation kept in our DocumentStore (exact LSP line breaks and
    position encodings; pygls' own workspace splits lines at form feeds and U+2028)."""

    _server: GhostlineLanguageServer

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        td = params.text_document
        self._server.store.open(td.uri, td.text, td.version, td.language_id)
        yield from ()

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        srv = self._server
        uri = params.text_document.uri
        shown = srv._shown.get(uri)
        if shown is None:
            srv.store.change(uri, params.content_changes, params.text_document.version, srv.position_encoding)
        else:  # one change at a time, to follow what is typed at the cursor of the shown completion
            enc = srv.position_encoding
            for ch in params.content_changes:
                doc = srv.store.get(uri)
                if doc is not None:
                    shown.observe(doc, ch, enc)
                srv.store.change(uri, [ch], None, enc)
            srv.store.change(uri, [], params.text_document.version, enc)
        yield from ()

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        srv = self._server
        uri = params.text_document.uri
        srv.store.close(uri)
        srv.forget(uri)
        yield from ()


class GhostlineLanguageServer(LanguageServer):
    def __init__(self, options: BridgeOptions | None = None, **kwargs: Any):
        super().__init__(SERVER_NAME, _version(), protocol_cls=GhostlineProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental, **kwargs)
        self.options = options or BridgeOptions()
        self.store = DocumentStore()
        self.classical = ClassicalCompleter()
        self._mined: dict[str, int] = {}  # uri -> Document.touched last fed to the classical completer
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._session: Any = None  # aiohttp.ClientSession, created on the server's loop
        self._down_until = 0.0
        self._outage: str = ""  # the kind of failure the user was told about ('' while the daemon answers)
        self._url: str | None = None
        self._token: str | None = None
        self.stats = {"daemon": 0, "classical": 0, "superseded": 0, "failures": 0, "feedback": 0,
                      "secrets_blocked": 0}
        self._scanner: SecretScanner | None = None  # built on the first classical answer
        self._shown: dict[str, Shown] = {}  # uri -> the daemon's completion last shown there, outcome pending
        self._feedback_tasks: set[asyncio.Task[Any]] = set()

    # ----------------------------------------------------------------------------------------- settings
    @property
    def position_encoding(self) -> str:
        try:
            enc = self.workspace.position_encoding
        except RuntimeError:  # before initialize
            return UTF16
        enc = getattr(enc, "value", enc)
        return str(enc) if enc else UTF16

    def daemon_url(self) -> str:
        """--url, else the background daemon's address (looked up again after each failure)."""
        if self._url is None:
            self._url = (self.options.url or default_daemon_url()).rstrip("/")
        return self._url

    def token_file(self) -> Path:
        return self.options.token_file or token_path()

    def token(self) -> str:
        """The bearer token (read again after each failure: the daemon may have been started since)."""
        if self._token is None:
            self._token = read_token(self.token_file())
        return self._token

    def filename_of(self, uri: str) -> str:
        """The path the model sees: relative to a workspace folder when inside one (as llama.vim sends it)."""
        path = to_fs_path(uri) or uri
        try:
            ws = self.workspace
            roots = [f.uri for f in ws.folders.values()] + ([ws.root_uri] if ws.root_uri else [])
        except RuntimeError:
            roots = []
        for r in roots:
            rp = to_fs_path(r)
            if rp:
                try:
                    rel = os.path.relpath(path, rp)
                except ValueError:
                    continue
                if not rel.startswith(".."):
                    return rel.replace(os.sep, "/")
        return path

    # -------------------------------------------------------------------------------------- completion
    async def inline_completion(self, params: types.InlineCompletionParams) -> list[types.InlineCompletionItem]:
        uri = params.text_document.uri
        doc = self.store.get(uri)
        if doc is None:
            return []
        enc = self.position_encoding
        sel = params.context.selected_completion_info if params.context is not None else None
        self.settle(uri)  # a newer completion for this document: the last one shown is decided
        req = build_request(doc, params.position.line, params.position.character, enc, self, sel)
        old = self._inflight.get(uri)
        if old is not None and not old.done():
            old.cancel()  # the older keystroke's HTTP request is abandoned now; the daemon cancels its job
            self.stats["superseded"] += 1
        task = asyncio.ensure_future(self._complete(req))
        self._inflight[uri] = task
        try:
            content, rid = await task
        except asyncio.CancelledError:
            cur = asyncio.current_task()
            if cur is not None and cur.cancelling():
                raise  # $/cancelRequest (or shutdown): pygls answers RequestCancelled
            return []  # superseded by a newer request for this document
        finally:
            if self._inflight.get(uri) is task:
                del self._inflight[uri]
        command = None
        if rid:
            command = types.Command(title="ghostline: completion accepted", command=ACCEPT_COMMAND,
                                    arguments=[rid, len(content)])
        items = reply_items(content, req, enc, command)
        if items and rid:
            self.settle(uri)
            if req.selected is None and req.offset >= 0 and doc.touched == req.touched:
                self._shown[uri] = Shown(rid, content, req.offset)
            else:  # the buffer moved on during the request (or a menu item is extended): only the command counts
                self._shown[uri] = Shown(rid, content, -1)
        return items

    async def _complete(self, req: InfillRequest) -> tuple[str, str]:
        """(content, the daemon's request id or '' when it gave none or the answer is classical)."""
        if time.monotonic() >= self._down_until:
            try:
                content, rid = await self._post_infill(req)
            except DaemonUnavailable as e:
                if e.kind == "timeout":  # the daemon is there but slow: answer this one classically
                    log.warning("%s", e.detail)
                    return self._classical(req), ""
                self._daemon_failed(e)
            else:
                self._daemon_ok()
                self.stats["daemon"] += 1
                return content, rid
        return self._classical(req), ""

    async def _post_infill(self, req: InfillRequest) -> tuple[str, str]:
        import aiohttp

        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.options.request_timeout_s,
                                            sock_connect=self.options.connect_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        url = self.daemon_url()
        token = self.token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            for attempt in (1, 2):
                try:
                    async with self._session.post(f"{url}/infill", json=req.body, headers=headers) as resp:
                        if resp.status in (401, 403):
                            raise DaemonUnavailable(
                                "auth" if resp.status == 401 else "refused",
                                f"the daemon at {url} refused the request ({resp.status}: "
                                f"{await _error_message(resp)})")
                        if resp.status != 200:
                            # the daemon answers but this request failed (engine error, bad body): no ghost text
                            log.warning("daemon /infill: HTTP %s: %s", resp.status, await _error_message(resp))
                            return "", ""
                        obj = await resp.json(content_type=None)
                    break
                except aiohttp.ServerDisconnectedError:
                    if attempt == 2:  # a kept-alive connection the daemon had closed: try once on a fresh one
                        raise
        except (aiohttp.ClientConnectionError, OSError) as e:
            if isinstance(e, asyncio.TimeoutError) and not isinstance(e, aiohttp.ConnectionTimeoutError):
                raise DaemonUnavailable("timeout", f"the daemon at {url} did not answer within "
                                                   f"{self.options.request_timeout_s:g} s") from e
            raise DaemonUnavailable("unreachable", f"the daemon at {url} is not reachable ({_describe(e)})") from e
        except (aiohttp.ClientError, ValueError) as e:
            log.warning("daemon /infill: bad reply: %s", e)
            return "", ""
        if isinstance(obj, list):
            obj = obj[0] if obj else {}
        content = obj.get("content", "") if isinstance(obj, dict) else ""
        rid = obj.get("id", "") if isinstance(obj, dict) else ""  # present when the daemon records telemetry
        return (content if isinstance(content, str) else ""), (rid if isinstance(rid, str) else "")

    # ---------------------------------------------------------------------------------------- outcomes
    def settle(self, uri: str) -> None:
        """Decide the outcome of the completion last shown in `uri` (a newer one is asked for, or the document
        closes): accepted was posted by the command; text typed through -> typed_through; else dismissed."""
        shown = self._shown.pop(uri, None)
        if shown is None or shown.accepted:
            return
        if shown.typed > 0:
            self.post_feedback(shown.request_id, "typed_through", shown.typed)
        else:
            self.post_feedback(shown.request_id, "dismissed", 0)

    def accepted(self, request_id: str, chars: int) -> None:
        """The client ran ghostline.accepted for an item it inserted."""
        for shown in self._shown.values():
            if shown.request_id == request_id:
                if shown.accepted:
                    return
                shown.accepted = True
                break
        self.post_feedback(request_id, "accepted", chars)

    def post_feedback(self, request_id: str, event: str, chars: int) -> None:
        """POST /v1/feedback in the background (best effort: a daemon gone away loses the outcome, nothing else)."""
        task = asyncio.ensure_future(self._post_feedback({"id": request_id, "event": event, "chars": int(chars)}))
        self._feedback_tasks.add(task)
        task.add_done_callback(self._feedback_tasks.discard)

    async def _post_feedback(self, body: dict[str, Any]) -> None:
        import aiohttp

        if self._session is None or self._session.closed:
            return
        token = self.token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self._session.post(f"{self.daemon_url()}/v1/feedback", json=body, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=5.0)) as resp:
                if resp.status == 200:
                    self.stats["feedback"] += 1
                else:
                    log.info("daemon /v1/feedback: HTTP %s", resp.status)
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            log.info("daemon /v1/feedback failed: %s", _describe(e))

    def _daemon_failed(self, e: DaemonUnavailable) -> None:
        self.stats["failures"] += 1
        self._url = self._token = None
        self._down_until = time.monotonic() + self.options.retry_s
        log.warning("%s", e.detail)
        if self._outage == e.kind:
            return  # already told
        self._outage = e.kind
        retry = f"serving classical completions from the open buffers; retrying every {self.options.retry_s:g} s"
        if e.kind in ("auth", "refused"):
            hint = (f"Check the token file {self.token_file()} (or pass --token-file)" if e.kind == "auth" else
                    "Check --url (the daemon accepts loopback addresses)")
            msg = f"ghostline: {e.detail}. {hint}; {retry}."
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=msg))
        else:
            msg = f"ghostline: {e.detail}; {retry}. Start it with `agent daemon start`."
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Warning, message=msg))

    def _daemon_ok(self) -> None:
        if self._outage:
            self._outage = ""
            self.window_log_message(types.LogMessageParams(
                type=types.MessageType.Info, message=f"ghostline: connected to the daemon at {self.daemon_url()}"))

    def _classical(self, req: InfillRequest) -> str:
        """The fallback: identifiers and lines mined from the open buffers (each buffer re-mined only when it
        changed since the last fallback answer)."""
        for uri, doc in self.store.docs.items():
            if self._mined.get(uri) != doc.touched:
                self.classical.update_buffer(uri, doc.text)
                self._mined[uri] = doc.touched
        self.stats["classical"] += 1
        cands = self.classical.complete(req.prefix, req.suffix, n=1)
        if not cands:
            return ""
        # the same post-processing and credential scan as the daemon's answers (a buffer may hold a secret)
        comps, report = guard_completions(CompletionRequest(prefix=req.prefix, suffix=req.suffix), self.scanner(),
                                          [Completion(cands[0], [], "eos")])
        self.stats["secrets_blocked"] += len(report.blocked)
        return comps[0].content

    def scanner(self) -> SecretScanner:
        if self._scanner is None:
            self._scanner = SecretScanner()
        return self._scanner

    def forget(self, uri: str) -> None:
        self.settle(uri)
        task = self._inflight.pop(uri, None)
        if task is not None and not task.done():
            task.cancel()
        if uri in self._mined:
            del self._mined[uri]
            self.classical.update_buffer(uri, "")

    async def aclose(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        self._inflight.clear()
        for uri in list(self._shown):  # the editor is closing: what is still shown was typed through or dismissed
            self.settle(uri)
        if self._feedback_tasks:  # outcomes on their way: give them a moment, then let go
            await asyncio.wait(list(self._feedback_tasks), timeout=1.0)
            for t in list(self._feedback_tasks):
                t.cancel()
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


# ------------------------------------------------------------------------------------------------ outcomes

@dataclass
class Shown:
    """A completion from the daemon shown in a document, its outcome not decided yet."""

    request_id: str
    content: str
    offset: int  # code-point offset of the cursor it was shown at (-1: not followed for typing)
    typed: int = 0  # characters of `content` the user has typed since, at the cursor
    diverged: bool = False  # the user typed something else there (or the buffer was replaced)
    accepted: bool = False

    def observe(self, doc: Document, change: object, encoding: str) -> None:
        """One content change of the document, before it is applied: follow the typing at the cursor."""
        if self.offset < 0 or self.diverged or self.accepted:
            return
        cur = self.offset + self.typed
        text, rng = _change_parts(change)
        if rng is None:  # the whole document: an insertion at the cursor if all else stayed
            old = doc.text
            grow = len(text) - len(old)
            if grow > 0 and text.startswith(old[:cur]) and text.endswith(old[cur:]):
                self._typed(text[cur : cur + grow])
            else:
                self.diverged = True
            return
        a = doc.offset_at(rng[0][0], rng[0][1], encoding)
        b = doc.offset_at(rng[1][0], rng[1][1], encoding)
        a, b = min(a, b), max(a, b)
        if a == b == cur and text:
            self._typed(text)
        elif b <= self.offset:  # an edit before the completion: its anchor moves with it
            self.offset += len(text) - (b - a)
        elif a > cur:  # an edit after the cursor does not matter
            return
        else:  # a deletion or replacement of what was typed, or at the cursor: not following the completion
            self.diverged = True

    def _typed(self, text: str) -> None:
        if self.content.startswith(text, self.typed):
            self.typed += len(text)
        else:
            self.diverged = True


# --------------------------------------------------------------------------------------------- request/reply

@dataclass
class InfillRequest:
    body: dict[str, Any]
    prefix: str  # the whole prefix/suffix (the body holds the bounded ones)
    suffix: str
    position: types.Position  # the cursor (clamped into the document) when the request was made
    selected: types.SelectedCompletionInfo | None = None
    offset: int = -1  # the cursor as a code-point offset into the document
    touched: int = 0  # the document's edit stamp when the request was built


def build_request(doc: Document, line: int, character: int, encoding: str, server: GhostlineLanguageServer,
                  selected: types.SelectedCompletionInfo | None = None) -> InfillRequest:
    """The /infill body for the cursor at (line, character). With the editor's completion menu open
    (`selected`: the highlighted item's range and text), the completion continues the text as if that item were
    accepted -- LSP 3.18 requires the inline item to extend it over the same range."""
    opts = server.options
    n = doc.line_count()
    line = max(0, min(line, n - 1))
    off = doc.offset_at(line, character, encoding)
    prefix, suffix = doc.text[:off], doc.text[off:]
    if selected is not None:
        r = selected.range
        a = doc.offset_at(r.start.line, r.start.character, encoding)
        b = doc.offset_at(r.end.line, r.end.character, encoding)
        prefix, suffix = doc.text[:a] + selected.text, doc.text[max(b, off):]
    cur = doc.line_text(line)
    n_indent = len(cur) - len(cur.lstrip(" \t"))
    extra = server.store.extra_context(doc.uri, server.filename_of, n_chunks=opts.extra_chunks,
                                       chunk_lines=opts.extra_chunk_lines, max_chars=opts.extra_max_chars)
    body = {
        "input_prefix": _tail_lines(prefix, opts.max_prefix_lines),
        "input_suffix": _head_lines(suffix, opts.max_suffix_lines),
        "prompt": "",
        "input_extra": [{"text": c.text, "filename": c.filename} for c in extra],
        "n_indent": n_indent,
        "n_predict": opts.n_predict,
        "t_max_prompt_ms": opts.t_max_prompt_ms,
        "t_max_predict_ms": opts.t_max_predict_ms,
        "stop": [],
        "cache_prompt": True,
        "stream": False,
        "filename": server.filename_of(doc.uri),
        "client_id": doc.uri,  # a newer request of this document cancels the older one in the daemon
        "reports_outcomes": True,  # the bridge posts accepted/typed_through/dismissed: the daemon infers none
    }
    pl, pc = doc.position_at(off, encoding)
    return InfillRequest(body, prefix, suffix, types.Position(line=pl, character=pc), selected, off, doc.touched)


def _tail_lines(text: str, n: int) -> str:
    """The last n lines of text (the line the cursor is on counts as one)."""
    if n <= 0:
        return text
    pos = len(text)
    for _ in range(n):
        pos = text.rfind("\n", 0, pos)
        if pos < 0:
            return text
    return text[pos + 1 :]


def _head_lines(text: str, n: int) -> str:
    if n <= 0:
        return text
    pos = -1
    for _ in range(n):
        pos = text.find("\n", pos + 1)
        if pos < 0:
            return text
    return text[:pos]


def reply_items(content: str, req: InfillRequest, encoding: str,
                command: types.Command | None = None) -> list[types.InlineCompletionItem]:
    """One item inserting `content` at the cursor. When the completion ends the cursor's line with what already
    stands right of the cursor (e.g. the closing `)` of `f(|)`), the item replaces the rest of the line, so that
    text is not duplicated. `command` is run by the client after the item is inserted (telemetry)."""
    if not content or not content.strip():
        return []
    if req.selected is not None:
        return [types.InlineCompletionItem(insert_text=req.selected.text + content, range=req.selected.range,
                                           command=command)]
    rest = req.suffix.split("\n", 1)[0].rstrip("\r")
    first_line = content.split("\n", 1)[0]
    tail = rest.rstrip()
    rng = None
    if tail and (content.endswith(rest) or content.endswith(tail) or first_line.rstrip().endswith(tail)):
        pos = req.position
        end = types.Position(line=pos.line, character=pos.character + code_units(rest, encoding))
        rng = types.Range(start=pos, end=end)
    return [types.InlineCompletionItem(insert_text=content, range=rng, command=command)]


async def _error_message(resp: Any) -> str:
    try:
        obj = await resp.json(content_type=None)
        return str(obj["error"]["message"])
    except Exception:
        return resp.reason or f"HTTP {resp.status}"


def _describe(e: BaseException) -> str:
    s = str(e).strip()
    return s.split("\n", 1)[0] if s else type(e).__name__


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ghostline")
    except Exception:
        return "0"


# ------------------------------------------------------------------------------------------------- assembly

def configure_logging(level: str | int = logging.WARNING) -> None:
    """Log to stderr (stdout carries the protocol). pygls' own chatter (e.g. a $/cancelRequest for a request
    already answered, which editors send all the time) only at DEBUG."""
    lvl = level if isinstance(level, int) else getattr(logging, str(level).upper(), logging.WARNING)
    logging.basicConfig(level=lvl, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pygls").setLevel(lvl if lvl <= logging.DEBUG else logging.ERROR)


def create_server(options: BridgeOptions | None = None) -> GhostlineLanguageServer:
    server = GhostlineLanguageServer(options)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: GhostlineLanguageServer, params: types.InlineCompletionParams):
        return await ls.inline_completion(params)

    @server.command(ACCEPT_COMMAND)
    def accepted(ls: GhostlineLanguageServer, *args: Any) -> None:
        """arguments: [request id, characters inserted]."""
        if not args or not isinstance(args[0], str) or not args[0]:
            raise ValueError(f"{ACCEPT_COMMAND} takes [request id, characters]")
        chars = args[1] if len(args) > 1 and isinstance(args[1], int) and not isinstance(args[1], bool) else 0
        ls.accepted(args[0], max(0, chars))

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: GhostlineLanguageServer, *_: Any) -> None:
        await ls.aclose()

    return server


def run_stdio(options: BridgeOptions | None = None, stdin: Any = None, stdout: Any = None) -> int:
    """Serve LSP over stdin/stdout until the client says exit (or closes stdin). Returns the exit status: 0 after
    shutdown + exit, 1 when the client went away without shutting down (LSP's rule).

    pygls' `start_io` loop, plus closing the HTTP session on the server's own loop whichever way it ends."""
    import threading

    from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async

    server = create_server(options)
    server._stop_event = threading.Event()
    reader = StdinAsyncReader(stdin or sys.stdin.buffer, server.thread_pool)
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

    async def main() -> None:
        try:
            await run_async(stop_event=server._stop_event, reader=reader, protocol=server.protocol, logger=log,
                            error_handler=server.report_server_error)
        finally:
            await server.aclose()

    try:
        asyncio.run(main())
    except BrokenPipeError:
        log.warning("the editor closed the connection")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
    return 0 if server.protocol._shutdown else 1
