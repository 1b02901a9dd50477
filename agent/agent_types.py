"""Subagent types: the built-in ones, and Markdown files in Claude Code's format.

`.ghostline/agents/NAME.md` in the project and `agents/NAME.md` beside the user's config.toml (a project file wins
over a user file of the same name, which wins over a built-in)::

    ---
    name: test-runner
    description: Runs the tests and reports failures with their causes
    tools: Read, Grep, Glob, Bash      # omitted: every tool the main agent has (but `task`)
    model: anthropic:claude-haiku-4-5  # omitted, or not in the model table: the main agent's model
    ---
    You run the project's tests ... (the body is the subagent's system prompt)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ghostline.agent.models import model_info, parse_model_spec
from ghostline.agent.providers.base import ConfigError
from ghostline.tools.frontmatter import list_field, split_frontmatter, text_field

AGENTS_DIR = "agents"
DEFAULT_TYPE = "general-purpose"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Claude Code's tool names that are not ours once lower-cased (`Read` is `read`, `TodoWrite` is `todo_write`).
CLAUDE_CODE_TOOLS = {"multi_edit": "edit", "ls": "glob", "web_fetch": "fetch"}


@dataclass(frozen=True)
class AgentType:
    name: str
    description: str
    prompt: str  # the subagent's system prompt (the environment and project instructions are added to it)
    tools: tuple[str, ...] | None = None  # None: every tool of the main agent but `task`
    model: str | None = None  # as written; used only when the model table has it
    source: str = "built-in"


EXPLORER = AgentType(
    "explorer",
    "Fast, read-only exploration of the codebase: finds files, code and answers to questions about how things "
    "work, and reports back with paths and line numbers. It cannot change anything.",
    "You are an explorer, a subagent of a coding agent. Answer the question you were given by searching and "
    "reading the codebase: use grep, glob and search to find candidates, read what matters, and follow the code "
    "until you know. You cannot change anything. End with a concise report: the answer first, then the evidence "
    "as file paths with line numbers, and anything you could not determine.",
    ("read", "grep", "glob", "search"),
)
GENERAL = AgentType(
    DEFAULT_TYPE,
    "A general-purpose agent for multi-step tasks: researching, changing code and running commands with the main "
    "agent's tools, in its own context window.",
    "You are a subagent of a coding agent: you were given one task and work on it on your own, with your own "
    "context window. Do the task fully with the tools; read before you edit; verify what you change. End with a "
    "concise report of what you did and found (file paths, commands and their results): it is all the main agent "
    "will see of your work.",
)
BUILTIN = (EXPLORER, GENERAL)


def tool_name(written: str) -> str:
    """A tool as an agent file names it, in Ghostline's spelling: `Read` → read, `TodoWrite` → todo_write,
    `Bash(git status:*)` → bash (a permission pattern there is Claude Code's, not a tool)."""
    name = written.split("(", 1)[0].strip()
    if re.fullmatch(r"[A-Z][A-Za-z]*", name):
        name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower()
    return CLAUDE_CODE_TOOLS.get(name, name)


def parse_agent_file(path: Path) -> AgentType:
    """Raises ValueError with a one-line reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read it ({exc})") from None
    fields, body = split_frontmatter(text)
    body = body.strip()
    name = text_field(fields, "name") or path.stem
    if not _NAME.match(name):
        raise ValueError(f"name {name!r} must be letters, digits, '-', '_' or '.'")
    if not body:
        raise ValueError("the body (the subagent's system prompt) is empty")
    description = text_field(fields, "description") or body.splitlines()[0][:200]
    tools = list_field(fields, "tools")
    model = text_field(fields, "model")
    return AgentType(name, description, body, tuple(dict.fromkeys(tool_name(t) for t in tools)) if tools else None,
                     model or None, str(path))


def agent_dirs(root: Path, user_dir: Path | None) -> list[Path]:
    """Where agent files are looked for, lowest precedence first."""
    dirs = [user_dir / AGENTS_DIR] if user_dir is not None else []
    return [*dirs, root / ".ghostline" / AGENTS_DIR]


def load_agent_types(root: Path, user_dir: Path | None) -> tuple[dict[str, AgentType], list[str]]:
    """The agent types by name (built-ins, then user files, then project files, each replacing the one before),
    and a warning line for each file that was skipped."""
    types = {t.name: t for t in BUILTIN}
    warnings: list[str] = []
    for folder in agent_dirs(root, user_dir):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.md")):
            try:
                agent = parse_agent_file(path)
            except ValueError as exc:
                warnings.append(f"ignoring agent file {path}: {exc}")
                continue
            types[agent.name] = agent
    return types, warnings


def subagent_model(requested: str | None, parent_spec: str | None,
                   overrides: dict[str, dict[str, object]] | None = None) -> str | None:
    """The model spec a subagent runs on: what its file names when the model table (or the config's [models])
    has it, else None (the main agent's model). `claude-haiku-4-5` takes the main agent's provider; Claude
    Code's `inherit`, `sonnet`, `opus`, `haiku` are not in the table and so mean the main agent's model."""
    if not requested or not parent_spec:
        return None
    try:
        provider, _ = parse_model_spec(parent_spec)
        spec = requested if ":" in requested else f"{provider}:{requested}"
        provider, name = parse_model_spec(spec)
        known = model_info(spec, overrides).known  # type: ignore[arg-type]
    except ConfigError:
        return None
    configured = overrides is not None and (f"{provider}:{name}" in overrides or name in overrides)
    return f"{provider}:{name}" if known or configured else None
