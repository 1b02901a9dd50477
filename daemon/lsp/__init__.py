"""The LSP bridge: `agent daemon lsp` (or `python -m ghostline.daemon.lsp`), a stdio language server that gives editors
with LSP 3.18 inline completion (VS Code, Neovim 0.11+, Helix, Zed, ...) the daemon's ghost text.

Public surface: `BridgeOptions`, `create_server(options)`, `run_stdio(options) -> exit status`,
`default_daemon_url()`, and the buffer model `Document`/`DocumentStore`. pygls and lsprotocol are imported
only when this package is.
"""

from ghostline.daemon.lsp.documents import Document, DocumentStore
from ghostline.daemon.lsp.server import (
           BridgeOptions,
           create_server,
           default_daemon_url,
           run_stdio,
)

__all__ = ["BridgeOptions", "Document", "DocumentStore", "create_server", "default_daemon_url", "run_stdio"]
