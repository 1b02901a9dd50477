"""Skills: discovery (project before user, unusable folders warned about), and the `skill` tool's body, file
list and files (confined to the skill's folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostline.tools.base import ToolContext, ToolError
from ghostline.tools.registry import Call, ToolRegistry
from ghostline.tools.skill import SkillTool, discover_skills, skill_dirs


def skill(base: Path, folder: str, front: str, body: str = "Do the thing.") -> Path:
    d = base / folder
    d.mkdir(parents=True)
    (d / "SKILL.md").write_text(f"---\n{front}\n---\n{body}\n")
    return d


def test_discovery_order_names_and_warnings(tmp_path):
    user = tmp_path / "user"
    skill(tmp_path / ".ghostline/skills", "pdf", "name: pdf\ndescription: Fill PDF forms.")
    skill(tmp_path / ".agents/skills", "pdf-copy", "name: pdf\ndescription: shadowed by the first")
    skill(tmp_path / ".agents/skills", "changelog", "description: >\n  Keep CHANGELOG.md\n  in order.")
    skill(user / "skills", "nodesc", "name: nodesc")
    (user / "skills" / "not-a-skill").mkdir()
    skills, warnings = discover_skills(skill_dirs(tmp_path, user))
    assert [(s.name, s.description) for s in skills] == [("changelog", "Keep CHANGELOG.md in order."),
                                                         ("pdf", "Fill PDF forms.")]
    assert len(warnings) == 1 and "no description" in warnings[0]


async def test_the_tool_returns_the_body_lists_files_and_reads_them(tmp_path):
    d = skill(tmp_path / ".ghostline/skills", "pdf", "name: pdf\ndescription: Fill PDF forms.",
              "Use scripts/fill.py.\n")
    (d / "scripts").mkdir()
    (d / "scripts" / "fill.py").write_text("print('filling')\n")
    (d / "reference.md").write_text("field names\n")
    (tmp_path / "secret.txt").write_text("outside")
    skills, _ = discover_skills(skill_dirs(tmp_path, None))
    tool = SkillTool(skills)
    ctx = ToolContext(workspace=tmp_path, cwd=tmp_path)
    result = await tool.run({"name": "pdf"}, ctx)
    assert result.content.startswith('<skill name="pdf" folder=".ghostline/skills/pdf">\nUse scripts/fill.py.')
    assert "description" not in result.content  # the frontmatter is not repeated
    assert "- reference.md\n- scripts/fill.py" in result.content
    assert (await tool.run({"name": "pdf", "file": "scripts/fill.py"}, ctx)).content == "print('filling')\n"
    with pytest.raises(ToolError, match="not inside the skill"):
        await tool.run({"name": "pdf", "file": "../../../secret.txt"}, ctx)


async def test_an_unknown_skill_is_refused_by_the_schema(tmp_path):
    skill(tmp_path / ".ghostline/skills", "pdf", "description: Fill PDF forms.")
    skills, _ = discover_skills(skill_dirs(tmp_path, None))
    registry = ToolRegistry([SkillTool(skills)])
    [result] = await registry.run([Call("c", "skill", {"name": "docx"})], ToolContext(tmp_path, tmp_path))
    assert result.is_error and "'pdf'" in result.content and registry.kind_of("skill") == "read"
