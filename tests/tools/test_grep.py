from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ghostline.tools.base import ToolContext
from ghostline.tools.grep import GrepTool
from tests.tools.conftest import call

HAVE_RG = shutil.which("rg") is not None
RG = GrepTool(use_rg=True)
PY = GrepTool(use_rg=False)


def make_tree(ws: Path) -> None:
    files = {
        ".gitignore": "build/\n*.log\n!keep.log\nnode_modules\n/top-only.txt\n",
        "src/.gitignore": "*.tmp\n!wanted.tmp\n",
        "src/app.py": "import os\n\ndef foo():\n    return 'foo'\n\nclass Foo:\n    pass\n",
        "src/util.py": "# util\nFOO = 1\nbar = FOO + 1\n",
        "src/deep/mod.py": "x = 1\ny = 2\nz = foo(x)\n" + "".join(f"line {i}\n" for i in range(10)) + "w = foo\n",
        "src/scratch.tmp": "foo in an ignored temp file\n",
        "src/wanted.tmp": "foo in a re-included temp file\n",
        "src/top-only.txt": "foo: only the root one is ignored\n",
        "top-only.txt": "foo ignored\n",
        "build/out.py": "foo built\n",
        "node_modules/pkg/index.js": "foo module\n",
        "debug.log": "foo log\n",
        "keep.log": "foo kept log\n",
        ".hidden/conf.py": "foo = 'hidden files are searched'\n",
        "docs/readme.md": "Foo docs\nfoo again\n",
        "win.txt": "crlf foo\r\nsecond\r\n",
    }
    for rel, text in files.items():
        p = ws / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode())
    (ws / "blob.bin").write_bytes(b"foo\x00binary")
    (ws / ".git").mkdir()
    (ws / ".git" / "HEAD").write_text("foo: refs/heads/main\n")
    (ws / "link.py").symlink_to(ws / "src" / "app.py")
    (ws / "utf16.txt").write_bytes("foo in utf-16\nsecond\n".encode("utf-16"))
    (ws / "latin1.txt").write_bytes(b"caf\xe9 foo\n")
    # A match long before the first NUL byte: still a binary file, skipped by both backends.
    (ws / "late.bin").write_bytes(b"foo early\n" + b"a" * 200_000 + b"\x00tail foo\n")


CASES = [
    dict(pattern="foo"),
    dict(pattern="foo", ignore_case=True),
    dict(pattern="foo", context=1),
    dict(pattern="foo", context=2, max_results=3),
    dict(pattern="foo", max_results=2),
    dict(pattern=r"^\s+return", path="src"),
    dict(pattern="foo", glob="*.py"),
    dict(pattern="foo", glob="*.{py,md}"),
    dict(pattern="foo", glob="src/**/*.py"),
    dict(pattern="foo", glob="*.log"),
    dict(pattern="foo", glob="*.tmp"),
    dict(pattern="foo", path="src/deep/mod.py", context=1),
    dict(pattern="foo", path="src/deep"),
    dict(pattern="crlf foo$"),
    dict(pattern="nothing-matches-this"),
    dict(pattern="foo", path="late.bin"),
    dict(pattern="foo", path="build"),
    dict(pattern="caf|utf-16"),
    dict(pattern="line [0-9]", max_results=4, context=1),
]


@pytest.mark.skipif(not HAVE_RG, reason="ripgrep not installed")
@pytest.mark.parametrize("args", CASES, ids=[str(c) for c in CASES])
async def test_rg_and_python_fallback_give_identical_output(ws: Path, ctx: ToolContext, args: dict) -> None:
    make_tree(ws)
    a = await call(RG, ctx, **args)
    b = await call(PY, ctx, **args)
    assert a.meta["backend"] == "rg" and b.meta["backend"] == "python"
    assert not a.is_error and not b.is_error
    assert a.content == b.content
    assert a.meta["matches"] == b.meta["matches"]


async def test_expected_selection_and_format(ws: Path, ctx: ToolContext) -> None:
    make_tree(ws)
    res = await call(PY, ctx, pattern="foo")
    lines = res.content.splitlines()
    files = sorted({ln.split(":", 1)[0] for ln in lines})
    assert files == [
        ".hidden/conf.py", "docs/readme.md", "keep.log", "latin1.txt", "src/app.py", "src/deep/mod.py",
        "src/top-only.txt", "src/wanted.tmp", "utf16.txt", "win.txt",
    ]  # fmt: skip
    assert "src/app.py:3:def foo():" in lines
    assert "win.txt:1:crlf foo" in lines  # no carriage return in the output
    assert res.meta["matches"] == len(lines)


