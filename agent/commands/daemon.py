"""`agent daemon ...`: serve ghost-text completions (foreground) or manage a background daemon.

Only typer and the standard library are imported here (and the daemon's file locations, which import nothing
else); the rest of the daemon package is imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ghostline.agent.commands import fail as _fail
from ghostline.agent.commands.signature import with_options
from ghostline.daemon.paths import token_path

daemon_app = typer.Typer(help="The ghost-text completion daemon (llama.cpp /infill, OpenAI /v1/completions, "
                              "/v1/ghost).", no_args_is_help=True)

# the options of `serve` and `start` (each one a field of daemon.server.process.ServeOptions)
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="A local Hugging Face checkpoint directory (FIM code model).")]
PortOpt = Annotated[int, typer.Option("--port", help="TCP port (llama.vim/llama.vscode default: 8012).")]
HostOpt = Annotated[str, typer.Option("--host", help="Bind address (loopback by default).")]
FimFormatOpt = Annotated[str | None, typer.Option(
    "--fim-format", help="FIM template: starcoder, qwen, deepseek, codellama, codestral, psm, spm "
                         "(default: detected from the tokenizer).")]
BackendOpt = Annotated[str | None, typer.Option(
    "--backend", help="URL of an OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama) to forward to "
                      "instead of a local model.")]
BackendModelOpt = Annotated[str, typer.Option(
    "--backend-model", help="Model name to ask the --backend server for.")]
DeviceOpt = Annotated[str | None, typer.Option(
    "--device", help="cuda, cuda:1, cpu (default: cuda when available).")]
NoKvReuseOpt = Annotated[bool, typer.Option("--no-kv-reuse", help="Disable KV prefix reuse across requests.")]
CacheMbOpt = Annotated[int, typer.Option("--cache-mb", help="Memory bound of the KV prefix cache (MiB).")]
DeadlineMsOpt = Annotated[float, typer.Option(
    "--deadline-ms", help="Answer from classical completions when the model takes longer than this "
                          "(0: never).")]
RepoOpt = Annotated[str | None, typer.Option(
    "--repo", help="Your repository: mined for classical completions and, with a model, its index adds "
                   "snippets for the code around the cursor to prompts.")]
NoAuthOpt = Annotated[bool, typer.Option(
    "--no-auth", help="Do not require the bearer token (not recommended).")]
NoTelemetryOpt = Annotated[bool, typer.Option(
    "--no-telemetry", help="Do not record local telemetry (latency, shown/accepted counts; it never leaves "
                           "this machine).")]


def register(app: typer.Typer) -> None:
    app.add_typer(daemon_app, name="daemon")


def _serve_options(opts: dict[str, Any]) -> Any:  # -> ServeOptions
    """ServeOptions from the command's parameters (named as its fields), with the one-line usage errors."""
    from ghostline.daemon.server.process import ServeOptions

    if not 0 < opts["port"] < 65536:
        raise _fail(f"--port must be between 1 and 65535, got {opts['port']}")
    if opts["fim_format"]:
        from ghostline.daemon.engine.fim import get_format

        try:
            get_format(opts["fim_format"])
        except ValueError as e:
            raise _fail(str(e)) from None
    return ServeOptions(**opts)


def _serve_params(
    model: ModelOpt = None, port: PortOpt = 8012, host: HostOpt = "127.0.0.1",
    fim_format: FimFormatOpt = None, backend: BackendOpt = None, backend_model: BackendModelOpt = "",
    device: DeviceOpt = None, no_kv_reuse: NoKvReuseOpt = False, cache_mb: CacheMbOpt = 1024,
    deadline_ms: DeadlineMsOpt = 0.0, repo: RepoOpt = None, no_auth: NoAuthOpt = False,
    no_telemetry: NoTelemetryOpt = False,
) -> None:
    """The options of `serve` and `start`, written once (agent/commands/signature.py)."""


with_serve_options = with_options(_serve_params, into="params")


@daemon_app.command("serve")
@with_serve_options
def serve_cmd(params: dict[str, Any] | None = None) -> None:
    """Serve completions in the foreground until Ctrl-C."""
    opts = _serve_options(params or {})
    from ghostline.daemon.server.process import DaemonError, exit_process, serve

    try:
        serve(opts, announce=lambda m: typer.echo(m, err=True))
    except DaemonError as e:
        raise _fail(str(e)) from None
    exit_process(0)  # served until Ctrl-C/SIGTERM: gone at once, without the interpreter's slow teardown


@daemon_app.command("start")
@with_serve_options
def start_cmd(params: dict[str, Any] | None = None) -> None:
    """Start the daemon in the background (pid file and log file in the user state dir)."""
    opts = _serve_options(params or {})
    from ghostline.daemon.server.process import DaemonError, start

    try:
        info = start(opts)
    except DaemonError as e:
        raise _fail(str(e)) from None
    typer.echo(f"daemon started: pid {info['pid']} on http://{info['host']}:{info['port']} "
               f"(log: {info['log_file']})")


@daemon_app.command("stop")
def stop_cmd() -> None:
    """Stop the background daemon."""
    from ghostline.daemon.server.process import stop

    res = stop()
    if not res["stopped"]:
        raise _fail(res["reason"], 1)
    typer.echo(f"daemon stopped (pid {res['pid']})")


