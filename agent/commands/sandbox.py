"""`agent sandbox check|run`, `agent undo`, `agent permissions`, `agent trust`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ghostline.agent.commands import fail as _fail
from ghostline.dirs import find_project_root
from ghostline.sandbox.modes import SANDBOX_LEVELS, SANDBOX_MODES

if TYPE_CHECKING:
    from ghostline.sandbox.runner import CommandResult

sandbox_app = typer.Typer(help="The OS sandbox for commands: check what works here, run a command in it.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
    app.command("undo")(undo_cmd)
    app.command("permissions")(permissions_cmd)
    app.command("trust")(trust_cmd)


def _here_root(cwd: Path | None) -> Path:
    return find_project_root(Path(os.path.realpath(cwd or Path.cwd())))


# --- agent sandbox check --------------------------------------------------------------------------------------
@sandbox_app.command("check")
def check_cmd(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Print which sandbox layers work here and the level in force."""
    import json

    from ghostline.sandbox import check

    rep = check()
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
        return
    for name, info in rep["layers"].items():
        mark = "yes" if info["available"] else "no "
        typer.echo(f"{name:<11} {mark}  {info['detail']}")
    typer.echo(f"seccomp     {'yes' if rep['seccomp'] else 'no '}  network/TIOCSTI filter for the Landlock layer")
    typer.echo(f"pids cgroup {'yes' if rep['pids_cgroup'] else 'no '}  bounds fork bombs when running as root")
    forced = f" (forced by GHOSTLINE_SANDBOX={rep['forced']})" if rep["forced"] else ""
    typer.echo(f"level in force: {rep['level']}{forced}")


# --- agent sandbox run ----------------------------------------------------------------------------------------
@sandbox_app.command("run", context_settings={"allow_interspersed_args": False})
def run_cmd(
    command: list[str] = typer.Argument(..., help="The command (after --). One argument is a shell line."),
    mode: str = typer.Option("workspace-write", "--mode", help=" | ".join(SANDBOX_MODES)),
    network: str = typer.Option("off", "--network", help="on | off"),
    cwd: Path | None = typer.Option(None, "--cwd", help="Working directory (default: here)."),
    workspace: Path | None = typer.Option(None, "--workspace",
                                          help="Writable root (default: the project root of --cwd)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds before the command is killed."),
    output_limit: int = typer.Option(30000, "--output-limit", help="Characters of output kept."),
    level: str | None = typer.Option(None, "--level",
                                     help=f"Force a layer: {' | '.join(SANDBOX_LEVELS)}."),
) -> None:
    """Run one command exactly as the bash tool would; its exit code is passed through."""
    import shlex

    _check_run_options(mode, network, level)
    here = Path(os.path.realpath(cwd or Path.cwd()))
    if not here.is_dir():
        raise _fail(f"--cwd {here} is not a directory", 2)
    ws = Path(os.path.realpath(workspace)) if workspace else find_project_root(here)
    _refuse_unconfined(mode, level)
    line = command[0] if len(command) == 1 else shlex.join(command)
    res = _run_sandboxed(line, cwd=here, workspace=ws, mode=mode, network=network == "on", timeout=timeout,
                         output_limit=output_limit, level=level)
    if res.output:
        sys.stdout.write(res.output if res.output.endswith("\n") else res.output + "\n")
        sys.stdout.flush()
    if os.environ.get("GHOSTLINE_SANDBOX_REPORT"):
        typer.echo(f"[sandbox level={res.level} exit={res.exit_code} timed_out={res.timed_out} "
                   f"ms={res.duration_ms}]", err=True)
    raise typer.Exit(res.exit_code)


def _check_run_options(mode: str, network: str, level: str | None) -> None:
    if mode not in SANDBOX_MODES:
        raise _fail(f"--mode must be read-only, workspace-write or full-access (got {mode!r})", 2)
    if network not in ("on", "off"):
        raise _fail(f"--network must be on or off (got {network!r})", 2)
    if level is not None and level not in SANDBOX_LEVELS:
        raise _fail(f"--level must be bubblewrap, landlock or none (got {level!r})", 2)


