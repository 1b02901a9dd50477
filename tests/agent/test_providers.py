"""Both native providers through the real SDKs against the fake server: streaming, tool calls, usage, prompt
caching, faults and retries, context-length errors, transcript translation."""

from __future__ import annotations

import json

import pytest

from ghostline.agent.models import make_provider
from ghostline.agent.providers.base import (
    ContextLengthError,
    ProviderError,
    StreamRetry,
    StreamText,
    ToolSpec,
    TurnComplete,
)
from ghostline.agent.providers.retry import RetryPolicy
from ghostline.compaction.transcript import Message, SummaryBlock, TextBlock, ToolResultBlock, ToolUseBlock
from tests.fakeserver import (
    FakeModelServer,
    context_length,
    cut_stream,
    http_date,
    overloaded,
    rate_limited,
    reply,
    server_error,
    status_error,
    stream_error,
    truncated_stream,
)

SPECS = {"anthropic": "anthropic:claude-haiku-4-5", "openai": "openai:gpt-4.1"}
TOOLS = [
    ToolSpec(
        "read",
        "Read a file",
        {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    ),
    ToolSpec("bash", "Run a command", {"type": "object", "properties": {"command": {"type": "string"}}}),
]


class Harness:
    """Builds providers against a fake server with a recording sleep, and closes them after the test."""

    def __init__(self, srv: FakeModelServer):
        self.srv = srv
        self.sleeps: list[float] = []
        self.providers: list = []

    async def _sleep(self, d: float) -> None:
        self.sleeps.append(d)

    def make(self, kind: str, max_attempts: int = 4, **kw):
        url = self.srv.anthropic_base_url if kind == "anthropic" else self.srv.openai_base_url
        policy = RetryPolicy(max_attempts=max_attempts, base_delay=0.01, sleep=self._sleep)
        p = make_provider(
            kw.pop("spec", SPECS[kind]),
            base_url=url,
            api_key=kw.pop("api_key", "sk-test"),
            retry=policy,
            **kw,
        )
        self.providers.append(p)
        return p

    async def close(self) -> None:
        for p in self.providers:
            await p.aclose()


@pytest.fixture
async def h(fake_server):
    harness = Harness(fake_server)
    yield harness
    await harness.close()


async def turn(p, messages=None, tools=TOOLS, system="You are a test agent.", max_out=1000) -> list:
    return [it async for it in p.stream_turn(system, messages or [Message.user("hi")], tools, max_out)]


def final(items: list) -> TurnComplete:
    completes = [i for i in items if isinstance(i, TurnComplete)]
    assert len(completes) == 1 and items[-1] is completes[0]
    return completes[0]


def visible_text(items: list) -> str:
    """What a consumer that honours StreamRetry (drops text streamed before it) ends up showing."""
    text = ""
    for it in items:
        if isinstance(it, StreamRetry):
            text = ""
        elif isinstance(it, StreamText):
            text += it.text
    return text


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_streaming_text(h, kind):
    h.srv.enqueue(reply(text="Hello there, this streams in several pieces."))
    items = await turn(h.make(kind))
    assert sum(isinstance(i, StreamText) for i in items) > 3
    done = final(items)
    assert visible_text(items) == done.message.text == "Hello there, this streams in several pieces."
    assert done.stop_reason == "end_turn" and done.message.role == "assistant"
    assert done.usage.output_tokens > 0 and done.usage.total_input > 0
    assert h.srv.errors == []


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_several_tool_calls_in_one_message(h, kind):
    h.srv.enqueue(
        reply(
            text="Reading both.",
            tool_calls=[
                ("read", {"path": "a.py"}, "id_a"),
                ("read", {"path": "dir/b.py"}, "id_b"),
                ("bash", {"command": "pytest -q \"tests\" && echo 'ok'"}, "id_c"),
            ],
        )
    )
    done = final(await turn(h.make(kind)))
    uses = done.message.tool_uses
    assert [(u.id, u.name, u.input) for u in uses] == [
        ("id_a", "read", {"path": "a.py"}),
        ("id_b", "read", {"path": "dir/b.py"}),
        ("id_c", "bash", {"command": "pytest -q \"tests\" && echo 'ok'"}),
    ]
    assert done.stop_reason == "tool_use" and done.message.text == "Reading both."
    body = h.srv.requests[-1].body
    assert body["stream"] is True
    if kind == "anthropic":
        assert [t["name"] for t in body["tools"]] == ["read", "bash"]
        assert body["tools"][0]["input_schema"]["required"] == ["path"]
        assert body["max_tokens"] == 1000
    else:
        assert [t["function"]["name"] for t in body["tools"]] == ["read", "bash"]
        assert body["tools"][0]["type"] == "function"
        assert body["stream_options"] == {"include_usage": True}
        assert body["max_completion_tokens"] == 1000 and "max_tokens" not in body


async def test_usage_with_cache_tokens_anthropic(h):
    h.srv.enqueue(
        reply(
            text="ok",
            usage={
                "input_tokens": 12,
                "output_tokens": 7,
                "cache_read_input_tokens": 900,
                "cache_creation_input_tokens": 300,
            },
        )
    )
    u = final(await turn(h.make("anthropic"))).usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens) == (
        12,
        7,
        900,
        300,
    )


