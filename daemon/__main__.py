"""`python -m ghostline.daemon serve ...`: the daemon's own entry point (used by `agent daemon start` for the background
process, so the daemon never imports the agent package)."""

from __future__ import annotations

import argparse
import signal
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ghostline-daemon")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve completions in the foreground")
    s.add_argument("--model", default=None)
    s.add_argument("--port", type=int, default=8012)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--fim-format", default=None)
    s.add_argument("--backend", default=None)
    s.add_argument("--backend-model", default="")
    s.add_argument("--device", default=None)
    s.add_argument("--no-kv-reuse", action="store_true")
    s.add_argument("--cache-mb", type=int, default=1024)
    s.add_argument("--deadline-ms", type=float, default=0.0)
    s.add_argument("--repo", default=None)
    s.add_argument("--no-auth", action="store_true")
    s.add_argument("--no-telemetry", action="store_true", help="do not record local telemetry")
    s.add_argument("--write-pid", action="store_true")
    return p


def _on_term(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from ghostline.daemon.server.process import DaemonError, ServeOptions, serve

    a = build_parser().parse_args(argv)
    opts = ServeOptions(model=a.model, port=a.port, host=a.host, fim_format=a.fim_format, backend=a.backend,
                        backend_model=a.backend_model, device=a.device, no_kv_reuse=a.no_kv_reuse,
                        cache_mb=a.cache_mb, deadline_ms=a.deadline_ms, repo=a.repo, no_auth=a.no_auth,
                        no_telemetry=a.no_telemetry)
    signal.signal(signal.SIGTERM, _on_term)
    try:
        serve(opts, write_pid=a.write_pid, announce=lambda m: print(m, flush=True))
    except DaemonError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from ghostline.daemon.server.process import exit_process

    exit_process(main())
