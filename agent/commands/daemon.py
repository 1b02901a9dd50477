"""`agent daemon ...`: serve ghost-text completions (foreground) or manage a background daemon.

Only typer and the standard library are imported here; the daemon package is imported inside the commands.
"""

from __future__ import annotations

import json
import sys

import typer
from ghostline.agent.commands import fail as _fail


def _opts(model, port, host, fim_format, backend, backend_model, device, no_kv_reuse, cache_mb, deadline_ms,
          repo, no_auth, no_telemetry=False):  # -> ServeOptions
    from ghostline.daemon.server.process import ServeOptions

    if not 0 < port < 65536:
        raise _fail(f"--port must be between 1 and 65535, got {port}")
    if fim_format:
        from ghostline.daemon.engine.fim import get_format

        try:
            get_format(fim_format)
        except ValueError as e:
            raise _fail(str(e)) from None
    return ServeOptions(model=model, port=port, host=host, fim_format=fim_format, backend=backend,
                        backend_model=backend_model, device=device, no_kv_reuse=no_kv_reuse, cache_mb=cache_mb,
                        deadline_ms=deadline_ms, repo=repo, no_auth=no_auth, no_telemetry=no_telemetry)


def register(app: typer.Typer) -> None:
    d = typer.Typer(help="The ghost-text completion daemon (llama.cpp /infill, OpenAI /v1/completions, /v1/ghost).",
                    no_args_is_help=True)

    model_opt = typer.Option(None, "--model", help="A local Hugging Face checkpoint directory (FIM code model).")
    port_opt = typer.Option(8012, "--port", help="TCP port (llama.vim/llama.vscode default: 8012).")
    host_opt = typer.Option("127.0.0.1", "--host", help="Bind address (loopback by default).")
    fim_opt = typer.Option(None, "--fim-format", help="FIM template: starcoder, qwen, deepseek, codellama, codestral, "
                                                      "psm, spm (default: detected from the tokenizer).")
    backend_opt = typer.Option(None, "--backend", help="URL of an OpenAI-compatible server (vLLM, SGLang, llama.cpp, "
                                                       "Ollama) to forward to instead of a local model.")
    backend_model_opt = typer.Option("", "--backend-model", help="Model name to ask the --backend server for.")
    device_opt = typer.Option(None, "--device", help="cuda, cuda:1, cpu (default: cuda when available).")
    nokv_opt = typer.Option(False, "--no-kv-reuse", help="Disable KV prefix reuse across requests.")
    cache_opt = typer.Option(1024, "--cache-mb", help="Memory bound of the KV prefix cache (MiB).")
    deadline_opt = typer.Option(0.0, "--deadline-ms", help="Answer from classical completions when the model takes "
                                                            "longer than this (0: never).")
    repo_opt = typer.Option(None, "--repo", help="Your repository: mined for classical completions and, with a model, "
                                                 "its index adds snippets for the code around the cursor to prompts.")
    noauth_opt = typer.Option(False, "--no-auth", help="Do not require the bearer token (not recommended).")
    notel_opt = typer.Option(False, "--no-telemetry", help="Do not record local telemetry (latency, shown/accepted "
                                                           "counts; it never leaves this machine).")

    @d.command("serve")
    def serve_cmd(
        model: str | None = model_opt, port: int = port_opt, host: str = host_opt, fim_format: str | None = fim_opt,
        backend: str | None = backend_opt, backend_model: str = backend_model_opt, device: str | None = device_opt,
        no_kv_reuse: bool = nokv_opt, cache_mb: int = cache_opt, deadline_ms: float = deadline_opt,
        repo: str | None = repo_opt, no_auth: bool = noauth_opt, no_telemetry: bool = notel_opt,
    ) -> None:
        """Serve completions in the foreground until Ctrl-C."""
        from ghostline.daemon.server.process import DaemonError, serve

        opts = _opts(model, port, host, fim_format, backend, backend_model, device, no_kv_reuse, cache_mb,
                     deadline_ms, repo, no_auth, no_telemetry)
        try:
            serve(opts, announce=lambda m: typer.echo(m, err=True))
        except DaemonError as e:
            raise _fail(str(e)) from None

    @d.command("start")
    def start_cmd(
        model: str | None = model_opt, port: int = port_opt, host: str = host_opt, fim_format: str | None = fim_opt,
        backend: str | None = backend_opt, backend_model: str = backend_model_opt, device: str | None = device_opt,
        no_kv_reuse: bool = nokv_opt, cache_mb: int = cache_opt, deadline_ms: float = deadline_opt,
        repo: str | None = repo_opt, no_auth: bool = noauth_opt, no_telemetry: bool = notel_opt,
    ) -> None:
        """Start the daemon in the background (pid file and log file in the user state dir)."""
        from ghostline.daemon.server.process import DaemonError, start

        opts = _opts(model, port, host, fim_format, backend, backend_model, device, no_kv_reuse, cache_mb,
                     deadline_ms, repo, no_auth, no_telemetry)
        try:
            info = start(opts)
        except DaemonError as e:
            raise _fail(str(e)) from None
        typer.echo(f"daemon started: pid {info['pid']} on http://{info['host']}:{info['port']} (log: {info['log_file']})")

    @d.command("stop")
    def stop_cmd() -> None:
        """Stop the background daemon."""
        from ghostline.daemon.server.process import stop

        res = stop()
        if not res["stopped"]:
            raise _fail(res["reason"], 1)
        typer.echo(f"daemon stopped (pid {res['pid']})")

    @d.command("status")
    def status_cmd(as_json: bool = typer.Option(False, "--json", help="Print the status as JSON.")) -> None:
        """Show whether a background daemon is running, where, and where its token and log are."""
        from ghostline.daemon.server.process import status
        from ghostline.daemon.server.security import token_path

        st = status()
        st["token_file"] = str(token_path())
        if as_json:
            typer.echo(json.dumps(st))
        elif st["running"]:
            health = "healthy" if st.get("healthy") else "not answering"
            typer.echo(f"running: pid {st['pid']} on http://{st['host']}:{st['port']} ({health})")
            typer.echo(f"token: {st['token_file']}\nlog: {st['log_file']}")
        else:
            typer.echo(f"not running (log: {st['log_file']})")
        if not st["running"]:
            raise typer.Exit(1)

    @d.command("stats")
    def stats_cmd(
        since: str = typer.Option("7d", "--since", help="Period: 7d, 24h, 30m, 2w, or 'all'."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
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

    @d.command("lsp")
    def lsp_cmd(
        url: str | None = typer.Option(None, "--url", help="The daemon's address (default: the running background "
                                                          "daemon's, else http://127.0.0.1:8012)."),
        token_file: str | None = typer.Option(None, "--token-file", help="The daemon's bearer token file (default: "
                                                                         "the daemon's own)."),
        retry_s: float = typer.Option(10.0, "--retry-s", help="Seconds before an unreachable daemon is tried again "
                                                              "(classical completions meanwhile)."),
        stdio: bool = typer.Option(False, "--stdio", help="Accepted for editors that pass it; stdio is the default."),
    ) -> None:
        """A language server on stdin/stdout: LSP 3.18 inline completions (ghost text) from the daemon."""
        from pathlib import Path

        if url is not None and not url.startswith(("http://", "https://")):
            raise _fail(f"--url must be an http:// or https:// address, got {url!r}")
        if retry_s <= 0:
            raise _fail("--retry-s must be positive")
        from ghostline.daemon.lsp.server import BridgeOptions, configure_logging, run_stdio

        configure_logging()
        opts = BridgeOptions(url=url, token_file=Path(token_file).expanduser() if token_file else None,
                             retry_s=retry_s)
        raise typer.Exit(run_stdio(opts))

    app.add_typer(d, name="daemon")


if __name__ == "__main__":  # pragma: no cover
    _app = typer.Typer()
    register(_app)
    _app(sys.argv[1:])
