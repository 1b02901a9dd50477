"""Images end to end: `agent run --image`, `read` on an image file and an MCP tool's image reach both providers in
their own wire formats (checked in the request bodies the fake server recorded, which validates images like the real
APIs), the session keeps paths rather than base64, a resume sends the image again, and what a model cannot take is
one clear error."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.test_e2e import AGENT, MODELS, agent_env, make_repo, run_agent
from tests.fakeserver import FakeModelServer, reply
from tests.support.images import make_png


def _anthropic_images(body: dict) -> list[tuple[str, str]]:
    """(where, base64) of every image block: in a user message's content or inside a tool_result."""
    found = []
    for m in body["messages"]:
        for b in m["content"] if isinstance(m["content"], list) else []:
            if b["type"] == "image":
                found.append(("user", b["source"]["data"]))
            elif b["type"] == "tool_result" and isinstance(b["content"], list):
                found += [("tool_result", p["source"]["data"]) for p in b["content"] if p["type"] == "image"]
    return found


def _openai_images(body: dict) -> list[tuple[str, str]]:
    found = []
    for m in body["messages"]:
        for p in m["content"] if isinstance(m.get("content"), list) else []:
            if p["type"] == "image_url":
                found.append((m["role"], p["image_url"]["url"]))
    return found


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_an_image_given_with_the_task_reaches_the_model(tmp_path, provider):
    repo = make_repo(tmp_path)
    png = make_png(40, 30)
    (repo / "shot.png").write_bytes(png)
    with FakeModelServer([reply("The button is cut off.")]) as srv:
        r = run_agent(["run", "what is wrong in this screenshot?", "--image", "shot.png", "-m", MODELS[provider],
                       "-o", "json"], cwd=repo, env=agent_env(tmp_path, srv, provider))
        body, errors = srv.requests[0].body, list(srv.errors)
    assert r.returncode == 0, (r.stderr, errors)
    b64 = base64.b64encode(png).decode()
    if provider == "anthropic":
        user = body["messages"][0]["content"]
        assert user[0] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64}}
        assert user[1]["text"] == "what is wrong in this screenshot?"
    else:
        user = body["messages"][-1]
        assert user["role"] == "user" and user["content"][0] == {"type": "text",
                                                                 "text": "what is wrong in this screenshot?"}
        assert user["content"][1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64}"}}


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_read_on_an_image_gives_the_model_the_image(tmp_path, provider):
    repo = make_repo(tmp_path)
    png = make_png(64, 48)
    (repo / "docs").mkdir()
    (repo / "docs" / "diagram.png").write_bytes(png)
    script = [reply("", [("read", {"path": "docs/diagram.png"})]), reply("It shows grey."),
              reply("Still grey.")]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, provider)
        r = run_agent(["run", "describe docs/diagram.png", "-m", MODELS[provider], "-o", "json"], cwd=repo, env=env)
        session = json.loads(r.stdout)["session_id"]
        again = run_agent(["run", "--resume", session, "and now?", "-m", MODELS[provider], "-o", "json"],
                          cwd=repo, env=env)
        bodies, errors = [q.body for q in srv.requests], list(srv.errors)
    assert r.returncode == 0 and again.returncode == 0, (r.stderr, again.stderr, errors)
    b64 = base64.b64encode(png).decode()
    if provider == "anthropic":
        assert _anthropic_images(bodies[1]) == [("tool_result", b64)]
        result = next(b for m in bodies[1]["messages"] for b in m["content"] if b["type"] == "tool_result")
        assert "PNG image, 64x48 pixels" in result["content"][0]["text"]
        assert _anthropic_images(bodies[2]) == [("tool_result", b64)]  # resumed: the image is sent again
    else:
        # Tool messages take only text: the image follows in a user message naming the call.
        roles = [m["role"] for m in bodies[1]["messages"]]
        assert roles[-2:] == ["tool", "user"] and "PNG image, 64x48" in bodies[1]["messages"][-2]["content"]
        assert _openai_images(bodies[1]) == [("user", f"data:image/png;base64,{b64}")]
        assert "image returned by tool call" in bodies[1]["messages"][-1]["content"][0]["text"]
        assert _openai_images(bodies[2]) == [("user", f"data:image/png;base64,{b64}")]
    # The session log keeps the image's path beside the session, never its bytes.
    logs = list((tmp_path / "data" / "ghostline" / "sessions").glob("*.jsonl"))
    text = logs[0].read_text()
    assert b64 not in text and '"path"' in text
    kept = [p for p in (tmp_path / "data" / "ghostline" / "sessions").rglob("image-*.png")]
    assert len(kept) == 1 and kept[0].read_bytes() == png


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_an_mcp_tools_image_reaches_the_model(tmp_path, provider):
    repo = make_repo(tmp_path)
    script = [reply("", [("mcp__pics__picture", {})]), reply("A picture.")]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, provider)
        added = subprocess.run(
            [AGENT, "mcp", "add", "pics", "--", sys.executable, "-m", "tests.support.mcp_server"], cwd=repo,
            env=env, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        r = run_agent(["run", "show the picture", "-m", MODELS[provider]], cwd=repo, env=env)
        bodies, errors = [q.body for q in srv.requests], list(srv.errors)
    assert r.returncode == 0, (r.stderr, errors)
    found = _anthropic_images(bodies[1]) if provider == "anthropic" else _openai_images(bodies[1])
    assert len(found) == 1 and ("iVBORw0KGgo" in found[0][1])  # the PNG's base64 signature


def test_what_a_model_cannot_take_is_one_clear_error(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "notes.png").write_text("not an image at all\n")
    (repo / "shot.png").write_bytes(make_png(8, 8))
    with FakeModelServer([]) as srv:
        env = agent_env(tmp_path, srv, "openai")
        bad = run_agent(["run", "look", "--image", "notes.png", "-m", MODELS["openai"]], cwd=repo, env=env)
        blind = run_agent(["run", "look", "--image", "shot.png", "-m", "openai:o3-mini"], cwd=repo, env=env)
        missing = run_agent(["run", "look", "-i", "nope.png", "-m", MODELS["openai"]], cwd=repo, env=env)
        requests = len(srv.requests)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "agent: --image notes.png is not a PNG, JPEG, GIF or WebP image (the formats models take)"]
    assert blind.returncode == 2 and "openai:o3-mini does not take images" in blind.stderr
    assert missing.returncode == 2 and "cannot read nope.png" in missing.stderr
    assert "Traceback" not in bad.stderr + blind.stderr + missing.stderr and requests == 0


def test_a_model_that_takes_no_images_reads_about_them(tmp_path):
    """read on an image for a model without images: the description, no image block (and no error)."""
    repo = make_repo(tmp_path)
    Path(repo / "a.png").write_bytes(make_png(5, 5))
    with FakeModelServer([reply("", [("read", {"path": "a.png"})]), reply("ok")]) as srv:
        r = run_agent(["run", "look at a.png", "-m", "openai:o3-mini"], cwd=repo, env=agent_env(tmp_path, srv,
                                                                                                 "openai"))
        bodies = [q.body for q in srv.requests]
    assert r.returncode == 0, r.stderr
    assert _openai_images(bodies[1]) == [] and "Image contents cannot be shown as text" in json.dumps(bodies[1])
