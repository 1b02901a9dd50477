"""The text ReAct protocol: parsing model replies, and a round trip through real SDKs and the fake server."""

from __future__ import annotations

import pytest

from ghostline.agent.models import make_provider
from ghostline.agent.providers.base import StreamRetry, StreamText, ToolSpec, TurnComplete
from ghostline.agent.providers.react import ReactProvider, parse_reply, to_text_transcript
from ghostline.agent.providers.retry import RetryPolicy
from ghostline.compaction.transcript import Message, TextBlock, ToolResultBlock, ToolUseBlock
from tests.fakeserver import overloaded, reply

TOOLS = [
    ToolSpec("read", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}}),
    ToolSpec("bash", "Run a command", {"type": "object", "properties": {"command": {"type": "string"}}}),
]


def test_parse_plain_action():
    prose, calls = parse_reply(
        'Thought: I need the file.\nAction: {"tool": "read", "input": {"path": "a.py"}}'
    )
    assert prose == "Thought: I need the file."
    assert [(c.name, c.input) for c in calls] == [("read", {"path": "a.py"})]


def test_parse_code_fence_and_trailing_text():
    text = 'Thought: look\nAction:\n```json\n{"tool": "bash", "input": {"command": "ls {a,b}"}}\n```\nI will wait.'
    prose, calls = parse_reply(text)
    assert prose == "Thought: look" and [(c.name, c.input) for c in calls] == [
        ("bash", {"command": "ls {a,b}"})
    ]


def test_parse_several_actions_and_hallucinated_observation():
    text = (
        'Thought: both\nAction: {"tool": "read", "input": {"path": "a"}}\n'
        'Action: {"tool": "read", "input": {"path": "b"}} trailing words\n'
        'Observation: (made up by the model)\nAction: {"tool": "bash", "input": {"command": "rm -rf /"}}'
    )
    _, calls = parse_reply(text)
    assert [c.input for c in calls] == [{"path": "a"}, {"path": "b"}]  # nothing after the fake Observation
    assert len({c.id for c in calls}) == 2


def test_parse_alternative_keys_and_fenced_json_without_label():
    _, calls = parse_reply('Action: {"name": "read", "arguments": "{\\"path\\": \\"x\\"}"}')
    assert [(c.name, c.input) for c in calls] == [("read", {"path": "x"})]
    prose, calls = parse_reply('I will read it.\n```json\n{"tool": "read", "input": {"path": "y"}}\n```')
    assert prose == "I will read it." and [c.input for c in calls] == [{"path": "y"}]


def test_parse_malformed_action_becomes_error_call():
    _, calls = parse_reply('Action: {"tool": "read", "input": {"path": "a.py"')
    assert len(calls) == 1 and calls[0].name == "read" and calls[0].raw_arguments
    _, calls = parse_reply("Action: read the file a.py")
    assert calls[0].name == "invalid_action" and calls[0].raw_arguments == "read the file a.py"


def test_parse_final_answer():
    assert parse_reply("Thought: done.\nThe answer is 42.") == ("Thought: done.\nThe answer is 42.", [])


def test_text_transcript():
    msgs = [
        Message.user("go"),
        Message(
            role="assistant",
            content=[
                TextBlock("Thought: t"),
                ToolUseBlock("r1", "read", {"path": "a"}),
                ToolUseBlock("r2", "bash", {"command": "x"}),
            ],
        ),
        Message(
            role="user", content=[ToolResultBlock("r1", "AAA"), ToolResultBlock("r2", "boom", is_error=True)]
        ),
    ]
    out = to_text_transcript(msgs)
    assert [m.role for m in out] == ["user", "assistant", "user"]
    assert out[1].text == (
        'Thought: t\nAction: {"tool": "read", "input": {"path": "a"}}\n'
        'Action: {"tool": "bash", "input": {"command": "x"}}'
    )
    assert out[2].text == "Observation (read): AAA\nObservation (bash): ERROR: boom"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_react_round_trip(fake_server, kind):
    srv = fake_server
    srv.enqueue(
        overloaded(),
        reply(text='Thought: I should read it.\nAction: {"tool": "read", "input": {"path": "a.py"}}'),
        reply(text="Thought: got it.\nThe file prints a."),
    )
    sleeps: list[float] = []

    async def sleep(d: float) -> None:
        sleeps.append(d)

    url = srv.openai_base_url if kind == "openai" else srv.anthropic_base_url
    p = make_provider(
        f"{kind}:my-local-model",
        base_url=url,
        api_key="k",
        overrides={f"{kind}:my-local-model": {"protocol": "react"}},
        retry=RetryPolicy(base_delay=0.001, sleep=sleep),
    )
    assert isinstance(p, ReactProvider) and p.name == kind and p.model == "my-local-model"
    try:
        items = [
            i
            async for i in p.stream_turn("You are helpful.", [Message.user("what does a.py do?")], TOOLS, 500)
        ]
        assert sum(isinstance(i, StreamRetry) for i in items) == 1
        done = items[-1]
        assert isinstance(done, TurnComplete) and done.stop_reason == "tool_use"
        (call,) = done.message.tool_uses
        assert (call.name, call.input) == ("read", {"path": "a.py"})
        assert done.message.text == "Thought: I should read it."
        after_retry = items[[isinstance(i, StreamRetry) for i in items].index(True) + 1 :]
        streamed = "".join(i.text for i in after_retry if isinstance(i, StreamText))
        assert "Action" not in streamed and streamed.startswith("Thought: I should read it.")

        history = [
            Message.user("what does a.py do?"),
            done.message,
            Message(role="user", content=[ToolResultBlock(call.id, "print('a')")]),
        ]
        items = [i async for i in p.stream_turn("You are helpful.", history, TOOLS, 500)]
        final = items[-1]
        assert final.message.tool_uses == [] and final.stop_reason == "end_turn"
        assert final.message.text == "Thought: got it.\nThe file prints a."
        assert "".join(i.text for i in items if isinstance(i, StreamText)) == final.message.text
    finally:
        await p.aclose()

    assert srv.errors == []
    body = srv.requests[-1].body
    assert "tools" not in body
    if kind == "openai":
        system, msgs = body["messages"][0]["content"], body["messages"][1:]
        assert body["stop"] == ["\nObservation:"]
        texts = [m["content"] for m in msgs]
    else:
        system, msgs = body["system"][0]["text"], body["messages"]
        assert body["stop_sequences"] == ["\nObservation:"]
        texts = ["".join(b["text"] for b in m["content"]) for m in msgs]
    assert system.startswith("You are helpful.") and "## read" in system and '"tool": "<tool name>"' in system
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert texts[1] == 'Thought: I should read it.\nAction: {"tool": "read", "input": {"path": "a.py"}}'
    assert texts[2] == "Observation: print('a')"
