"""Fixtures for the tool tests: a real workspace directory and a ToolContext rooted in it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ghostline.tools.base import Tool, ToolContext, ToolResult
from ghostline.tools.registry import Call, ToolRegistry


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = Path(os.path.realpath(tmp_path)) / "ws"
    root.mkdir()
    return root


@pytest.fixture
def changed() -> list[Path]:
    return []


@pytest.fixture
def ctx(ws: Path, changed: list[Path]) -> ToolContext:
    return ToolContext(workspace=ws, cwd=ws, on_file_changed=changed.append)


async def call(tool: Tool, ctx: ToolContext, **args: Any) -> ToolResult:
    """Run one call the way the loop does: through the gate (validation, errors as results)."""
    return (await ToolRegistry([tool]).run([Call("t1", tool.name, args)], ctx))[0]
