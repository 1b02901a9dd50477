"""`fetch` and `@image.png` in the TUI: Textual's pilot drives the real app against the fake model server and a local
web server. A fetch is asked about even under auto approval (and a redirect to another host asked again); an
image goes with the message as an image block, and what cannot be attached is said in one line."""

from __future__ import annotations

import base64

from ghostline.sandbox.store import remembered
from tests.agent.tui.drive import lines, make_app, run_to_end, running, submit, until
from tests.fakeserver import reply
from tests.support.images import make_png
from tests.support.web import LocalWebServer, page, redirect

PNG = make_png(12, 9)


async def test_an_image_mention_goes_with_the_message(repo, fake_model_env):  # noqa: F811
    (repo / "shot.png").write_bytes(PNG)
    (repo / "fake.png").write_text("text pretending to be a picture\n")
    fake_model_env.enqueue(reply("The dialog overlaps the menu."), reply("No image there."))
    app = make_app(repo)
    async with running(app) as pilot:
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



async def test_fetch_asks_and_a_redirect_to_another_host_asks_again(repo, fake_model_env, monkeypatch):  # noqa: F811
    from ghostline.agent.tui.approval import ApprovalScreen

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with LocalWebServer({"/api.html": page("<main><h1>API</h1><p>call retry()</p></main>")}) as target, \
            LocalWebServer({"/docs": redirect(target.url("/api.html", host="localhost"))}) as origin:
        fake_model_env.enqueue(reply("", [("fetch", {"url": origin.url("/docs")})]), reply("retry() it is."))
        app = make_app(repo)  # approval auto: edits and commands run unasked, the network is still asked about
        async with running(app) as pilot:
            await submit(app, pilot, "read the API docs")
            await until(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval for 127.0.0.1")
            assert app.screen.request.suggested_rule == f"fetch: 127.0.0.1:{origin.port}"
            await pilot.press("a")  # always: remembered for the project
            await until(pilot, lambda: isinstance(app.screen, ApprovalScreen)
                        and "localhost" in app.screen.request.args["url"], "the approval for the redirect")
            await pilot.press("y")
            await until(pilot, lambda: not app.busy, "the turn to end")
        assert target.hits["/api.html"] == 1
    assert "call retry()" in str(fake_model_env.requests[1].body["messages"])
    assert remembered(repo) == [f"fetch: 127.0.0.1:{origin.port}"]
