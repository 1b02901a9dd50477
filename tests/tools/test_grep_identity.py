"""Property test: on random trees with random .gitignore files, ripgrep and the Python fallback agree."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghostline.tools.base import ToolContext
from ghostline.tools.grep import GrepTool
from tests.tools.conftest import call

pytestmark = pytest.mark.skipif(shutil.which("rg") is None, reason="ripgrep not installed")

NAMES = ["a", "b", "c.log", "d.py", "e.txt", ".h", "x1.py"]
DIRS = ["", "a/", "src/", "src/a/", "lib/deep/", ".cfg/"]
IGNORE_LINES = ["*.log", "!c.log", "a/", "/b", "src/a", "*.py", "!d.py", "lib/**/e.txt", "**/x1.py", ".h", "e*", "/src/"]
WORDS = ["foo", "bar", "Foo", "baz", "qux foo", "  foo()", ""]


@st.composite
def trees(draw: st.DrawFn) -> dict[str, str]:
    files: dict[str, str] = {}
    for _ in range(draw(st.integers(1, 12))):
        rel = draw(st.sampled_from(DIRS)) + draw(st.sampled_from(NAMES))
        files[rel] = "\n".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8))) + "\n"
    for d in draw(st.lists(st.sampled_from(["", "src/", "a/", "lib/"]), max_size=3, unique=True)):
        files[d + ".gitignore"] = "\n".join(draw(st.lists(st.sampled_from(IGNORE_LINES), min_size=1, max_size=4)))
    # A file and a directory may not share a path: keep the first-drawn meaning.
    clean: dict[str, str] = {}
    for rel, text in files.items():
        parts = rel.split("/")
        prefixes = {"/".join(parts[:i]) for i in range(1, len(parts))}
        if prefixes & set(clean) or any(k.startswith(rel + "/") for k in clean):
            continue
        clean[rel] = text
    return clean


@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tree=trees(),
    pattern=st.sampled_from(["foo", "^foo", r"fo+\(", "ba[rz]", "o$"]),
    ignore_case=st.booleans(),
    context=st.integers(0, 2),
    max_results=st.integers(1, 12),
    glob=st.sampled_from([None, "*.py", "src/**", "*.{log,txt}"]),
    path=st.sampled_from([".", "src", "a"]),
)
async def test_backends_agree(
    tree: dict[str, str], pattern: str, ignore_case: bool, context: int, max_results: int,
    glob: str | None, path: str,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp).resolve()
        (ws / ".git").mkdir()
        for rel, text in tree.items():
            p = ws / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        ctx = ToolContext(workspace=ws, cwd=ws)
        args: dict = {"pattern": pattern, "ignore_case": ignore_case, "context": context,
                      "max_results": max_results, "path": path}
        if glob:
            args["glob"] = glob
        a = await call(GrepTool(use_rg=True), ctx, **args)
        b = await call(GrepTool(use_rg=False), ctx, **args)
        assert a.is_error == b.is_error
        assert a.content == b.content, (tree, args)
