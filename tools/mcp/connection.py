"""One connection to an MCP server (the official SDK's `Client`): start, list tools, call, follow changes, stop.

The SDK's client lives in anyio cancel scopes that must be entered and left by one task, so each connection
runs in its own task, from `start` to `stop`; calls come from any task. A stdio server's end of output (it
exited or crashed) and a failed call that shows the connection is gone both end the connection, and
`on_closed` says why in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CONNECTION_CLOSED
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ghostline.tools.mcp.spec import ServerSpec

log = logging.getLogger(__name__)

CLIENT_INFO = types.Implementation(name="ghostline", version="0.1.0")
MAX_TOOL_PAGES = 100


class ServerError(Exception):
    """A server could not be started or reached: one line, naming the server."""


class ServerGone(ServerError):
    """The connection ended (the server exited, crashed or hung up)."""


class ServerConnection:
    def __init__(self, spec: ServerSpec, *, log_dir: Path | None = None,
                 on_tools_changed: Callable[[ServerConnection], Awaitable[None]] | None = None,
                 on_closed: Callable[[ServerConnection, str], None] | None = None) -> None:
        self.spec = spec
        self.tools: list[types.Tool] = []
        self.closed_reason: str | None = None
        self._log_dir = log_dir
        self._on_tools_changed = on_tools_changed
        self._on_closed = on_closed
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._done: anyio.Event | None = None
        self._stopping = False
        self._errlog: IO[str] | None = None

    @property
    def alive(self) -> bool:
        return self._client is not None and self.closed_reason is None

    # -- life ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and list the tools. Raises ServerError (one line) when the server cannot be reached."""
        self._task = asyncio.create_task(self._live(), name=f"mcp:{self.spec.name}")
        ready = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the startup timeout: the connection is not wanted any more
            ready.cancel()
            await self.stop()
            raise
        ready.cancel()
        if not self._ready.is_set():
            raise ServerError(self.closed_reason or f"MCP server {self.spec.name!r} stopped while starting")

    async def stop(self) -> None:
        self._stopping = True
        if self._done is not None:
            self._done.set()
        task = self._task
        if task is not None and not task.done():
            if self._ready.is_set():  # a clean goodbye: the SDK closes stdin, then terminates, then kills
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(task), 10)
            task.cancel()  # still starting (or deaf to the goodbye): cancelling the handshake stops it
            with contextlib.suppress(BaseException):
                await task
        if self._errlog is not None:
            self._errlog.close()
            self._errlog = None

    async def _live(self) -> None:
        self._done = anyio.Event()
        try:
            async with Client(self._transport(), message_handler=self._on_message, client_info=CLIENT_INFO,
                              cache=None) as client:
                self._client = client
                self.tools = await _list_tools(client)
                self._ready.set()
                async with anyio.create_task_group() as tg:
                    if _wants_listen(client):
                        tg.start_soon(self._listen, client)
                    await self._done.wait()
                    tg.cancel_scope.cancel()
        except Exception as exc:  # noqa: BLE001 - whatever ended it, the user gets one line
            self._close(describe_failure(self.spec, exc, self._stderr_tail()))
        else:
            self._close(f"MCP server {self.spec.name!r} exited" + _tail_note(self._stderr_tail()))
        finally:
            self._client = None

    def _close(self, reason: str) -> None:
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        if self._done is not None:
            self._done.set()
        if not self._stopping and self._ready.is_set() and self._on_closed is not None:
            self._on_closed(self, reason)

    def _transport(self) -> Any:
        if self.spec.url:
            return _http_transport(self.spec)
        params = StdioServerParameters(command=self.spec.command or "", args=list(self.spec.args),
                                       env=dict(self.spec.env) or None, cwd=self.spec.cwd)
        self._errlog = self._open_errlog()
        assert self._done is not None
        return _watch_eof(stdio_client(params, errlog=self._errlog), self._done)

    # -- calls ---------------------------------------------------------------------------------------------

    async def call(self, tool: str, args: dict[str, Any], timeout: float) -> types.CallToolResult:
        """Call `tool`; raises TimeoutError after `timeout` seconds, ServerGone when the connection is lost."""
        client = self._client
        if client is None or self.closed_reason is not None:
            raise ServerGone(self.closed_reason or f"MCP server {self.spec.name!r} is not running")
        try:
            return await asyncio.wait_for(client.call_tool(tool, args), timeout)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self._close(f"MCP server {self.spec.name!r} stopped" + _tail_note(self._stderr_tail()))
                raise ServerGone(self.closed_reason or "") from None
            raise
        except httpx2.TransportError as exc:
            self._close(f"MCP server {self.spec.name!r} cannot be reached: {exc}")
            raise ServerGone(self.closed_reason or "") from None

    # -- changes -------------------------------------------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            asyncio.get_running_loop().create_task(self._refresh_tools())

    async def _listen(self, client: Client) -> None:
        """2026-07-28 servers send list changes only on a `subscriptions/listen` stream the client opened; the
        notifications it carries reach `_on_message` like a legacy server's do."""
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                async for _ in subscription:
                    pass
        except Exception:  # noqa: BLE001 - no change stream: the tools stay as listed
            log.debug("listen on %s ended", self.spec.name, exc_info=True)

    async def _refresh_tools(self) -> None:
        client = self._client
        if client is None:
            return
        try:
            self.tools = await _list_tools(client)
        except Exception:  # noqa: BLE001 - a failed refresh keeps the last list
            log.debug("tools/list on %s failed", self.spec.name, exc_info=True)
            return
        if self._on_tools_changed is not None:
            await self._on_tools_changed(self)

    # -- the server's stderr -------------------------------------------------------------------------------

    def _open_errlog(self) -> IO[str] | None:
        if self._log_dir is None:
            return open("/dev/null", "w")  # noqa: SIM115 - closed in stop()
        try:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            return open(self._log_dir / f"{self.spec.name}.log", "a", encoding="utf-8")  # noqa: SIM115
        except OSError:
            return open("/dev/null", "w")  # noqa: SIM115

    def _stderr_tail(self) -> str:
        if self._log_dir is None:
            return ""
        try:
            lines = (self._log_dir / f"{self.spec.name}.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""


async def _list_tools(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _wants_listen(client: Client) -> bool:
    caps = client.server_capabilities.tools
    return bool(caps and caps.list_changed) and client.protocol_version in MODERN_PROTOCOL_VERSIONS


@contextlib.asynccontextmanager
async def _http_transport(spec: ServerSpec) -> AsyncIterator[Any]:
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers=dict(spec.headers), timeout=timeout) as http:
        async with streamable_http_client(spec.url or "", http_client=http) as streams:
            yield streams


@contextlib.asynccontextmanager
async def _watch_eof(transport: Any, done: anyio.Event) -> AsyncIterator[Any]:
    """The transport, with its read stream telling `done` when the server's output ends."""
    async with transport as (read, write):
        yield _EofWatch(read, done), write


class _EofWatch:
    """A read stream that sets an event when it ends, so a server that exits while idle is noticed."""

    def __init__(self, stream: Any, done: anyio.Event) -> None:
        self._stream = stream
        self._done = done

    async def receive(self) -> Any:
        try:
            return await self._stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._done.set()
            raise

    def __aiter__(self) -> _EofWatch:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> _EofWatch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def describe_failure(spec: ServerSpec, exc: BaseException, stderr_tail: str = "") -> str:
    """One line for why a server could not be reached or stopped."""
    leaf = _leaf(exc)
    if isinstance(leaf, FileNotFoundError):
        why = f"command not found: {spec.command}"
    elif isinstance(leaf, PermissionError):
        why = f"cannot run {spec.command}: permission denied"
    elif isinstance(leaf, MCPError) and leaf.code == CONNECTION_CLOSED:
        why = "it exited"
    elif isinstance(leaf, httpx2.TransportError):
        why = f"cannot reach {spec.url}: {leaf}"
    elif isinstance(leaf, httpx2.HTTPStatusError):
        why = f"{spec.url} answered HTTP {leaf.response.status_code}"
    else:
        text = " ".join(str(leaf).split())
        why = f"{type(leaf).__name__}" + (f": {text}" if text else "")
    return f"MCP server {spec.name!r} failed: {why}" + _tail_note(stderr_tail)


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _tail_note(tail: str) -> str:
    tail = " ".join(tail.split())
    if not tail:
        return ""
    return f" (its last words: {tail[:200]})"