async def test_usage_with_cached_tokens_openai(h):
    # prompt_tokens = 12 + 900 with prompt_tokens_details.cached_tokens = 900
    h.srv.enqueue(
        reply(text="ok", usage={"input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 900})
    )
    u = final(await turn(h.make("openai"))).usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens) == (
        12,
        7,
        900,
        0,
    )


async def test_anthropic_cache_control_on_stable_prefix_and_cache_hits(h):
    p = h.make("anthropic")
    h.srv.enqueue(reply(tool_calls=[("read", {"path": "a.py"}, "t1")]), reply(text="done"))
    system = "You are a careful agent. " * 400  # over the 2048-token minimum of Haiku models
    first = final(await turn(p, system=system))
    history = [
        Message.user("hi"),
        first.message,
        Message(role="user", content=[ToolResultBlock("t1", "print('a')")]),
    ]
    second = final(await turn(p, messages=history, system=system))
    b1, b2 = h.srv.bodies("anthropic")
    for body in (b1, b2):
        assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
        assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert "cache_control" not in body["tools"][0]
        assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert b2["system"][0]["text"] == system  # the prefix is byte-stable
    # the fake server simulates Anthropic's cache: the first turn writes the prefix, the second reads it
    assert first.usage.cache_creation_input_tokens > 500 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens >= first.usage.cache_creation_input_tokens
    assert h.srv.errors == []


FAULTS = {
    "overloaded-529": lambda: overloaded(),
    "rate-limited-429": lambda: rate_limited(retry_after="0"),
    "server-error-500": lambda: server_error(500),
    "cut-mid-tool-json": lambda: cut_stream(
        text="Let me look.", tool_calls=[("read", {"path": "a_long_file_name.py"})]
    ),
    "cut-mid-text": lambda: cut_stream(text="A sentence that is cut in the middle.", tool_calls=[]),
    "ended-before-message-stop": lambda: truncated_stream(
        text="Let me look.", tool_calls=[("read", {"path": "a_long_file_name.py"})]
    ),
    "error-event-in-stream": lambda: stream_error(text="Partial text before the error event."),
}
# A response cut off part-way is retried at once; a server that is struggling gets the backoff.
CUTS = {"cut-mid-tool-json", "cut-mid-text", "ended-before-message-stop"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_fault_is_retried_without_duplicates(h, kind, fault):
    good = reply(text="Let me look.", tool_calls=[("read", {"path": "a.py"}, "good_id")])
    h.srv.enqueue(FAULTS[fault](), good)
    items = await turn(h.make(kind))
    retries = [i for i in items if isinstance(i, StreamRetry)]
    assert len(retries) == 1 and retries[0].attempt == 1 and retries[0].error
    done = final(items)
    assert done.message.text == "Let me look." and visible_text(items) == "Let me look."
    assert [(u.id, u.input) for u in done.message.tool_uses] == [("good_id", {"path": "a.py"})]
    assert len(h.srv.requests) == 2 and h.srv.requests[0].body == h.srv.requests[1].body
    if fault in CUTS:
        assert retries[0].delay_s == 0 and h.sleeps == []
    else:
        assert h.sleeps == [retries[0].delay_s]


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize(
    "header,expected",
    [
        ({"retry_after": "2"}, 2.0),
        ({"retry_after": "0.5"}, 0.5),
        ({"retry_after_ms": "1500"}, 1.5),
        ({"retry_after_ms": "250", "retry_after": "9"}, 0.25),  # the precise header wins
    ],
)
async def test_retry_after_is_honoured(h, kind, header, expected):
    h.srv.enqueue(status_error(429 if kind == "openai" else 529, **header), reply(text="ok"))
    items = await turn(h.make(kind))
    (retry,) = [i for i in items if isinstance(i, StreamRetry)]
    assert retry.delay_s == pytest.approx(expected)
    assert h.sleeps == [pytest.approx(expected)]


async def test_retry_after_http_date(h):
    h.srv.enqueue(rate_limited(retry_after=http_date(30)), reply(text="ok"))
    items = await turn(h.make("openai"))
    (retry,) = [i for i in items if isinstance(i, StreamRetry)]
    assert 25 <= retry.delay_s <= 30


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_backoff_grows_then_gives_up(h, kind):
    h.srv.enqueue(*[server_error(503) for _ in range(4)])
    with pytest.raises(ProviderError, match="after 4 attempts"):
        await turn(h.make(kind, max_attempts=4))
    assert len(h.srv.requests) == 4 and len(h.sleeps) == 3
    # exponential with +-25% jitter around 0.01, 0.02, 0.04
    for got, base in zip(h.sleeps, [0.01, 0.02, 0.04], strict=True):
        assert base * 0.75 <= got <= base * 1.25


@pytest.mark.parametrize("kind,limit", [("anthropic", 200_000), ("openai", 128_000)])
async def test_context_length_error_is_parsed_and_not_retried(h, kind, limit):
    h.srv.enqueue(context_length(tokens=250_000, limit=limit))
    with pytest.raises(ContextLengthError) as exc:
        await turn(h.make(kind))
    assert exc.value.limit == limit
    assert len(h.srv.requests) == 1 and h.sleeps == []


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_bad_key_is_not_retried(h, kind):
    h.srv.api_key = "the-right-key"
    with pytest.raises(ProviderError, match="401"):
        await turn(h.make(kind, api_key="wrong"))
    assert len(h.srv.requests) == 1


def _history() -> list[Message]:
    return [
        Message(role="user", content=[SummaryBlock("Earlier: we renamed X to Y in a.py.")]),
        Message(role="assistant", content=[TextBlock("Continuing.")]),
        Message.user("now run the tests"),
        Message(
            role="assistant",
            content=[
                TextBlock("Running."),
                ToolUseBlock("c1", "bash", {"command": "pytest"}),
                ToolUseBlock("c2", "read", {"path": "x.py"}),
            ],
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock("c1", "1 failed", is_error=True, meta={"exit_code": 1}),
                ToolResultBlock("c2", ""),
                TextBlock("also check y.py"),
            ],
        ),
    ]


async def test_transcript_to_anthropic_wire(h):
    h.srv.enqueue(reply(text="ok"))
    final(await turn(h.make("anthropic"), messages=_history()))
    assert h.srv.errors == []  # the server validates roles and tool_use/tool_result pairing
    msgs = h.srv.requests[-1].body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert "Earlier: we renamed X to Y" in msgs[0]["content"][0]["text"]
    assert msgs[3]["content"][1] == {
        "type": "tool_use",
        "id": "c1",
        "name": "bash",
        "input": {"command": "pytest"},
    }
    last = msgs[4]["content"]
    assert last[0]["type"] == "tool_result" and last[0]["tool_use_id"] == "c1" and last[0]["is_error"] is True
    assert last[0]["content"] == "1 failed" and "meta" not in last[0]
    assert last[1]["tool_use_id"] == "c2" and "is_error" not in last[1] and last[1]["content"]
    assert last[2]["type"] == "text" and last[2]["text"] == "also check y.py"


async def test_transcript_to_openai_wire(h):
    h.srv.enqueue(reply(text="ok"))
    final(await turn(h.make("openai"), messages=_history()))
    assert h.srv.errors == []
    msgs = h.srv.requests[-1].body["messages"]
    assert [m["role"] for m in msgs] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "tool",
        "user",
    ]
    assert msgs[0]["content"] == "You are a test agent."
    calls = msgs[4]["tool_calls"]
    assert [c["id"] for c in calls] == ["c1", "c2"] and json.loads(calls[0]["function"]["arguments"]) == {
        "command": "pytest"
    }
    assert msgs[5] == {"role": "tool", "tool_call_id": "c1", "content": "Error: 1 failed"}
    assert msgs[7] == {"role": "user", "content": "also check y.py"}


