"""Markdown files with a YAML frontmatter block (skills' SKILL.md, custom commands), read leniently.

Claude Code's files are not always strict YAML (`argument-hint: [file] [focus]` is not): a block that YAML cannot
read, or reads into something other than a mapping, is read line by line as `key: value` instead, so such a file
still works.
"""

from __future__ import annotations

import re
from typing import Any


class FrontmatterError(ValueError):
    """A frontmatter block opened with `---` and never closed: one line for the user."""


_OPENED = re.compile(r"\A\ufeff?---[ \t]*\r?$", re.M)
_BLOCK = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)^---[ \t]*\r?$\n?", re.S | re.M)
_LINE = re.compile(r"^([A-Za-z0-9_\-]+)[ \t]*:[ \t]*(.*)$")


def split_frontmatter(text: str) -> tuple[dict[str, Any], str]:
    """(fields, body). A file without a frontmatter block is all body."""
    m = _BLOCK.match(text)
    if not m:
        if _OPENED.match(text):
            raise FrontmatterError("the frontmatter opened with --- is never closed")
        return {}, text
    block, body = m.group(1), text[m.end():]
    import yaml  # only where a file has frontmatter (~15 ms to load)

    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        return _by_lines(block), body
    raw = _by_lines(block)
    # YAML reads `[file]` as a list; a hint means the text as written.
    fields = {str(k): raw.get(str(k), v) if isinstance(v, list) and str(k) == "argument-hint" else v
              for k, v in data.items()}
    return fields, body


def _by_lines(block: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in block.splitlines():
        m = _LINE.match(line)
        if m:
            out[m.group(1)] = _unquote(m.group(2).strip())
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def text_field(fields: dict[str, Any], name: str) -> str:
    """A field as one line of text ("" when absent)."""
    value = fields.get(name)
    return "" if value is None else " ".join(str(value).split())


def list_field(fields: dict[str, Any], name: str) -> list[str]:
    """A list written as YAML (`[a, b]` or `- a`) or as one comma-separated line (`Read, Bash(git add:*)`);
    commas inside parentheses belong to the entry."""
    value = fields.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    parts, depth, current = [], 0, ""
    for ch in str(value):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]
