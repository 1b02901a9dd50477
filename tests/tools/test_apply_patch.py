"""The `apply_patch` tool: Codex's envelope through the applier ladder: several files in one call, whole or not at
all, every path in the Action (the gate judges each) and through the sandbox's path guard, results like `edit`'s."""

from __future__ import annotations

from pathlib import Path

from ghostline.sandbox.policy import Action, Policy
from ghostline.tools.apply_patch import ApplyPatchTool
from ghostline.tools.base import ToolContext
from ghostline.tools.registry import Call, ToolRegistry
from tests.tools.conftest import call

TOOL = ApplyPatchTool()

PATCH = """*** Begin Patch
*** Update File: app.py
@@ def greet():
-    print("hi")
+    print("hello")
*** Add File: docs/new.md
+# New
+text
*** Delete File: old.txt
*** Update File: util.py
*** Move to: lib/util.py
@@
 def helper():
-    return 1
+    return 2
*** End Patch"""


def _files(ws: Path) -> None:
    (ws / "app.py").write_text('import sys\n\n\ndef greet():\n    print("hi")\n    return 0\n')
    (ws / "old.txt").write_text("bye\n")
    (ws / "util.py").write_text("def helper():\n    return 1\n")


def test_the_action_names_every_path_the_patch_touches():
    assert TOOL.action({"input": PATCH}) == Action(
        "apply_patch", "edit", paths=("app.py", "docs/new.md", "old.txt", "util.py", "lib/util.py"))
    assert TOOL.title({"input": PATCH}) == "apply_patch app.py, docs/new.md (+3 more)"
    assert TOOL.action({"input": "not a patch"}).paths == ()


async def test_a_patch_changes_several_files_and_reports_like_edit(ws, ctx, changed):
    _files(ws)
    result = await call(TOOL, ctx, input=PATCH)
    assert not result.is_error, result.content
    assert (ws / "app.py").read_text() == 'import sys\n\n\ndef greet():\n    print("hello")\n    return 0\n'
    assert (ws / "docs" / "new.md").read_text() == "# New\ntext\n"
    assert not (ws / "old.txt").exists() and not (ws / "util.py").exists()
    assert (ws / "lib" / "util.py").read_text() == "def helper():\n    return 2\n"
    meta = result.meta
    touched = [str(ws / p) for p in ("app.py", "docs/new.md", "old.txt", "util.py", "lib/util.py")]
    assert meta["files_changed"] == touched == meta["paths"] and meta["path"] == touched[0]
    assert meta["action"] == "patch"
    diff = meta["diff"]
    assert '--- a/app.py\n+++ b/app.py\n@@ -2,5 +2,5 @@\n \n \n def greet():\n-    print("hi")\n+    print("hello")' in diff
    assert "--- /dev/null\n+++ b/docs/new.md" in diff and "--- a/old.txt\n+++ /dev/null" in diff
    assert result.content.startswith("Applied the patch: app.py, docs/new.md, old.txt, util.py, lib/util.py.")
    assert sorted(changed) == sorted(Path(p) for p in touched)
    assert str(ws / "app.py") in ctx.file_state.seen and str(ws / "old.txt") not in ctx.file_state.seen


async def test_a_refused_chunk_changes_nothing_and_says_why(ws, ctx):
    _files(ws)
    bad = PATCH.replace('-    print("hi")', '-    print("howdy")')
    first = await call(TOOL, ctx, input=bad)
    assert first.is_error
    assert first.content.startswith("the patch was not applied (a patch applies whole or not at all):")
    assert "app.py" in first.content and "print(\"hi\")" in first.content  # the closest region, quoted
    assert (ws / "old.txt").exists() and not (ws / "docs").exists() and (ws / "util.py").exists()
    second = await call(TOOL, ctx, input=bad)
    assert "rewrite" in second.content.lower() and "app.py" in second.content  # the whole-file fallback
    garbage = await call(TOOL, ctx, input="--- a/app.py\n+++ b/app.py\n")
    assert garbage.is_error and "*** Begin Patch" in garbage.content


async def test_the_preview_is_the_patch_diff(ws, ctx):
    _files(ws)
    preview = TOOL.preview({"input": PATCH}, ctx)
    assert preview is not None and preview.kind == "diff" and '+    print("hello")' in preview.text
    assert (ws / "old.txt").exists()  # a preview writes nothing


async def test_the_gate_judges_every_path(ws, ctx):
    _files(ws)
    (ws / "secrets").mkdir()
    (ws / "secrets" / "key").write_text("k\n")
    both = ("*** Begin Patch\n*** Update File: app.py\n@@\n-    print(\"hi\")\n+    print(\"yo\")\n"
            "*** Update File: secrets/key\n@@\n-k\n+stolen\n*** End Patch")

    async def run(policy: Policy, text: str, c: ToolContext = ctx) -> str:
        registry = ToolRegistry([TOOL], policy=policy)
        return (await registry.run([Call("c1", "apply_patch", {"input": text})], c))[0].content

    denied = await run(Policy(deny=["apply_patch: secrets/*"], remembered=False), both)
    assert denied.startswith("denied by the sandbox policy: deny rule 'apply_patch: secrets/*'")
    assert (ws / "secrets" / "key").read_text() == "k\n" and "hi" in (ws / "app.py").read_text()
    git = "*** Begin Patch\n*** Add File: .git/hooks/pre-commit\n+rm -rf ~\n*** End Patch"
    assert "denied by the sandbox policy" in await run(Policy(remembered=False), git)
    outside = "*** Begin Patch\n*** Add File: ../escape.txt\n+x\n*** End Patch"
    assert "outside the workspace" in await run(Policy(remembered=False), outside)
    # Without a policy the sandbox's path guard still stands.
    assert "outside" in (await call(TOOL, ctx, input=outside)).content and not (ws.parent / "escape.txt").exists()
    asked = await run(Policy(remembered=False), both, ToolContext(ws, ws, approval="ask"))
    assert "needs the user's approval" in asked


async def test_through_an_editors_buffers(ws, ctx, changed):
    """An editor keeps the files (ACP): the patch applies to its unsaved buffers and goes back through it; a file it
    does not have is read from the disk; CRLF buffers keep their line endings."""
    from tests.tools.test_file_access import Buffers

    _files(ws)
    app = ws / "app.py"
    buffers = Buffers({app: 'import sys\r\n\r\n\r\ndef greet():\r\n    print("hi")\r\n    return 1  # unsaved\r\n'})
    ctx.files = buffers
    result = await call(TOOL, ctx, input=PATCH)
    assert not result.is_error, result.content
    assert buffers.texts[app] == 'import sys\r\n\r\n\r\ndef greet():\r\n    print("hello")\r\n    return 1  # unsaved\r\n'
    assert 'print("hi")' in app.read_text()  # the disk is the editor's to save
    assert buffers.texts[ws / "lib" / "util.py"] == "def helper():\n    return 2\n"  # from the disk's util.py
    assert buffers.texts[ws / "docs" / "new.md"] == "# New\ntext\n" and not (ws / "old.txt").exists()
    assert "+    print(\"hello\")" in result.meta["diff"] and "unsaved" in result.meta["diff"]
    assert app in changed and ctx.file_state.seen[str(app)].mtime_ns == 0  # remembered by the buffer's text
    refused = await call(TOOL, ctx, input=PATCH)  # the buffers moved on: the patch no longer applies
    assert refused.is_error and buffers.writes.count(app) == 1
