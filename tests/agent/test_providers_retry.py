"""How long a retry waits, through the real SDKs against the fake server: a response cut off part-way is
retried at once (a second cut in a row backs off); 429/529/5xx and an unreachable server back off, honouring
retry-after."""

from __future__ import annotations

import socket

import httpx2
import pytest

from ghostline.agent.models import make_provider
from ghostline.agent.providers.base import ProviderError, StreamRetry
from ghostline.agent.providers.retry import (
    Failure,
    IncompleteStream,
    RetryPolicy,
    is_stream_cut,
    retrying_stream,
)
from tests.agent.test_providers import SPECS, Harness, final, turn, visible_text
from tests.fakeserver import (
    cut_stream,
    overloaded,
    rate_limited,
    reply,
    server_error,
    status_error,
    truncated_stream,
)

KINDS = ["anthropic", "openai"]
GOOD = reply(text="Let me look.", tool_calls=[("read", {"path": "a.py"}, "good_id")])
CUTS = {
    "reset-mid-tool-json": lambda: cut_stream(text="Let me look.", tool_calls=[("read", {"path": "long.py"})]),
    "reset-mid-text": lambda: cut_stream(text="A sentence that is cut in the middle.", tool_calls=[]),
    "reset-before-any-event": lambda: cut_stream(text="", tool_calls=[]),
    "ended-mid-tool-json": lambda: truncated_stream(text="", tool_calls=[("read", {"path": "long_name.py"})]),
    "ended-mid-text": lambda: truncated_stream(text="A sentence that ends early.", tool_calls=[]),
}


@pytest.fixture
async def h(fake_server):
    harness = Harness(fake_server)
    yield harness
    await harness.close()


def retries(items: list) -> list[StreamRetry]:
    return [i for i in items if isinstance(i, StreamRetry)]


@pytest.mark.parametrize("cut", sorted(CUTS))
@pytest.mark.parametrize("kind", KINDS)
async def test_a_cut_stream_is_retried_at_once(h, kind, cut):
    h.srv.enqueue(CUTS[cut](), GOOD)
    items = await turn(h.make(kind))
    (retry,) = retries(items)
    assert retry.delay_s == 0 and h.sleeps == []  # no backoff, not even a zero-second sleep
    assert "cut off" in retry.error
    done = final(items)
    assert visible_text(items) == done.message.text == "Let me look."
    assert [(u.id, u.input) for u in done.message.tool_uses] == [("good_id", {"path": "a.py"})]
    assert len(h.srv.requests) == 2 and h.srv.errors == []


@pytest.mark.parametrize("kind", KINDS)
async def test_a_second_cut_in_a_row_backs_off(h, kind):
    h.srv.enqueue(cut_stream(), truncated_stream(), cut_stream(), GOOD)
    items = await turn(h.make(kind, max_attempts=5))
    delays = [r.delay_s for r in retries(items)]
    assert delays[0] == 0 and delays[1] > 0 and delays[2] > 0
    assert h.sleeps == delays[1:]
    assert final(items).message.tool_uses[0].id == "good_id"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_struggling_server_after_a_cut_gets_its_retry_after(h, kind):
    h.srv.enqueue(cut_stream(), status_error(429 if kind == "openai" else 529, retry_after="2"), GOOD)
    items = await turn(h.make(kind))
    assert [r.delay_s for r in retries(items)] == [0, 2.0]
    assert h.sleeps == [2.0]


@pytest.mark.parametrize("fault", [overloaded, lambda: rate_limited(retry_after=None), server_error,
                                   lambda: server_error(503)])
@pytest.mark.parametrize("kind", KINDS)
async def test_status_errors_back_off(h, kind, fault):
    h.srv.enqueue(fault(), GOOD)
    items = await turn(h.make(kind))
    (retry,) = retries(items)
    assert retry.delay_s > 0 and h.sleeps == [retry.delay_s]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", KINDS)
async def test_an_unreachable_server_backs_off(h, kind):
    url = f"http://127.0.0.1:{_closed_port()}" + ("/v1" if kind == "openai" else "")
    p = make_provider(SPECS[kind], base_url=url, api_key="k",
                      retry=RetryPolicy(max_attempts=3, base_delay=0.01, sleep=h._sleep))
    h.providers.append(p)
    with pytest.raises(ProviderError, match="after 3 attempts: cannot reach"):
        await turn(p)
    assert len(h.sleeps) == 2 and all(d > 0 for d in h.sleeps)


def test_what_counts_as_a_cut():
    import anthropic

    request = httpx2.Request("POST", "http://127.0.0.1/v1/messages")

    def wrapped(cause: Exception) -> Exception:
        err = anthropic.APIConnectionError(request=request)
        err.__cause__ = cause
        return err

    assert is_stream_cut(IncompleteStream("no message_stop"))
    assert is_stream_cut(httpx2.RemoteProtocolError("incomplete chunked read"))
    assert is_stream_cut(httpx2.ReadError("connection reset by peer"))
    assert is_stream_cut(ConnectionResetError())
    assert is_stream_cut(wrapped(httpx2.RemoteProtocolError("Server disconnected without sending a response")))
    assert not is_stream_cut(httpx2.ConnectError("connection refused"))
    assert not is_stream_cut(httpx2.ConnectTimeout("timed out"))
    assert not is_stream_cut(httpx2.ReadTimeout("timed out"))
    assert not is_stream_cut(wrapped(httpx2.ConnectError("connection refused")))
    assert not is_stream_cut(ValueError("not a transport error"))


async def test_retrying_stream_gives_up_after_max_attempts_of_cuts():
    sleeps: list[float] = []

    async def sleep(d: float) -> None:
        sleeps.append(d)

    async def attempt():
        raise IncompleteStream("ended early")
        yield  # pragma: no cover - makes this an async generator

    policy = RetryPolicy(max_attempts=3, base_delay=0.5, jitter=0, sleep=sleep)
    items = []
    with pytest.raises(ProviderError, match="after 3 attempts"):
        async for item in retrying_stream(attempt, lambda e: Failure(str(e), cut=True), policy):
            items.append(item)
    assert [r.delay_s for r in items] == [0, 1.0] and sleeps == [1.0]
