"""Skills (the Agent Skills format: a folder with a SKILL.md) and the `skill` tool that loads one on demand.

A skill's frontmatter `name` and `description` are all the model sees up front (the system prompt lists them);
`skill(name)` returns the body of SKILL.md and lists the folder's other files, and `skill(name, file)` returns one
of them (a user-level skill lives outside the workspace, where `read` may not go).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghostline.tools.base import BaseTool, ToolContext, ToolError, ToolKind, ToolResult
from ghostline.tools.frontmatter import FrontmatterError, split_frontmatter, text_field
from ghostline.tools.paths import display

SKILL_FILE = "SKILL.md"
PROJECT_SKILL_DIRS = (".ghostline/skills", ".agents/skills")
MAX_FILE_CHARS = 100_000
MAX_LISTED_FILES = 200


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    folder: Path


def skill_dirs(root: Path, user_dir: Path | None) -> list[Path]:
    """Where skills are looked for, nearest first: the project's, then the user's."""
    dirs = [root / d for d in PROJECT_SKILL_DIRS]
    return dirs + ([user_dir / "skills"] if user_dir is not None else [])


def discover_skills(dirs: Sequence[Path]) -> tuple[list[Skill], list[str]]:
    """Every `DIR/NAME/SKILL.md`; a name found twice keeps the first (project skills shadow the user's).
    Returns the skills by name, and warnings for folders that are not usable skills."""
    found: dict[str, Skill] = {}
    warnings: list[str] = []
    for d in dirs:
        for folder in sorted(p for p in _subdirs(d) if (p / SKILL_FILE).is_file()):
            skill, problem = _read_skill(folder)
            if skill is None:
                warnings.append(problem)
            elif skill.name not in found:
                found[skill.name] = skill
    return sorted(found.values(), key=lambda s: s.name), warnings


def _subdirs(d: Path) -> list[Path]:
    try:
        return [p for p in d.iterdir() if p.is_dir()]
    except OSError:
        return []


def _read_skill(folder: Path) -> tuple[Skill | None, str]:
    path = folder / SKILL_FILE
    try:
        fields, _ = split_frontmatter(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as e:
        return None, f"skipping skill {path}: {e.strerror or e}"
    except FrontmatterError as e:
        return None, f"skipping skill {path}: {e}"
    name = text_field(fields, "name") or folder.name
    description = text_field(fields, "description")
    if not description:
        return None, f"skipping skill {path}: its frontmatter has no description (the model chooses skills by it)"
    if any(ch.isspace() for ch in name):
        return None, f"skipping skill {path}: its name {name!r} has spaces"
    return Skill(name, description, folder), ""


class SkillTool(BaseTool):
    name = "skill"
    kind: ToolKind = "read"
    subject_key = "name"

    def __init__(self, skills: Sequence[Skill]) -> None:
        self.skills = {s.name: s for s in skills}
        self.description = (
            "Load a skill: its instructions (the body of its SKILL.md) and the list of the other files in its "
            "folder. Call it when the task matches a skill's description (the system prompt lists them), before "
            "you start, and follow what it says. With `file`, returns one of the skill's other files instead.")
        self.input_schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": sorted(self.skills), "description": "The skill's name."},
                "file": {"type": "string", "description": "A file of the skill's folder, relative to it."},
            },
            "required": ["name"],
            "additionalProperties": False,
        }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        skill = self.skills[args["name"]]
        if args.get("file"):
            return await asyncio.to_thread(_skill_file, skill, args["file"])
        return await asyncio.to_thread(_skill_body, skill, ctx)


def _skill_body(skill: Skill, ctx: ToolContext) -> ToolResult:
    try:
        _, body = split_frontmatter((skill.folder / SKILL_FILE).read_text(encoding="utf-8", errors="replace"))
    except OSError as e:
        raise ToolError(f"cannot read the skill {skill.name}: {e.strerror or e}") from None
    files = _other_files(skill.folder)
    where = display(ctx, skill.folder)
    parts = [f'<skill name="{skill.name}" folder="{where}">', _cut(body.strip()), "</skill>"]
    if files:
        listed = "\n".join(f"- {f}" for f in files[:MAX_LISTED_FILES])
        more = f"\n- … and {len(files) - MAX_LISTED_FILES} more" if len(files) > MAX_LISTED_FILES else ""
        parts.append(f"Other files in the skill's folder ({where}); read one with "
                     f'skill(name="{skill.name}", file="PATH") when the instructions call for it:\n{listed}{more}')
    return ToolResult("\n".join(parts), meta={"skill": skill.name, "files": len(files)})


def _skill_file(skill: Skill, given: str) -> ToolResult:
    folder = os.path.realpath(skill.folder)
    real = os.path.realpath(os.path.join(folder, given))
    if not real.startswith(folder + os.sep):
        raise ToolError(f"{given} is not inside the skill {skill.name}'s folder")
    try:
        data = Path(real).read_bytes()
    except OSError as e:
        raise ToolError(f"cannot read {given} of the skill {skill.name}: {e.strerror or e}") from None
    if b"\x00" in data[:8192]:
        raise ToolError(f"{given} is a binary file; run it or read it with bash if the skill says so")
    return ToolResult(_cut(data.decode("utf-8", errors="replace")), meta={"skill": skill.name, "file": given})


def _other_files(folder: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            rel = Path(dirpath, f).relative_to(folder).as_posix()
            if rel != SKILL_FILE and not f.startswith("."):
                out.append(rel)
    return out


def _cut(text: str) -> str:
    if len(text) <= MAX_FILE_CHARS:
        return text
    return text[:MAX_FILE_CHARS] + f"\n[… cut at {MAX_FILE_CHARS} characters]"