async def test_context_lines_and_group_separators(ws: Path, ctx: ToolContext) -> None:
    make_tree(ws)
    res = await call(PY, ctx, pattern="foo", path="src/deep/mod.py", context=1)
    assert res.content.splitlines() == [
        "src/deep/mod.py-2-y = 2",
        "src/deep/mod.py:3:z = foo(x)",
        "src/deep/mod.py-4-line 0",
        "--",
        "src/deep/mod.py-13-line 9",
        "src/deep/mod.py:14:w = foo",
    ]


async def test_cap_says_how_many_were_left_out(ws: Path, ctx: ToolContext) -> None:
    make_tree(ws)
    res = await call(PY, ctx, pattern="line", max_results=3)
    lines = res.content.splitlines()
    assert lines[:3] == ["src/deep/mod.py:4:line 0", "src/deep/mod.py:5:line 1", "src/deep/mod.py:6:line 2"]
    assert lines[3].startswith("[7 more matching lines not shown (10 in 1 files)")
    assert res.meta["truncated"] is True


@pytest.mark.parametrize("tool", [RG, PY], ids=["rg", "python"])
async def test_invalid_regex_is_an_error_result(ws: Path, ctx: ToolContext, tool: GrepTool) -> None:
    if tool is RG and not HAVE_RG:
        pytest.skip("ripgrep not installed")
    (ws / "a.txt").write_text("x\n")
    res = await call(tool, ctx, pattern="foo(")
    assert res.is_error and "invalid regular expression" in res.content


@pytest.mark.skipif(not HAVE_RG, reason="ripgrep not installed")
async def test_lookaround_falls_back_to_python_regex(ws: Path, ctx: ToolContext) -> None:
    (ws / "a.py").write_text("foobar\nfoobaz\n")
    res = await call(RG, ctx, pattern="foo(?!bar)")
    assert res.content == "a.py:2:foobaz" and res.meta["backend"] == "python"


async def test_without_rg_on_path_the_fallback_is_used(
    ws: Path, ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ws / "a.py").write_text("needle\n")
    monkeypatch.setenv("PATH", str(ws / "no-bin"))
    res = await call(GrepTool(), ctx, pattern="needle")
    assert res.content == "a.py:1:needle" and res.meta["backend"] == "python"


async def test_paths_are_relative_to_cwd_and_guarded(ws: Path, tmp_path: Path) -> None:
    make_tree(ws)
    ctx = ToolContext(workspace=ws, cwd=ws / "src")
    res = await call(PY, ctx, pattern="FOO = 1")
    assert res.content == "util.py:2:FOO = 1"
    res = await call(PY, ctx, pattern="Foo docs", path="..")
    assert res.content == "../docs/readme.md:1:Foo docs"
    res = await call(PY, ctx, pattern="x", path="../..")
    assert res.is_error and "outside the workspace" in res.content
    res = await call(PY, ctx, pattern="x", path="missing")
    assert res.is_error and "not found" in res.content


async def test_parent_gitignore_applies_up_to_the_repo_root(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    repo = outer / "repo"
    (repo / ".git").mkdir(parents=True)
    (outer / ".gitignore").write_text("secret*\n")  # above the repository: does not apply
    (repo / ".gitignore").write_text("gen/\n")
    (repo / "src" / "gen").mkdir(parents=True)
    (repo / "src" / "gen" / "g.py").write_text("hit\n")
    (repo / "src" / "secret.py").write_text("hit\n")
    (repo / "src" / "a.py").write_text("hit\n")
    ctx = ToolContext(workspace=repo, cwd=repo / "src")
    for tool in ([RG, PY] if HAVE_RG else [PY]):
        res = await call(tool, ctx, pattern="hit")
        assert res.content == "a.py:1:hit\nsecret.py:1:hit", tool.use_rg


async def test_an_ignored_directory_named_explicitly_is_searched(ws: Path, ctx: ToolContext) -> None:
    make_tree(ws)
    for tool in ([RG, PY] if HAVE_RG else [PY]):
        res = await call(tool, ctx, pattern="foo", path="build")
        assert res.content == "build/out.py:1:foo built"


async def test_patterns_that_look_like_flags_or_span_lines(ws: Path, ctx: ToolContext) -> None:
    (ws / "a.txt").write_text("--verbose flag\nnext\n")
    for tool in ([RG, PY] if HAVE_RG else [PY]):
        res = await call(tool, ctx, pattern="--verbose")
        assert res.content == "a.txt:1:--verbose flag"
        res = await call(tool, ctx, pattern="flag\nnext")  # matching is per line, like ripgrep's default
        assert not res.is_error and res.content == "No matches found."
