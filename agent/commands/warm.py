"""`agent warm status|stop`: the warm process that starts `agent run` without paying for imports."""

from __future__ import annotations

import json

import typer

warm_app = typer.Typer(help="The warm process `agent run` forks from (see `agent/warm.py`; GHOSTLINE_WARM=0 "
                            "turns it off).", no_args_is_help=True)


@warm_app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON.")) -> None:
    """Whether a warm process serves this environment, and how many runs it started."""
    from ghostline.agent import warm  # here: hashlib, socket and the rest would cost every `agent --help`

    reply = warm.query("status")
    if as_json:
        typer.echo(json.dumps(reply))
    elif reply is None:
        typer.echo("no warm process (the next `agent run` starts one, unless GHOSTLINE_WARM=0 or in CI)")
    else:
        typer.echo(f"warm process {reply['pid']}: {reply['served']} runs started, {reply['running']} running")
    raise typer.Exit(0 if reply is not None or as_json else 1)


@warm_app.command("stop")
def stop() -> None:
    """Stop the warm process (runs in flight finish first)."""
    from ghostline.agent import warm

    reply = warm.query("stop")
    typer.echo("stopped" if reply is not None else "no warm process")


def register(app: typer.Typer) -> None:
    app.add_typer(warm_app, name="warm")
