"""Ghostline's completion daemon: fill-in-the-middle ghost text for editors.

* `daemon.engine` — FIM prompt formats, the in-process Hugging Face model with KV prefix reuse, cancellation,
  time bounds and streaming (one worker thread owns the model), a remote OpenAI-compatible backend, and the
  classical (model-free) completer.
* `daemon.server` — the aiohttp HTTP API: llama.cpp-compatible /infill (llama.vim, llama.vscode), OpenAI
  /v1/completions, native /v1/ghost; bearer token, loopback Host check, /metrics; background process control.
* `daemon.lsp` — the LSP bridge (`agent daemon lsp`, stdio, pygls): `textDocument/inlineCompletion` from the
  editor's open buffers through the daemon's /infill, classical completions while the daemon is down.

Every suggestion passes the filters and the credential scanner (`daemon.engine.guard`); a per-document result
cache serves typed-through suggestions (`daemon.engine.resultcache`). Run with `agent daemon serve --model PATH` or
`python -m ghostline.daemon serve --model PATH`; `agent daemon editor-config vim|neovim|emacs|vscode|zed` prints an
editor's configuration (`daemon.editors`).
This package never imports `agent`; torch/transformers are imported only when a model is loaded.
"""
