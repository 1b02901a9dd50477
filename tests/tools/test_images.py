"""Images: one check against a model's limits, the bytes kept beside the session, `read` showing an image to a model
that takes images (and describing it to one that does not), blocks from tool result meta, image token counts."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ghostline.compaction.tokens import IMAGE_MIN_TOKENS, TokenCounter, image_tokens
from ghostline.compaction.transcript import ImageBlock, Message, TextBlock, ToolResultBlock
from ghostline.tools.base import ToolContext
from ghostline.tools.images import (
    ImageError,
    ImageLimits,
    blocks_from_meta,
    check_image,
    image_entry,
    keep_image,
    load_image,
)
from ghostline.tools.read import ReadTool
from tests.support.images import make_png
from tests.tools.conftest import call

LIMITS = ImageLimits(max_bytes=10_000, max_side=100)


def test_one_check_with_one_clear_message(tmp_path):
    png = make_png(20, 10)
    image = check_image(png, "a.png", LIMITS)
    assert (image.media_type, image.width, image.height) == ("image/png", 20, 10)
    assert image.describe() == f"PNG 20x10, {len(png)} bytes"
    with pytest.raises(ImageError, match=r"^b.bmp is not a PNG, JPEG, GIF or WebP image"):
        check_image(b"BM" + b"\0" * 60, "b.bmp", LIMITS)
    with pytest.raises(ImageError, match=r"^wide.png is 200x10 pixels; this model takes at most 100 pixels a side"):
        check_image(make_png(200, 10), "wide.png", LIMITS)
    big = tmp_path / "big.png"
    big.write_bytes(make_png(20, 10) + b"\0" * 20_000)
    with pytest.raises(ImageError, match=r"^big.png is 19\.\d KiB; this model takes images up to 9\.8 KiB"):
        load_image(big, LIMITS, "big.png")
    with pytest.raises(ImageError, match="^cannot read gone.png"):
        load_image(tmp_path / "gone.png", LIMITS, "gone.png")


def test_images_are_kept_beside_the_session_once(tmp_path):
    image = check_image(make_png(4, 4), "a.png", LIMITS)
    one, two = keep_image(image, tmp_path / "out", "a.png"), keep_image(image, tmp_path / "out", "copy.png")
    assert one.path == two.path and Path(one.path).read_bytes() == image.data and not one.data
    assert len(list((tmp_path / "out").iterdir())) == 1
    inline = keep_image(image, None, "a.png")
    assert base64.b64decode(inline.data) == image.data and not inline.path
    # The entries tools put in meta come back as blocks (MCP's too: no name, no size; audio is left out).
    entries = [image_entry(one), {"kind": "image", "mime_type": "image/png", "bytes": 3, "path": "/x/mcp.png"},
               {"kind": "audio", "mime_type": "audio/wav", "path": "/x/a.wav"}, {"mime_type": "image/bmp", "data": "x"}]
    blocks = blocks_from_meta({"images": entries})
    assert blocks == [ImageBlock("image/png", path=one.path, name="a.png", width=4, height=4),
                      ImageBlock("image/png", path="/x/mcp.png")]


def test_an_image_costs_its_pixels_not_its_base64():
    counter = TokenCounter(encoding=False)
    small, huge, unknown = ImageBlock("image/png", width=100, height=100), \
        ImageBlock("image/png", width=8000, height=6000), ImageBlock("image/png", data="A" * 400_000)
    assert image_tokens(small) == IMAGE_MIN_TOKENS
    assert 1500 <= image_tokens(huge) <= 1600 and image_tokens(unknown) == 1533
    result = ToolResultBlock("t1", "a picture", images=[huge])
    assert counter.block_tokens(result) == counter.block_tokens(ToolResultBlock("t1", "a picture")) + \
        image_tokens(huge)
    assert counter.message_tokens(Message("user", [TextBlock("see"), unknown])) < 2000


def test_image_blocks_round_trip_compactly():
    msg = Message("user", [ToolResultBlock("t1", "shot", images=[ImageBlock("image/png", path="/s/i.png", name="i",
                                                                            width=3, height=2)]),
                           ImageBlock("image/jpeg", path="/s/j.jpg")])
    d = msg.to_dict()
    assert d["content"][0]["images"] == [{"media_type": "image/png", "path": "/s/i.png", "name": "i", "width": 3,
                                          "height": 2, "type": "image"}]
    assert d["content"][1] == {"media_type": "image/jpeg", "path": "/s/j.jpg", "type": "image"}
    assert Message.from_dict(d) == msg
    assert "images" not in Message("user", [ToolResultBlock("t1", "x")]).to_dict()["content"][0]


async def test_read_shows_an_image_to_a_model_that_takes_images(ws, ctx, tmp_path):
    png = make_png(30, 20)
    (ws / "ui.png").write_bytes(png)
    (ws / "huge.png").write_bytes(make_png(30, 20) + b"\0" * 20_000)
    seeing = ToolContext(ws, ws, images=LIMITS, output_dir=tmp_path / "session" / "outputs")
    shown = await call(ReadTool(), seeing, path="ui.png")
    assert shown.content == f"[ui.png: PNG image, 30x20 pixels, {len(png)} bytes; the image follows.]"
    [entry] = shown.meta["images"]
    assert Path(entry["path"]).read_bytes() == png and entry["width"] == 30
    too_big = await call(ReadTool(), seeing, path="huge.png")
    assert "Not shown: this model takes images up to 9.8 KiB" in too_big.content and "images" not in too_big.meta
    described = await call(ReadTool(), ctx, path="ui.png")  # the fixture's context: a model without images
    assert "Image contents cannot be shown as text" in described.content and "images" not in described.meta