async def test_openai_malformed_arguments_keep_raw_string(h):
    h.srv.enqueue(
        reply(tool_calls=[("read", '{"path": "a.py"', "bad1"), ("read", {"path": "b.py"}, "ok1")]),
        reply(text="fixed"),
    )
    p = h.make("openai")
    done = final(await turn(p))
    bad, ok = done.message.tool_uses
    assert bad.input == {} and bad.raw_arguments == '{"path": "a.py"'
    assert ok.input == {"path": "b.py"} and ok.raw_arguments is None
    # the transcript with that call goes back to the server as valid JSON
    history = [
        Message.user("hi"),
        done.message,
        Message(
            role="user", content=[ToolResultBlock("bad1", "error: not a JSON object", is_error=True), ToolResultBlock("ok1", "b")]
        ),
    ]
    final(await turn(p, messages=history))
    assert h.srv.errors == []
    sent = h.srv.requests[-1].body["messages"][2]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(sent) == {}


async def test_sdk_env_vars_select_the_server(fake_model_env):
    srv = fake_model_env
    srv.enqueue(reply(text="from env a"), reply(text="from env o"))
    pa = make_provider("anthropic:claude-haiku-4-5", retry=RetryPolicy(max_attempts=1))
    po = make_provider("openai:gpt-4o-mini", retry=RetryPolicy(max_attempts=1))
    try:
        assert final(await turn(pa)).message.text == "from env a"
        assert final(await turn(po)).message.text == "from env o"
    finally:
        await pa.aclose()
        await po.aclose()
    ra, ro = srv.requests
    assert ra.provider == "anthropic" and "anthropic-version" in ra.headers
    # SDK versions differ: x-api-key, or the key as a bearer token
    assert "sk-ant-test-key" in (ra.headers.get("x-api-key"), ra.headers.get("authorization", "")[7:])
    assert ro.provider == "openai" and ro.headers["authorization"] == "Bearer sk-test-key"


