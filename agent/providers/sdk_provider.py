"""What the SDK-backed providers (anthropic.py, openai.py) share: the SDK imported in the background and the
client built on first use, one request per turn retried as a whole by `retrying_stream`, the client closed
inside the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from ghostline.agent.providers.base import StreamItem
from ghostline.agent.providers.retry import Failure, RetryPolicy, retrying_stream
from ghostline.agent.providers.sdk_import import SDKLoader


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
            self._client = client_class(**self._client_kwargs)
        return self._client

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
