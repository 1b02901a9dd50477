"""`@image.png` in the TUI: Textual's pilot drives the real app against the fake model server; the image goes with the
message as an image block, and what cannot be attached is said in one line."""

from __future__ import annotations

import base64

from tests.agent.test_tui import lines, make_app, repo, run_to_end  # noqa: F401 - `repo` is a fixture
from tests.fakeserver import reply
from tests.support.images import make_png

PNG = make_png(12, 9)


async def test_an_image_mention_goes_with_the_message(repo, fake_model_env):  # noqa: F811
    (repo / "shot.png").write_bytes(PNG)
    (repo / "fake.png").write_text("text pretending to be a picture\n")
    fake_model_env.enqueue(reply("The dialog overlaps the menu."), reply("No image there."))
    app = make_app(repo)
    async with app.run_test(size=(120, 40)) as pilot:
        await run_to_end(app, pilot, "what is wrong in @shot.png?")
        await run_to_end(app, pilot, "and in @fake.png?")
        warnings, notices = lines(app, "warning"), lines(app, "notice")
    first, second = (r.body["messages"] for r in fake_model_env.requests)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.b64encode(PNG).decode()}}
    assert first[0]["content"][0] == image and first[0]["content"][1]["text"] == "what is wrong in @shot.png?"
    assert sum(b["type"] == "image" for m in second for b in m["content"]) == 1  # only the first one's
    assert any("image not attached: fake.png is not a PNG, JPEG, GIF or WebP image" in w for w in warnings)
    assert "image attached: shot.png" in notices

