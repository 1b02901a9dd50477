"""Adaptive-thinking Anthropic models: signed thinking blocks must go back verbatim within a tool-use exchange."""

from ghostline.agent.models import make_provider
from ghostline.agent.providers.base import ToolSpec, TurnComplete
from ghostline.compaction.transcript import Message, ThinkingBlock, ToolResultBlock
from tests.fakeserver import reply, thinking_signature

TOOLS = [ToolSpec("read", "read a file", {"type": "object", "properties": {"path": {"type": "string"}}})]


async def _turn(provider, messages):
    async for item in provider.stream_turn("system", messages, TOOLS, 1024):
        if isinstance(item, TurnComplete):
            return item


async def test_thinking_blocks_round_trip_with_their_signature(fake_model_env):
    srv = fake_model_env
    srv.enqueue(reply("Reading.", [("read", {"path": "a.py"})], thinking="I should read a.py first."),
                reply("done"))
    provider = make_provider("anthropic:claude-sonnet-5-5")
    try:
        messages = [Message.user("look at a.py")]
        first = await _turn(provider, messages)
        blocks = first.message.content
        assert isinstance(blocks[0], ThinkingBlock)
        assert blocks[0].signature == thinking_signature("I should read a.py first.")
        assert first.message.text == "Reading."  # reasoning is not shown as answer text
        messages += [first.message, Message("user", [ToolResultBlock(first.message.tool_uses[0].id, "x = 1")])]
        second = await _turn(provider, messages)
        assert second.message.text == "done"
    finally:
        await provider.aclose()
    assert srv.errors == []
    sent = srv.requests[-1].body["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": "I should read a.py first.",
                       "signature": thinking_signature("I should read a.py first.")}


def test_thinking_blocks_survive_the_session_log():
    m = Message("assistant", [ThinkingBlock("why", "sig"), ThinkingBlock(data="opaque")])
    assert Message.from_dict(m.to_dict()) == m
