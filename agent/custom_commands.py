"""Custom slash commands: Markdown prompt files, as Claude Code users write them.

`.ghostline/commands/NAME.md` in the project and `commands/NAME.md` beside the user's config.toml (a project
command shadows a user command of the same name); a file in a subfolder is a namespaced command
(`frontend/lint.md` → `/frontend:lint`). Optional frontmatter: `description`, `argument-hint`, `allowed-tools`
(the only tools the model may call while answering it, as permission rules: `Read`, `Bash(git diff:*)`), `model`.
The body is the prompt: `$ARGUMENTS` is everything typed after the name, `$1`..`$9` its words (quotes group);
a body with neither gets the arguments appended as `ARGUMENTS: ...`, as Claude Code does.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ghostline.tools.frontmatter import FrontmatterError, list_field, split_frontmatter, text_field

PROJECT_COMMAND_DIR = ".ghostline/commands"
_POSITIONAL = re.compile(r"\$([1-9])(?![0-9])")
_INVOCATION = re.compile(r"^/([A-Za-z0-9_][A-Za-z0-9_:.\-]*)(?:\s+(.*))?$", re.S)


@dataclass(frozen=True)
class CustomCommand:
    name: str  # lower case, namespaced with ":"
    path: Path
    source: str  # "project" | "user"
    body: str
    description: str = ""
    argument_hint: str = ""
    allowed_tools: tuple[str, ...] = ()
    model: str = ""

    def expand(self, arguments: str) -> str:
        """The prompt the model gets for `/name arguments`."""
        arguments = arguments.strip()
        words = _words(arguments)
        text = self.body.replace("$ARGUMENTS", arguments)
        text = _POSITIONAL.sub(lambda m: words[int(m.group(1)) - 1] if int(m.group(1)) <= len(words) else "", text)
        takes_arguments = "$ARGUMENTS" in self.body or _POSITIONAL.search(self.body) is not None
        if arguments and not takes_arguments:
            text = f"{text.rstrip()}\n\nARGUMENTS: {arguments}"
        return text.strip()


def _words(arguments: str) -> list[str]:
    try:
        return shlex.split(arguments)
    except ValueError:  # an unmatched quote: plain words
        return arguments.split()


def parse_invocation(text: str) -> tuple[str, str] | None:
    """`/name rest` → (name in lower case, rest); None when the text does not start like a command."""
    m = _INVOCATION.match(text.strip())
    if not m:
        return None
    return m.group(1).lower(), (m.group(2) or "").strip()


def load_commands(root: Path, user_dir: Path | None) -> tuple[dict[str, CustomCommand], list[str]]:
    """The commands by name (project first, so it wins), and warnings for files that cannot be read."""
    found: dict[str, CustomCommand] = {}
    warnings: list[str] = []
    places = [(root / PROJECT_COMMAND_DIR, "project")]
    if user_dir is not None:
        places.append((user_dir / "commands", "user"))
    for folder, source in places:
        for path in sorted(folder.rglob("*.md")) if folder.is_dir() else []:
            command = _read_command(folder, path, source, warnings)
            if command is not None and command.name not in found:
                found[command.name] = command
    return found, warnings


def _read_command(folder: Path, path: Path, source: str, warnings: list[str]) -> CustomCommand | None:
    try:
        fields, body = split_frontmatter(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as e:
        warnings.append(f"skipping command {path}: {e.strerror or e}")
        return None
    except FrontmatterError as e:
        warnings.append(f"skipping command {path}: {e}")
        return None
    name = ":".join(path.relative_to(folder).with_suffix("").parts).lower()
    if not re.fullmatch(r"[a-z0-9_][a-z0-9_:.\-]*", name):
        warnings.append(f"skipping command {path}: /{name} is not a usable command name (letters, digits, - _ .)")
        return None
    model = text_field(fields, "model")
    return CustomCommand(name=name, path=path, source=source, body=body.strip(),
                         description=text_field(fields, "description") or _first_line(body),
                         argument_hint=text_field(fields, "argument-hint"),
                         allowed_tools=tuple(list_field(fields, "allowed-tools")),
                         model="" if model in ("", "inherit") else model)


def _first_line(body: str) -> str:
    for line in body.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 80 else line[:79] + "…"
    return ""
