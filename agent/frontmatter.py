"""Markdown files with YAML frontmatter, the format Claude Code's agent, command and skill files use:

    ---
    name: reviewer
    description: Reviews a diff
    tools: Read, Grep, Glob
    ---
    The body (a prompt).
"""

from __future__ import annotations

from typing import Any

import yaml

FENCE = "---"


class FrontmatterError(ValueError):
    """The frontmatter is not valid YAML, or not a mapping: one line for the user."""


def split_frontmatter(text: str) -> tuple[dict[str, Any], str]:
    """(frontmatter fields, body). A file without a leading `---` line is all body."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != FENCE:
        return {}, text.strip()
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == FENCE), None)
    if end is None:
        raise FrontmatterError("the frontmatter opened with --- is never closed")
    try:
        fields = yaml.safe_load("".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        raise FrontmatterError(f"the frontmatter is not valid YAML{where}") from None
    if not isinstance(fields, dict):
        raise FrontmatterError("the frontmatter must be `key: value` lines")
    return fields, "".join(lines[end + 1:]).strip()


def name_list(value: Any) -> list[str]:
    """A list field written either way: `tools: Read, Grep` or a YAML list."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(v).strip() for v in items if str(v).strip()]
