"""MCP servers as tools, against the reference mcp-server-git and servers the tests run with the SDK."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ghostline.sandbox.policy import Policy
from ghostline.tools import ApprovalAnswer, ApprovalRequest, ToolContext, ToolRegistry
from ghostline.tools.mcp import McpManager, ServerSpec
from ghostline.tools.registry import Call

ROOT = Path(__file__).resolve().parents[2]
GIT_SERVER = str(Path(sys.executable).parent / "mcp-server-git")


def mcp_server_spec(name: str = "t", *extra: str, **kw: Any) -> ServerSpec:
    return ServerSpec(name, sys.executable, ("-m", "tests.support.mcp_server", *extra), cwd=str(ROOT), **kw)


class WatchedRegistry(ToolRegistry):
    """A registry that lets a test wait for a tool to arrive (list changes land from the server's task)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.changed = asyncio.Event()

    def add(self, tool: Any) -> None:
        super().add(tool)
        if hasattr(self, "changed"):
            self.changed.set()

    async def until(self, name: str) -> None:
        while self.get(name) is None:
            self.changed.clear()
            await self.changed.wait()


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path, cwd=tmp_path, output_dir=tmp_path / "outputs")


@pytest.fixture
async def started():
    managers: list[McpManager] = []

    async def start(*specs: ServerSpec, registry: ToolRegistry | None = None) -> tuple[McpManager, list[str]]:
        manager = McpManager(registry if registry is not None else WatchedRegistry([]))
        managers.append(manager)
        return manager, await manager.start(specs)

    yield start
    for m in managers:
        await m.stop()


async def one(registry: ToolRegistry, ctx: ToolContext, name: str, **args: Any):
    return (await registry.run([Call("c1", name, args)], ctx))[0]


async def test_reference_git_server(started, ctx, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "new.txt").write_text("x\n")
    manager, problems = await started(ServerSpec("git", GIT_SERVER, ("--repository", str(repo))))
    reg = manager.registry
    assert problems == []
    assert reg.kind_of("mcp__git__git_status") == "read"  # annotated readOnlyHint
    assert reg.kind_of("mcp__git__git_commit") == "other"
    status = await one(reg, ctx, "mcp__git__git_status", repo_path=str(repo))
    assert not status.is_error and "new.txt" in status.content
    outside = await one(reg, ctx, "mcp__git__git_log", repo_path="/")
    assert outside.is_error and "outside" in outside.content
    spec = next(s for s in reg.specs() if s["name"] == "mcp__git__git_status")
    assert "repo_path" in spec["input_schema"]["properties"] and "git" in spec["description"]


async def test_results_text_images_and_errors(started, ctx):
    manager, _ = await started(mcp_server_spec())
    reg = manager.registry
    echo = await one(reg, ctx, "mcp__t__echo", text="hello")
    assert (echo.content, echo.is_error, echo.meta["structured_content"]) == ("hello", False, {"result": "hello"})
    picture = await one(reg, ctx, "mcp__t__picture")
    image = picture.meta["images"][0]
    assert "[image: image/png" in picture.content and Path(image["path"]).read_bytes().startswith(b"\x89PNG")
    failed = await one(reg, ctx, "mcp__t__fail", why="disk full")
    assert failed.is_error and "it failed: disk full" in failed.content
    invalid = await one(reg, ctx, "mcp__t__echo", text=3)
    assert invalid.is_error and "string" in invalid.content  # the server's schema, checked at the gate


async def test_list_change_adds_the_new_tool(started, ctx):
    manager, _ = await started(mcp_server_spec())
    reg = manager.registry
    assert reg.get("mcp__t__extra") is None
    assert (await one(reg, ctx, "mcp__t__grow")).content == "grown"
    await asyncio.wait_for(reg.until("mcp__t__extra"), 20)
    assert (await one(reg, ctx, "mcp__t__extra", x=21)).content == "42"


