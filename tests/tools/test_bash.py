from __future__ import annotations

from pathlib import Path

from ghostline.tools.base import ToolContext
from ghostline.tools.bash import BashTool
from tests.tools.conftest import call

BASH = BashTool()


async def test_output_and_exit_code(ws: Path, ctx: ToolContext) -> None:
    res = await call(BASH, ctx, command="echo out; echo err >&2; exit 3")
    assert not res.is_error
    assert "out" in res.content and "err" in res.content
    assert res.content.endswith("[exit code 3]")
    assert res.meta["exit_code"] == 3 and res.meta["timed_out"] is False
    assert res.meta["command"] == "echo out; echo err >&2; exit 3"
    assert isinstance(res.meta["duration_ms"], int)
    ok = await call(BASH, ctx, command="true")
    assert ok.meta["exit_code"] == 0 and ok.content == "(no output)\n[exit code 0]"


async def test_runs_in_the_working_directory(ws: Path) -> None:
    (ws / "sub").mkdir()
    ctx = ToolContext(workspace=ws, cwd=ws / "sub")
    res = await call(BASH, ctx, command="pwd && touch made-here")
    assert str(ws / "sub") in res.content
    assert (ws / "sub" / "made-here").exists()


async def test_timeout_kills_and_reports(ws: Path, ctx: ToolContext) -> None:
    res = await call(BASH, ctx, command="echo started; sleep 30; echo never", timeout=0.5)
    assert res.is_error
    assert res.meta["timed_out"] is True
    assert "started" in res.content and "never" not in res.content
    assert "timed out after 0.5s" in res.content


async def test_long_output_is_capped_with_head_and_tail(ws: Path, ctx: ToolContext) -> None:
    res = await call(BASH, ctx, command="seq 1 100000")
    assert res.meta["truncated"] is True
    assert res.content.startswith("1\n2\n") and "100000" in res.content
    assert len(res.content) < 40000
    assert "[output was cut" in res.content


async def test_invalid_timeout_type_is_an_argument_error(ws: Path, ctx: ToolContext) -> None:
    res = await call(BASH, ctx, command="true", timeout="soon")
    assert res.is_error and "timeout" in res.content