async def test_local_server_without_key_uses_placeholder(h, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    h.srv.enqueue(reply(text="local"))
    p = make_provider(
        "openai:qwen2.5-coder", base_url=h.srv.openai_base_url, retry=RetryPolicy(max_attempts=1)
    )
    h.providers.append(p)
    done = final(await turn(p, tools=[]))
    assert done.message.text == "local"
    body = h.srv.requests[-1].body
    assert "tools" not in body and body["max_tokens"] == 1000  # unknown models get the widely supported field
    assert h.srv.requests[-1].headers["authorization"].startswith("Bearer ")


def test_fake_server_non_streaming_and_sync_clients():
    import anthropic
    import openai

    with FakeModelServer(
        [reply(text="plain", tool_calls=[("read", {"path": "a"}, "x1")]), reply(text="plain o")]
    ) as srv:
        a = anthropic.Anthropic(base_url=srv.anthropic_base_url, api_key="k", max_retries=0)
        m = a.messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert (
            m.content[0].text == "plain"
            and m.content[1].input == {"path": "a"}
            and m.stop_reason == "tool_use"
        )
        o = openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0)
        c = o.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
        assert c.choices[0].message.content == "plain o" and c.usage.prompt_tokens > 0
        a.close()
        o.close()


def test_fake_server_rejects_unpaired_tool_results():
    import openai

    with FakeModelServer([reply(text="x")]) as srv:
        o = openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0)
        with pytest.raises(openai.BadRequestError):
            o.chat.completions.create(
                model="m",
                messages=[
                    {"role": "user", "content": "hi"},
                    {"role": "tool", "tool_call_id": "nope", "content": "r"},
                ],
            )
        o.close()
        assert srv.errors and "tool" in srv.errors[0] and srv.remaining == 1


