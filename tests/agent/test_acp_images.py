"""Images an editor sends with an ACP prompt: image blocks for the model, checked like every other image."""

from __future__ import annotations

import base64

from acp.schema import ImageContentBlock, TextContentBlock

from ghostline.agent.acp.prompt import prompt_images, prompt_text
from ghostline.tools.images import ImageLimits
from tests.support.images import make_png

LIMITS = ImageLimits(1_000_000)


def test_prompt_images(tmp_path):
    png = make_png(3, 3)
    blocks = [TextContentBlock(type="text", text="why is this red?"),
              ImageContentBlock(type="image", data=base64.b64encode(png).decode(), mime_type="image/png"),
              ImageContentBlock(type="image", data=base64.b64encode(b"GIF8 nope").decode(), mime_type="image/gif"),
              ImageContentBlock(type="image", data="%%%", mime_type="image/png")]
    assert prompt_text(blocks) == "why is this red?"
    images, problems = prompt_images(blocks, LIMITS, tmp_path, "m")
    assert len(images) == 1 and images[0].name == "image 1" and images[0].width == 3
    assert problems == ["image not attached: image 2 is not a PNG, JPEG, GIF or WebP image (the formats models take)",
                        "image not attached: image 3 is not base64"]
    assert prompt_images(blocks, None, tmp_path, "openai:o3-mini")[1] == [
        "3 image(s) not attached: openai:o3-mini does not take images"]
    assert prompt_images(blocks[:1], None, tmp_path, "m") == ([], [])