def _refuse_unconfined(mode: str, level: str | None) -> None:
    """The sandbox fails closed: where no OS layer works, a confined mode is refused rather than run plain,
    unless `--level none` asks for exactly that."""
    if mode == "full-access" or level is not None:
        return
    from ghostline.sandbox import check, detect_level

    if detect_level() != "none":
        return
    rep = check()
    if rep["forced"] == "none":
        why = "GHOSTLINE_SANDBOX=none turns them off"
    else:
        why = "; ".join(f"{name}: {info['detail']}" for name, info in rep["layers"].items() if name != "none")
    raise _fail(f"no OS sandbox layer works here ({why}); refusing to run the command unconfined in {mode} "
                f"mode (pass --level none to run it anyway)", 2)


def _run_sandboxed(line: str, **kw: Any) -> CommandResult:
    import asyncio

    from ghostline.sandbox import SandboxError, run_command

    try:
        return asyncio.run(run_command(line, **kw))
    except SandboxError as e:
        raise _fail(str(e), 2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


# --- agent undo | permissions | trust -------------------------------------------------------------------------
def undo_cmd(
    session: str | None = typer.Option(None, "--session", help="Session id (default: the latest here)."),
    turns: int = typer.Option(1, "--turns", help="How many turns to undo."),
    list_only: bool = typer.Option(False, "--list", help="List checkpoints instead of restoring."),
    cwd: Path | None = typer.Option(None, "--cwd", help="Workspace (default: the project root here)."),
) -> None:
    """Restore the files as they were before the last N turns of an agent session."""
    from ghostline.sandbox.checkpoints import UNDO_REF, CheckpointError, Checkpoints

    if turns < 1:
        raise _fail("--turns must be at least 1", 2)
    ws = _here_root(cwd)
    cps = Checkpoints(ws)
    try:
        if list_only:
            items = cps.list(session)
            if not items:
                typer.echo(f"no checkpoints ({cps.notice})" if cps.notice else "no checkpoints")
            for i, c in enumerate(items, 1):
                typer.echo(f"{i:>3}  {c.sha[:12]}  {c.session}  {c.label}")
            return
        cp, changed = cps.undo(session, turns)
    except CheckpointError as e:
        raise _fail(str(e), 1) from None
    typer.echo(f"restored {ws} to checkpoint {cp.sha[:12]} ({cp.label}); {len(changed)} path(s) changed")
    for p in changed[:50]:
        typer.echo(f"  {p}")
    typer.echo(f"the state before this undo is kept as {UNDO_REF} in {cps.store_path}")


def permissions_cmd(
    clear: bool = typer.Option(False, "--clear", help="Forget this project's remembered approvals."),
    show_all: bool = typer.Option(False, "--all", help="Show every project's remembered approvals."),
    cwd: Path | None = typer.Option(None, "--cwd", help="Project (default: the project root here)."),
) -> None:
    """List (or --clear) the approvals remembered with "always allow"."""
    from ghostline.sandbox.store import all_remembered, forget, remembered

    ws = _here_root(cwd)
    if clear:
        typer.echo(f"forgot {forget(ws)} remembered approval(s) for {ws}")
        return
    if show_all:
        data = all_remembered()
        if not data:
            typer.echo("no remembered approvals")
        for proj, entries in sorted(data.items()):
            typer.echo(proj)
            for e in entries:
                typer.echo(f"  allow  {e.get('rule')}  ({e.get('added', '')})")
        return
    rules = remembered(ws)
    if not rules:
        typer.echo(f"no remembered approvals for {ws}")
    for r in rules:
        typer.echo(f"allow  {r}")


def trust_cmd(
    directory: Path | None = typer.Argument(None, help="Directory to trust (default: the project root here)."),
    remove: bool = typer.Option(False, "--remove", help="Stop trusting it."),
    list_all: bool = typer.Option(False, "--list", help="List trusted directories."),
) -> None:
    """Trust a directory: its .ghostline/config.toml may then loosen the sandbox and permissions."""
    from ghostline.sandbox.store import trust, trusted_dirs, untrust

    if list_all:
        dirs = trusted_dirs()
        if not dirs:
            typer.echo("no trusted directories")
        for d in dirs:
            typer.echo(d)
        return
    target = Path(os.path.realpath(directory)) if directory else _here_root(None)
    if not target.is_dir():
        raise _fail(f"{target} is not a directory", 2)
    if remove:
        typer.echo(f"no longer trusted: {target}" if untrust(target) else f"{target} was not trusted")
        return
    trust(target)
    typer.echo(f"trusted: {target}")
