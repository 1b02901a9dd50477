"""Project instructions (AGENT.md / AGENTS.md from the repository root down to cwd, plus the user's) and the
byte-stable system prompt."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path

INSTRUCTION_FILES = ("AGENT.md", "AGENTS.md")
MAX_INSTRUCTIONS_BYTES = 32 * 1024


def instruction_files(root: Path, cwd: Path, user_dir: Path | None) -> list[Path]:
    """User-level file first, then the repository root down to cwd (so nearer files come later and win)."""
    found: list[Path] = []
    if user_dir is not None:
        for name in INSTRUCTION_FILES:
            p = user_dir / name
            if p.is_file():
                found.append(p)
    chain = [cwd]
    if cwd != root and root in cwd.parents:
        chain = [d for d in reversed(cwd.parents) if d == root or root in d.parents] + [cwd]
    seen: set[Path] = set()
    for d in chain:
        for name in INSTRUCTION_FILES:
            p = d / name
            if p.is_file() and p.resolve() not in seen:
                seen.add(p.resolve())
                found.append(p)
    return found


def load_instructions(root: Path, cwd: Path, user_dir: Path | None) -> str:
    """Concatenated instructions, root first, capped at 32 KiB (the cap cuts the last files, never the first)."""
    parts: list[str] = []
    used = 0
    for p in instruction_files(root, cwd, user_dir):
        try:
            text = p.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            continue
        if not text:
            continue
        label = str(p.relative_to(root)) if root in p.parents else str(p)
        block = f"<instructions source=\"{label}\">\n{text}\n</instructions>"
        room = MAX_INSTRUCTIONS_BYTES - used
        if room <= 0:
            break
        encoded = block.encode()
        if len(encoded) > room:
            block = encoded[:room].decode(errors="ignore") + "\n[instructions truncated at 32 KiB]"
        parts.append(block)
        used += len(block.encode())
    return "\n\n".join(parts)


# How a model changes files, by the edit tool it has (the model table picks it: agent/models.py).
EDIT_RULES = {
    "edit": """\
- Read a file before you edit or overwrite it. `edit` replaces an exact, unique `old_string`; include enough
  surrounding lines to make it unique, or set replace_all.
- Prefer `edit` for changes to existing files; use `write` for new files or complete rewrites.
""",
    "apply_patch": """\
- Change files with `apply_patch`: one patch may update, add, delete and move several files. Read what you change
  first, and give each change three lines of context (more `@@` lines when that is not unique).
- Use `write` only to replace a whole file you have read.
""",
}

TOOL_RULES = """Tool rules:
- Read a file before you edit or overwrite it. `edit` replaces an exact, unique `old_string`; include enough
  surrounding lines to make it unique, or set replace_all.
- Prefer `edit` for changes to existing files; use `write` for new files or complete rewrites.
- Use `grep`/`glob`/`search` to find code instead of guessing paths. Paths are relative to the working directory.
- Calls that only read (read, grep, glob, search, fetch) can be issued together in one message; they run in
  parallel. `fetch` reads a web page (documentation, an issue) as Markdown, where the user's rules allow it.
- `bash` runs in a sandbox; keep commands non-interactive. Long output is cut to its head and tail.
- A tool error is information: read it, adjust, and try again differently; do not repeat a failing call unchanged.
- Never claim a change or a test result you have not seen in a tool result.
"""

BASE_PROMPT = """You are Ghostline, a coding agent working in the user's repository from a terminal.
Work autonomously: understand the task, inspect the code with the tools, make the change, verify it (run the tests
or the program), and finish with a short summary of what you did and what you verified. For work with several
steps, keep your checklist with `todo_write`. Hand a self-contained sub-task (a broad search, say) to a subagent
with `task`: it works in its own context and returns only its report.

""" + TOOL_RULES


def with_edit_rules(prompt: str, tool_names: Sequence[str]) -> str:
    """`prompt` with the rules for the edit tool among `tool_names` (prompts are written with `edit`'s)."""
    edit = next((name for name in EDIT_RULES if name in tool_names), "edit")
    for rules in EDIT_RULES.values():
        if rules in prompt:
            return prompt.replace(rules, EDIT_RULES[edit])
    return prompt


def skills_section(skills: Sequence[tuple[str, str]]) -> str:
    """Only each skill's name and description: its body reaches the model when the `skill` tool loads it."""
    if not skills:
        return ""
    listed = "\n".join(f"- {name}: {description}" for name, description in skills)
    return ("\nSkills (instructions for particular kinds of task, loaded on demand): when the task matches a "
            "skill's description, call the `skill` tool with its name before you start, and follow what it "
            f"says.\n{listed}\n")


def system_prompt(*, root: Path, cwd: Path, instructions: str, sandbox: str, is_git: bool,
                  base: str = BASE_PROMPT, skills: Sequence[tuple[str, str]] = ()) -> str:
    """Byte-stable across turns and resumes: no timestamps, ids or anything that changes while a session lives.
    `base` is who the model is (a subagent's type gives its own); the environment, the skills (name and
    description only) and the instructions follow."""
    env = (
        f"Environment:\n- working directory: {cwd}\n- workspace root: {root}\n"
        f"- git repository: {'yes' if is_git else 'no'}\n- platform: {platform.system()}\n"
        f"- sandbox: {sandbox}\n"
    )
    prompt = base.rstrip("\n") + "\n\n" + env + skills_section(skills)
    if instructions:
        prompt += "\nProject and user instructions (follow them):\n\n" + instructions + "\n"
    return prompt
