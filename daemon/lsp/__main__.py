"""`python -m ghostline.daemon.lsp [--url URL] [--token-file PATH]`: the LSP bridge on stdin/stdout."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ghostline-lsp", description="LSP inline completions from the ghostline daemon "
                                "(stdio).")
    p.add_argument("--url", default=None, help="the daemon's address (default: the running background daemon's, "
                                               "else http://127.0.0.1:8012)")
    p.add_argument("--token-file", default=None, help="the daemon's bearer token file (default: the daemon's)")
    p.add_argument("--retry-s", type=float, default=10.0, help="seconds before trying an unreachable daemon again")
    p.add_argument("--stdio", action="store_true", help="accepted for editors that pass it (stdio is the default)")
    p.add_argument("--log-level", default=os.environ.get("GHOSTLINE_LSP_LOG", "WARNING"),
                   help="log level of the stderr log (default: WARNING)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.url is not None and not a.url.startswith(("http://", "https://")):
        parser.error(f"--url must be an http:// or https:// address, got {a.url!r}")
    if a.retry_s <= 0:
        parser.error("--retry-s must be positive")
    from ghostline.daemon.lsp.server import BridgeOptions, configure_logging, run_stdio

    configure_logging(a.log_level)

    opts = BridgeOptions(url=a.url, token_file=Path(a.token_file).expanduser() if a.token_file else None,
                         retry_s=a.retry_s)
    return run_stdio(opts)


if __name__ == "__main__":
    sys.exit(main())
