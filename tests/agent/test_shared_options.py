"""Options written once (agent/commands/signature.py) reach every command that shares them, with their values."""

from __future__ import annotations

import typer
from typer.main import get_command
from typer.testing import CliRunner

from ghostline.agent.cli import app
from ghostline.agent.commands.signature import with_options


def _options(command) -> set[str]:
    return {opt for p in command.params for opt in p.opts if opt.startswith("--")}


def test_run_tui_and_bare_agent_take_the_same_session_options():
    root = get_command(app)
    shared = {"--model", "--base-url", "--max-turns", "--max-tokens", "--max-cost", "--approval", "--sandbox",
              "--network", "--resume", "--continue", "--worktree", "--cwd"}
    for command in (root, root.commands["run"], root.commands["tui"]):
        assert shared <= _options(command), command.name
    assert {"--output-format", "--verify", "--patch"} <= _options(root.commands["run"])
    assert "--output-format" not in _options(root.commands["tui"])


def test_values_arrive_as_one_dict_beside_the_command_s_own():
    def template(colour: str = typer.Option("red", "--colour"), size: int = typer.Option(1, "--size")) -> None:
        """shared"""

    got = {}

    @with_options(template, into="shared")
    def paint(name: str = typer.Argument(...), shared: dict | None = None) -> None:
        got.update(name=name, shared=shared)

    cli = typer.Typer()
    cli.command()(paint)
    cli.command("other")(lambda: None)  # two commands: typer keeps the command's name in argv
    result = CliRunner().invoke(cli, ["paint", "wall", "--size", "3"])
    assert result.exit_code == 0, result.output
    assert got == {"name": "wall", "shared": {"colour": "red", "size": 3}}
