"""What the SDK-backed providers (anthropic.py, openai.py) share: the SDK imported in the background and the
client built on first use, one request per turn retried as a whole by `retrying_stream`, the client closed
inside the event loop."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from ghostline.agent.later import Later
from ghostline.agent.providers.base import StreamItem
from ghostline.agent.providers.retry import Failure, RetryPolicy, retrying_stream
from ghostline.agent.providers.sdk_import import SDKLoader

log = logging.getLogger(__name__)
_tls_lock = threading.Lock()
_tls_contexts: dict[str, Later] = {}  # HTTP library → its TLS context, shared by every client of this process


def _http_parts(client_class: type) -> tuple[type, ModuleType]:
    """The SDK's default async HTTP client class and the HTTP library it comes from (httpx, or the SDK's fork)."""
    base = sys.modules[client_class.__module__.rsplit(".", 1)[0] + "._base_client"]
    http_class = base.DefaultAsyncHttpxClient
    return http_class, sys.modules[http_class.__mro__[1].__module__.split(".")[0]]


def _tls_context(library: ModuleType) -> Later:
    """The library's default TLS context, built once per process in a thread of its own: loading the CA store
    (~40 ms) releases the GIL, so it runs on another core while the SDK's modules import."""
    with _tls_lock:
        if library.__name__ not in _tls_contexts:
            _tls_contexts[library.__name__] = Later(library.create_ssl_context, name="tls-context")
        return _tls_contexts[library.__name__]


def start_tls_context(client_class: type) -> None:
    """SDKLoader's `then`: the TLS context starts as soon as the client class is imported."""
    try:
        _tls_context(_http_parts(client_class)[1])
    except Exception:  # noqa: BLE001 - an SDK laid out otherwise: _http_client says so, later
        return


def _http_client(client_class: type) -> Any:
    """The SDK's default async HTTP client, with the TLS context shared by every client this process builds
    (loading the CA store costs ~40 ms of CPU per client, and `agent batch` builds one client per job). None
    when the SDK does not look as expected: it then builds its own."""
    try:
        http_class, library = _http_parts(client_class)
        return http_class(verify=_tls_context(library).get())
    except Exception:  # an SDK laid out otherwise: its own client is as good, just slower to build
        log.debug("no shared TLS context for %s", client_class, exc_info=True)
        return None


class RetryingSDKProvider:
    """Subclasses set `_sdk_loader` (from `sdk_import.load_sdk`) and `_client_kwargs` in __init__, and build
    `request_params`, `_attempt` and `_classify`. Building one does not wait for the SDK: `client` does, on
    first use (the first request), so the import overlaps with the rest of the agent's setup."""

    name: str
    model: str
    retry: RetryPolicy
    _sdk_loader: SDKLoader
    _client_kwargs: dict[str, Any]
    _client: Any = None  # an injected client (tests), else built by `client`

    @property
    def client(self) -> Any:
        """The SDK's async client, built on first use."""
        if self._client is None:
            client_class, _ = self._sdk_loader.get()
            http_client = _http_client(client_class)
            extra = {"http_client": http_client} if http_client is not None else {}
            self._client = client_class(**self._client_kwargs, **extra, **self._client_options(client_class))
        return self._client

    def _client_options(self, client_class: type) -> dict[str, Any]:
        """Options for the client that depend on the SDK's version (its class at hand)."""
        return {}

    @property
    def _sdk(self) -> ModuleType:
        """The module of the SDK's exception classes (APIStatusError, APIConnectionError, APIError)."""
        return self._sdk_loader.get()[1]

    def request_params(self, system: str, messages: list[Any], tools: list[Any], max_output_tokens: int,
                       stop: list[str] | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _attempt(self, params: dict[str, Any]) -> AsyncIterator[StreamItem]:
        raise NotImplementedError

    def _classify(self, exc: Exception) -> Failure:
        raise NotImplementedError

    def stream_turn(
        self,
        system: str,
        messages: list[Any],
        tools: list[Any],
        max_output_tokens: int,
        stop: list[str] | None = None,
    ) -> AsyncIterator[StreamItem]:
        params = self.request_params(system, messages, tools, max_output_tokens, stop)
        what = f"{self.name}:{self.model}"
        return retrying_stream(lambda: self._attempt(params), self._classify, self.retry, what)

    async def aclose(self) -> None:
        """Close the HTTP client, if one was built (call before the event loop ends)."""
        if self._client is not None:
            await self._client.close()
