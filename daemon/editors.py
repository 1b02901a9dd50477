"""Ready-to-paste editor configurations for the daemon (`agent daemon editor-config EDITOR`): the daemon's address
and its token (or the token file) filled in.

* vim: llama.vim over llama.cpp's /infill (FIM) and /v1/chat/completions (instruction mode); the api key is read
  from the token file when Vim starts, so it is never pasted into a config.
* neovim (0.12 or newer: `vim.lsp.inline_completion`), emacs (lsp-mode's `lsp-inline-completion-mode`), vscode
  (vscode-languageclient 11, where inline completion is a standard feature): the LSP bridge, `agent daemon lsp`,
  which reads the token file itself.
* zed: its OpenAI-compatible edit-prediction provider on /v1/completions; Zed takes the key from the
  ZED_OPEN_AI_COMPATIBLE_EDIT_PREDICTION_API_KEY environment variable.

Helix has no inline completion yet, so there is no configuration for it.
"""

from __future__ import annotations

from pathlib import Path

EDITORS = ("vim", "neovim", "emacs", "vscode", "zed")

_VIM = """\
" ~/.vimrc (llama.vim: https://github.com/ggml-org/llama.vim)
let g:llama_config = {
    \\ 'endpoint_fim':  '{url}/infill',
    \\ 'endpoint_inst': '{url}/v1/chat/completions',
    \\ 'api_key':       readfile(expand('{token_file}'))[0],
    \\ }
"""

_NEOVIM = """\
-- init.lua, Neovim 0.12 or newer (vim.lsp.inline_completion; 0.11 has no inline completion)
vim.lsp.config('ghostline', {{
  cmd = {{ 'agent', 'daemon', 'lsp', '--url', '{url}', '--token-file', '{token_file}' }},
  root_markers = {{ '.git' }},
  filetypes = {{ 'python', 'lua', 'javascript', 'typescript', 'go', 'rust', 'c', 'cpp', 'java', 'sh' }},
}})
vim.lsp.enable('ghostline')
vim.lsp.inline_completion.enable()
-- Tab accepts the ghost text (and is a Tab when there is none)
vim.keymap.set('i', '<Tab>', function()
  if not vim.lsp.inline_completion.get() then return '<Tab>' end
end, {{ expr = true, desc = 'accept the inline completion' }})
"""

_EMACS = """\
;; init.el, lsp-mode with inline completion (lsp-inline-completion-mode)
(with-eval-after-load 'lsp-mode
  (lsp-register-client
   (make-lsp-client
    :new-connection (lsp-stdio-connection
                     '("agent" "daemon" "lsp" "--url" "{url}" "--token-file" "{token_file}"))
    :activation-fn (lsp-activate-on "python" "javascript" "typescript" "go" "rust" "c" "cpp")
    :add-on? t
    :server-id 'ghostline)))
(add-hook 'lsp-mode-hook #'lsp-inline-completion-mode)
"""

_VSCODE = """\
// extension.ts of a small extension (vscode-languageclient 11: inline completion is a standard feature)
import {{ LanguageClient }} from 'vscode-languageclient/node';

export async function activate() {{
  const client = new LanguageClient('ghostline', 'Ghostline',
    {{ command: 'agent', args: ['daemon', 'lsp', '--url', '{url}', '--token-file', '{token_file}'] }},
    {{ documentSelector: [{{ scheme: 'file' }}] }});
  await client.start();
}}
"""

_ZED = """\
// ~/.config/zed/settings.json (edit predictions from the daemon's OpenAI-compatible /v1/completions)
{{
  "edit_predictions": {{
    "provider": "open_ai_compatible_api",
    "open_ai_compatible_api": {{
      "api_url": "{url}/v1/completions",
      "model": "{model}",
      "prompt_format": "infer",
      "max_output_tokens": 64
    }}
  }}
}}
// and start Zed with the token as its key:
//   ZED_OPEN_AI_COMPATIBLE_EDIT_PREDICTION_API_KEY="$(agent daemon token)" zed
"""

_TEMPLATES = {"vim": _VIM, "neovim": _NEOVIM, "emacs": _EMACS, "vscode": _VSCODE, "zed": _ZED}


def editor_config(editor: str, *, url: str, token_file: Path, model: str = "ghostline") -> str:
    """The snippet for `editor` (one of EDITORS); ValueError for another name."""
    template = _TEMPLATES.get(editor.lower())
    if template is None:
        helix = " (Helix has no inline completion yet)" if editor.lower() == "helix" else ""
        raise ValueError(f"unknown editor {editor!r}{helix}; one of: {', '.join(EDITORS)}")
    if editor.lower() == "vim":
        return template.replace("{url}", url).replace("{token_file}", str(token_file))
    return template.format(url=url, token_file=str(token_file), model=model)
