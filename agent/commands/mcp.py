"""`agent mcp add|list|remove`: the MCP servers whose tools the agent may use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from ghostline.agent.commands import fail as _fail
from ghostline.dirs import find_project_root

mcp_app = typer.Typer(help="MCP servers: add one with one command, see which connect, remove them.",
                      no_args_is_help=True)

SCOPE_HELP = ("local: yours, for this project only (default); user: yours, in every project; "
              "project: .mcp.json at the project root, meant to be committed")


def register(app: typer.Typer) -> None:
    app.add_typer(mcp_app, name="mcp")


def _root(cwd: Path | None) -> Path:
    return find_project_root(Path(os.path.realpath(cwd or Path.cwd())))


@mcp_app.command("add")
def add_cmd(
    name: str = typer.Argument(..., help="The server's name (its tools are mcp__NAME__TOOL)."),
    command: list[str] = typer.Argument(None, help="The command that starts a stdio server (after --)."),
    url: str | None = typer.Option(None, "--url", help="A streamable-HTTP server's URL instead of a command."),
    scope: str = typer.Option("local", "--scope", "-s", help=SCOPE_HELP),
    env: list[str] = typer.Option([], "--env", "-e", help="K=V for the server's environment (repeatable)."),
    header: list[str] = typer.Option([], "--header", "-H", help='"K: V" HTTP header (repeatable).'),
    cwd: Path | None = typer.Option(None, "--cwd", help="The project (default: the project root here)."),
) -> None:
    """Add a server: `agent mcp add NAME -- CMD [ARGS...]` or `agent mcp add NAME --url URL`."""
    from ghostline.agent.mcp_config import add_server
    from ghostline.agent.providers.base import ConfigError

    _check_scope(scope)
    entry = _entry(command or [], url, env, header)
    try:
        path = add_server(scope, name, entry, _root(cwd))
    except (ValueError, ConfigError) as exc:
        raise _fail(f"cannot add {name!r}: {exc}") from None
    typer.echo(f"added MCP server {name!r} ({scope}) to {path}")


def _entry(command: list[str], url: str | None, env: list[str], header: list[str]) -> dict[str, Any]:
    if bool(command) == bool(url):
        raise _fail("give either a command (agent mcp add NAME -- CMD ARGS...) or --url URL")
    if url:
        if env:
            raise _fail("--env is for a command's environment; an HTTP server takes --header")
        return {"type": "http", "url": url, **({"headers": _pairs(header, ":", "--header")} if header else {})}
    if header:
        raise _fail("--header is for an HTTP server (--url)")
    entry: dict[str, Any] = {"command": command[0], "args": command[1:]}
    if env:
        entry["env"] = _pairs(env, "=", "--env")
    return entry


def _pairs(items: list[str], sep: str, flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, found, value = item.partition(sep)
        if not found or not key.strip():
            raise _fail(f"{flag} takes K{sep}V (got {item!r})")
        out[key.strip()] = value.strip()
    return out


def _check_scope(scope: str) -> None:
    from ghostline.agent.mcp_config import SCOPES

    if scope not in SCOPES:
        raise _fail(f"--scope must be one of {', '.join(SCOPES)} (got {scope!r})")


@mcp_app.command("remove")
def remove_cmd(
    name: str = typer.Argument(..., help="The server to remove."),
    scope: str | None = typer.Option(None, "--scope", "-s", help="Where (default: wherever it is)."),
    cwd: Path | None = typer.Option(None, "--cwd", help="The project (default: the project root here)."),
) -> None:
    """Remove a server from its scope's configuration."""
    from ghostline.agent.mcp_config import SCOPES, remove_server
    from ghostline.agent.providers.base import ConfigError

    if scope is not None:
        _check_scope(scope)
    root = _root(cwd)
    try:
        removed = [s for s in ([scope] if scope else SCOPES) if remove_server(s, name, root)]
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if not removed:
        raise _fail(f"no MCP server {name!r} in {scope or 'any scope'} here; `agent mcp list` shows them", 1)
    typer.echo(f"removed MCP server {name!r} ({', '.join(removed)})")


@mcp_app.command("list")
def list_cmd(
    cwd: Path | None = typer.Option(None, "--cwd", help="The project (default: the project root here)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Each server: does it connect, how many tools, and why not."""
    import asyncio
    import json

    from ghostline.agent.mcp_report import server_report

    rows = asyncio.run(server_report(_root(cwd)))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no MCP servers configured (add one: agent mcp add NAME -- CMD ARGS...)")
    for r in rows:
        state = f"✓ {r['tools']} tools" if r["connected"] else f"✗ {r['error']}"
        typer.echo(f"{r['name']:<16} {r['scope']:<8} {r['transport']:<6} {state}")