def test_fake_server_dynamic_script():
    import openai

    seen = []

    def script(body, provider):
        seen.append(provider)
        return f"echo {body['messages'][-1]['content']}"

    with FakeModelServer(script) as srv:
        o = openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0)
        s = o.chat.completions.create(model="m", messages=[{"role": "user", "content": "ping"}], stream=True)
        assert "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices) == "echo ping"
        o.close()
    assert seen == ["openai"]


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_call_without_tools_flattens_tool_blocks(h, kind):
    # e.g. a summarising call: no tools offered, but the history holds tool calls and results
    h.srv.enqueue(reply(text="summary"))
    done = final(await turn(h.make(kind), messages=_history(), tools=[]))
    assert done.message.text == "summary" and h.srv.errors == []
    body = h.srv.requests[-1].body
    assert "tools" not in body
    wire = json.dumps(body["messages"])
    assert "tool_use" not in wire and "tool_calls" not in wire and '"tool"' not in wire
    assert "[tool call bash" in wire and "[error from bash]" in wire


async def test_consumer_stopping_early_closes_the_stream(h):
    h.srv.enqueue(reply(text="a long answer " * 50, chunk_size=3), reply(text="next"))
    p = h.make("openai")
    agen = p.stream_turn("s", [Message.user("hi")], [], 100)
    first = await agen.__anext__()
    assert isinstance(first, StreamText)
    await agen.aclose()
    # the provider is still usable for the next turn
    assert final(await turn(p)).message.text == "next"


def test_fake_server_non_streaming_faults():
    import openai

    with FakeModelServer([cut_stream(text="half"), stream_error(), reply(text="ok")]) as srv:
        o = openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0)
        with pytest.raises(openai.APIConnectionError):
            o.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.InternalServerError):
            o.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert (
            o.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            .choices[0]
            .message.content
            == "ok"
        )
        o.close()


def test_openai_tool_call_deltas_from_unusual_servers():
    from types import SimpleNamespace as NS

    from ghostline.agent.providers.openai import _accumulate_call

    def tc(index, id=None, name=None, args=None):
        return NS(index=index, id=id, function=NS(name=name, arguments=args))

    calls: list = []
    by_index: dict = {}
    # whole calls, all at index 0, told apart by their ids (some local servers); the name repeated on each delta
    for d in [
        tc(0, "a", "read", '{"path":'),
        tc(0, None, "read", ' "x"}'),
        tc(0, "b", "bash", '{"command": "ls"}'),
    ]:
        _accumulate_call(d, by_index, calls)
    assert [(c["id"], c["name"], c["args"]) for c in calls] == [
        ("a", "read", '{"path": "x"}'),
        ("b", "bash", '{"command": "ls"}'),
    ]
