"""Retries shared by every provider: at once after a cut stream, else exponential backoff with jitter, honouring
retry-after.

The SDKs' own retries are switched off (max_retries=0) so these are the only ones. A provider classifies each
exception into a `Failure` (retry it, or give up with a ContextLengthError/ProviderError); `retrying_stream`
re-runs the whole turn, yielding a StreamRetry before each new attempt so consumers drop the partial output.

Two kinds of retryable failure wait differently. A server that says it is struggling (429, 529, 5xx, an error
event in the stream) or cannot be reached gets the backoff, or the wait its retry-after asks for. A response cut
off part-way (connection reset, an incomplete chunked body, a stream that ended before its last event) says
nothing about the server's load, so it is retried at once; a second cut in a row backs off like the rest, so a
server that keeps cutting is not hammered.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ghostline.agent.providers.base import ProviderError, StreamItem, StreamRetry


class IncompleteStream(Exception):
    """The stream ended before the message was complete (no message_stop / finish_reason)."""


@dataclass
class RetryPolicy:
    max_attempts: int = 6  # total attempts per turn, the first included
    base_delay: float = 1.0  # seconds; doubled each attempt
    max_delay: float = 60.0  # cap of the exponential delay
    max_retry_after: float = 600.0  # a server asking for longer than this is honoured only up to it
    jitter: float = 0.25  # the exponential delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        exp = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        factor = 1.0 + self.jitter * (2.0 * self.rng.random() - 1.0)
        return max(0.0, min(self.max_delay, exp * factor))


@dataclass
class Failure:
    """A retryable failure of one attempt."""

    message: str
    retry_after: float | None = None
    cut: bool = False  # the response broke off part-way (see is_stream_cut): retried at once


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` as seconds or an HTTP date; None if absent/bad."""
    if not headers:
        return None
    get = headers.get
    ms = get("retry-after-ms") or get("Retry-After-Ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    ra = get("retry-after") or get("Retry-After")
    if not ra:
        return None
    ra = ra.strip()
    try:
        value = float(ra)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def should_retry_header(headers: Mapping[str, str] | None) -> bool | None:
    """The servers' explicit advice (`x-should-retry: true|false`, sent by Anthropic and OpenAI), or None."""
    value = (headers or {}).get("x-should-retry")
    if value == "true":
        return True
    if value == "false":
        return False
    return None


# httpx2 (used by the current SDKs) and httpx: errors raised while reading a streamed body are not wrapped by the
# SDKs, so they are recognised here by their base classes.
def is_transport_error(exc: BaseException) -> bool:
    if _is_transport_class(exc, ("TransportError", "StreamError", "RemoteProtocolError", "TimeoutException")):
        return True
    return isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError, IncompleteStream))


# Transport errors of a connection that reached the server and broke off (httpx2, httpx and httpcore use these
# names): a reset while reading or writing, a body that ended early ("incomplete chunked read", "server
# disconnected without sending a response"). Connect errors and timeouts are not cuts.
_CUT_ERROR_NAMES = ("ReadError", "WriteError", "RemoteProtocolError")


def is_stream_cut(exc: BaseException) -> bool:
    """Whether `exc` (or the error it was raised from) is a response cut off part-way, as opposed to a server
    that cannot be reached or asks to slow down."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (IncompleteStream, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return True
        if _is_transport_class(current, _CUT_ERROR_NAMES):
            return True
        current = current.__cause__
    return False


def _is_transport_class(exc: BaseException, names: tuple[str, ...]) -> bool:
    for mod_name in ("httpx2", "httpx", "httpcore2", "httpcore"):
        mod = sys.modules.get(mod_name)
        if mod is None:
            continue
        for cls_name in names:
            cls = getattr(mod, cls_name, None)
            if isinstance(cls, type) and isinstance(exc, cls):
                return True
    return False


def transport_failure(exc: BaseException, where: Any) -> Failure:
    """The Failure for a transport error talking to `where` (a base URL): a cut, or a server not reached."""
    detail = f"{type(exc).__name__}: {exc}"
    if is_stream_cut(exc):
        return Failure(f"the response from {where} was cut off: {detail}", cut=True)
    return Failure(f"cannot reach {where}: {detail}")


async def retrying_stream(
    attempt_fn: Callable[[], AsyncIterator[StreamItem]],
    classify: Callable[[Exception], Failure],
    policy: RetryPolicy,
    what: str = "model call",
) -> AsyncIterator[StreamItem]:
    """Run `attempt_fn()` until one attempt completes. `classify` raises for fatal errors and returns a Failure
    for retryable ones. Each retry yields StreamRetry(attempt=N) where N is the number of the failed attempt;
    its delay_s is 0 for a cut retried at once."""
    attempt = 1
    previous_cut = False
    while True:
        failure: Failure | None = None
        agen = attempt_fn()
        try:
            async for item in agen:
                yield item
            return
        except Exception as exc:  # noqa: BLE001 - classify decides; it raises what is fatal
            failure = classify(exc)
            if attempt >= policy.max_attempts:
                raise ProviderError(f"{what} failed after {attempt} attempts: {failure.message}") from exc
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()  # closes the HTTP stream now, also when the consumer stops early
        at_once = failure.cut and not previous_cut
        previous_cut = failure.cut
        delay = 0.0 if at_once else policy.delay(attempt, failure.retry_after)
        yield StreamRetry(attempt=attempt, delay_s=delay, error=failure.message)
        if not at_once:
            await policy.sleep(delay)
        attempt += 1