async def test_crash_mid_call_costs_that_server_only(started, ctx):
    manager, _ = await started(mcp_server_spec("a"), mcp_server_spec("b"))
    reg = manager.registry
    crashed = await one(reg, ctx, "mcp__a__crash")
    assert crashed.is_error and "'a' stopped" in crashed.content and "no longer available" in crashed.content
    assert not [t for t in reg.specs() if t["name"].startswith("mcp__a__")]
    notices = reg.take_notices()
    assert len(notices) == 1 and "mcp__a__echo" in notices[0]
    assert (await one(reg, ctx, "mcp__b__echo", text="still here")).content == "still here"
    assert {s.name: s.connected for s in manager.status()} == {"a": False, "b": True}


async def test_slow_start_times_out_and_the_others_start(started):
    manager, problems = await started(mcp_server_spec("slow", "--slow", "30", startup_timeout_s=0.5), mcp_server_spec("ok"))
    assert problems == ["MCP server 'slow' did not start within 0.5s"]
    names = [t.name for t in manager.registry.tools]
    assert "mcp__ok__echo" in names and not any(n.startswith("mcp__slow__") for n in names)


async def test_failures_are_one_line(started):
    _, problems = await started(ServerSpec("gone", "/nonexistent/server"),
                                ServerSpec("exits", sys.executable, ("-c", "import sys; print('bad config', "
                                                                         "file=sys.stderr); sys.exit(2)")))
    assert problems[0] == "MCP server 'gone' failed: command not found: /nonexistent/server"
    assert problems[1].startswith("MCP server 'exits' failed") and "\n" not in problems[1]


async def test_call_timeout_and_cancel_leave_the_server_usable(started, ctx):
    manager, _ = await started(mcp_server_spec(tool_timeout_s=0.5))
    reg = manager.registry
    slow = await one(reg, ctx, "mcp__t__wait", seconds=60)
    assert slow.is_error and "timed out after 0.5s" in slow.content
    call = asyncio.ensure_future(one(reg, ctx, "mcp__t__wait", seconds=60))
    await asyncio.sleep(0)  # let the call go out before cancelling it
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert (await one(reg, ctx, "mcp__t__echo", text="after")).content == "after"


async def test_streamable_http_transport(started, ctx):
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.mcp_server", "--http"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    manager = None
    try:
        port = int(proc.stdout.readline().split()[1])
        manager, problems = await started(ServerSpec("web", url=f"http://127.0.0.1:{port}/mcp"))
        reg = manager.registry
        assert problems == []
        assert (await one(reg, ctx, "mcp__web__echo", text="over http")).content == "over http"
        await one(reg, ctx, "mcp__web__grow")
        await asyncio.wait_for(reg.until("mcp__web__extra"), 20)
    finally:
        if manager is not None:
            await manager.stop()
        proc.kill()
        proc.wait(10)


async def test_the_gate_judges_mcp_tools_by_kind_and_origin(started, ctx):
    asked: list[ApprovalRequest] = []

    async def approver(request: ApprovalRequest) -> ApprovalAnswer:
        asked.append(request)
        return ApprovalAnswer(True)

    registry = WatchedRegistry([], policy=Policy(remembered=False, level="bubblewrap"), approver=approver)
    await started(mcp_server_spec("mine"), mcp_server_spec("repo", origin="project"), registry=registry)
    ctx.approval = "auto"
    results = await registry.run([Call("1", "mcp__mine__fail", {"why": "x"}), Call("2", "mcp__repo__fail",
                                                                                     {"why": "y"}),
                                  Call("3", "mcp__repo__echo", {"text": "z"})], ctx)
    assert [r.content for r in results] == ["it failed: x", "it failed: y", "z"]
    assert [r.tool for r in asked] == ["mcp__repo__fail"]  # a project's tool asks even in auto; read never
    assert asked[0].suggested_rule == "mcp__repo__fail"
