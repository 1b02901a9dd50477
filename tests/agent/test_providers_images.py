"""Images in each provider's wire format (the translators alone; tests/agent/test_e2e_images.py sends them through
the real SDKs): Anthropic image blocks with a base64 source, in user messages and inside tool_result content;
OpenAI image_url data URLs in user messages only, a tool's images in the user message after the tool messages;
the words of an image for a model that takes none or whose file is gone; ReAct passes images on."""

from __future__ import annotations

import base64

from ghostline.agent.models import model_info
from ghostline.agent.providers import anthropic, openai
from ghostline.agent.providers.common import ImageWire, image_wire
from ghostline.agent.providers.react import to_text_transcript
from ghostline.compaction.transcript import ImageBlock, Message, TextBlock, ToolResultBlock, ToolUseBlock
from tests.support.images import make_png

PNG = make_png(6, 4)
B64 = base64.b64encode(PNG).decode()
WIRE = ImageWire(max_bytes=1_000_000)


def _transcript(tmp_path) -> list[Message]:
    kept = tmp_path / "image-1.png"
    kept.write_bytes(PNG)
    shot = ImageBlock("image/png", path=str(kept), name="shot.png", width=6, height=4)
    return [Message("user", [TextBlock("what is this?"), shot]),
            Message("assistant", [ToolUseBlock("c1", "read", {"path": "ui.png"}),
                                  ToolUseBlock("c2", "read", {"path": "a.py"})]),
            Message("user", [ToolResultBlock("c1", "[ui.png: PNG image]", images=[shot]),
                             ToolResultBlock("c2", "1\tx = 1")])]


def test_anthropic_image_blocks(tmp_path):
    wire = anthropic.messages_to_wire(_transcript(tmp_path), WIRE)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": B64}}
    assert wire[0]["content"] == [image, {"type": "text", "text": "what is this?"}]  # images before text
    first, second = wire[2]["content"]
    assert first == {"type": "tool_result", "tool_use_id": "c1",
                     "content": [{"type": "text", "text": "[ui.png: PNG image]"}, image]}
    assert second == {"type": "tool_result", "tool_use_id": "c2", "content": "1\tx = 1"}


def test_openai_images_only_in_user_messages(tmp_path):
    wire = openai.messages_to_wire("sys", _transcript(tmp_path), WIRE)
    part = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}}
    assert wire[1] == {"role": "user", "content": [{"type": "text", "text": "what is this?"}, part]}
    assert [m["role"] for m in wire[2:]] == ["assistant", "tool", "tool", "user"]
    assert wire[3]["content"] == "[ui.png: PNG image]" and wire[4]["content"] == "1\tx = 1"
    assert wire[5]["content"] == [{"type": "text", "text": "[image returned by tool call c1]"}, part]


def test_a_model_without_images_reads_their_words(tmp_path):
    transcript = _transcript(tmp_path)
    for wire in (anthropic.messages_to_wire(transcript, None), openai.messages_to_wire("", transcript, None)):
        text = str(wire)
        assert "image_url" not in text and "'type': 'image'" not in text
        assert "[image shot.png: image/png, 6x4] (not shown: this model is not sent this image)" in text
    assert image_wire(model_info("openai:o3-mini")) is None
    assert image_wire(model_info("anthropic:claude-sonnet-5-5")) == ImageWire(3_750_000)
    assert image_wire(model_info("openai:gpt-5")) == ImageWire(20 * 1024 * 1024)


def test_an_image_whose_file_is_gone_or_too_big_is_not_sent(tmp_path):
    gone = Message("user", [TextBlock("see"), ImageBlock("image/png", path=str(tmp_path / "nope.png"), name="n")])
    assert anthropic.messages_to_wire([gone], WIRE)[0]["content"][0]["type"] == "text"
    transcript = _transcript(tmp_path)
    assert "image_url" not in str(openai.messages_to_wire("", transcript, ImageWire(max_bytes=10)))


def test_react_passes_images_on(tmp_path):
    text = to_text_transcript(_transcript(tmp_path))
    assert [len(m.images) for m in text] == [1, 0, 1]
    assert "Observation (read): [ui.png: PNG image]" in text[2].text