@daemon_app.command("status")
def status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show whether a daemon is running (started with `start` or `serve`), where, where its token and log are,
    and how many requests it refused for a missing or wrong token."""
    from ghostline.daemon.server.process import status

    st = status()
    st["token_file"] = str(token_path())
    if as_json:
        typer.echo(json.dumps(st))
    elif st["running"]:
        health = "healthy" if st.get("healthy") else "not answering"
        how = "foreground `serve`" if st.get("mode") == "serve" else "background"
        typer.echo(f"running ({how}): pid {st['pid']} on http://{st['host']}:{st['port']} ({health})")
        typer.echo(f"token: {st['token_file']} (`agent daemon token` prints it)\nlog: {st['log_file']}")
        _echo_daemon_figures(st.get("daemon") or {})
    else:
        typer.echo(f"not running (log: {st['log_file']})")
    if not st["running"]:
        raise typer.Exit(1)


def _echo_daemon_figures(d: dict[str, Any]) -> None:
    if "error" in d:
        typer.echo(f"the daemon's own status: {d['error']}")
        return
    auth = d.get("auth_rejected") or {}
    refused = int(auth.get("missing", 0)) + int(auth.get("wrong", 0))
    if refused:
        typer.echo(f"refused {refused} requests without the right token (missing {auth.get('missing', 0)}, "
                   f"wrong {auth.get('wrong', 0)}): the editor's api key must be what `agent daemon token` prints")
    else:
        typer.echo("refused no requests for a missing or wrong token")
    blocked = d.get("secrets_blocked") or {}
    if blocked:
        typer.echo("suggestions cut for a secret: " + ", ".join(f"{k} {v}" for k, v in sorted(blocked.items())))
    cache = d.get("cache") or {}
    if "hits" in cache:
        typer.echo(f"result cache: {cache['hits']} hits ({cache.get('typed_through', 0)} typed through), "
                   f"{cache.get('entries', 0)} entries")


@daemon_app.command("token")
def token_cmd() -> None:
    """Print the daemon's bearer token (created on first use): the api key editors send."""
    from ghostline.daemon.server.security import load_or_create_token

    try:
        typer.echo(load_or_create_token())
    except OSError as e:
        raise _fail(f"cannot read or create the token file {token_path()}: {e.strerror or e}") from None


@daemon_app.command("editor-config")
def editor_config_cmd(
    editor: Annotated[str, typer.Argument(help="vim (llama.vim), neovim, emacs, vscode or zed.")],
    port: Annotated[int | None, typer.Option(
        "--port", help="The daemon's port (default: the running daemon's, else 8012).")] = None,
) -> None:
    """Print a ready configuration for EDITOR, with the daemon's address and token filled in."""
    from ghostline.daemon.editors import editor_config
    from ghostline.daemon.server.process import read_pid
    from ghostline.daemon.server.security import load_or_create_token

    info = read_pid() or {}
    host = str(info.get("host") or "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{host}:{port or info.get('port') or 8012}"
    try:
        load_or_create_token()  # the snippet reads the file: it must exist before the editor starts
        typer.echo(editor_config(editor, url=url, token_file=token_path()), nl=False)
    except ValueError as e:
        raise _fail(str(e)) from None
    except OSError as e:
        raise _fail(f"cannot create the token file {token_path()}: {e.strerror or e}") from None


@daemon_app.command("stats")
def stats_cmd(
    since: Annotated[str, typer.Option("--since", help="Period: 7d, 24h, 30m, 2w, or 'all'.")] = "7d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Local completion telemetry: requests, shown and acceptance rates, cancellations, KV reuse, latency
    per stage (read from the store beside the daemon's log; it never leaves this machine)."""
    from ghostline.daemon.telemetry import NoStore, format_stats, load_stats, parse_since

    try:
        since_s = parse_since(since)
    except ValueError as e:
        raise _fail(str(e)) from None
    try:
        stats = load_stats(since_s=since_s)
    except NoStore as e:
        raise _fail(str(e), 1) from None
    typer.echo(json.dumps(stats, indent=2) if as_json else format_stats(stats))


@daemon_app.command("lsp")
def lsp_cmd(
    url: Annotated[str | None, typer.Option(
        "--url", help="The daemon's address (default: the running background daemon's, else "
                      "http://127.0.0.1:8012).")] = None,
    token_file: Annotated[str | None, typer.Option(
        "--token-file", help="The daemon's bearer token file (default: the daemon's own).")] = None,
    retry_s: Annotated[float, typer.Option(
        "--retry-s", help="Seconds before an unreachable daemon is tried again (classical completions "
                          "meanwhile).")] = 10.0,
    stdio: Annotated[bool, typer.Option(
        "--stdio", help="Accepted for editors that pass it; stdio is the default.")] = False,
) -> None:
    """A language server on stdin/stdout: LSP 3.18 inline completions (ghost text) from the daemon."""
    if url is not None and not url.startswith(("http://", "https://")):
        raise _fail(f"--url must be an http:// or https:// address, got {url!r}")
    if retry_s <= 0:
        raise _fail("--retry-s must be positive")
    from ghostline.daemon.lsp.server import BridgeOptions, configure_logging, run_stdio

    configure_logging()
    opts = BridgeOptions(url=url, token_file=Path(token_file).expanduser() if token_file else None,
                         retry_s=retry_s)
    raise typer.Exit(run_stdio(opts))


if __name__ == "__main__":  # pragma: no cover
    _app = typer.Typer()
    register(_app)
    _app(sys.argv[1:])
