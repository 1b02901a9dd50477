"""`agent acp` driven as an editor would: with the SDK's client side, and with a raw NDJSON JSON-RPC client."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from acp import spawn_agent_process, text_block
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    CreateTerminalResponse,
    EnvVariable,
    FileSystemCapabilities,
    McpServerStdio,
    ReadTextFileResponse,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    WaitForTerminalExitResponse,
    WriteTextFileResponse,
)

from tests.agent.test_e2e import AGENT, MODELS, agent_env, make_repo
from tests.fakeserver import FakeModelServer, reply

MODEL = MODELS["anthropic"]
ROOT = Path(__file__).resolve().parents[2]


def acp_env(tmp_path: Path, srv: FakeModelServer, *, model: bool = True) -> dict[str, str]:
    env = agent_env(tmp_path, srv, "anthropic")
    env.pop("CI")  # an editor's agent is interactive: approvals are asked
    if model:
        env["GHOSTLINE_MODEL"] = MODEL
    return env


class Editor:
    """The SDK client side: records updates, answers permission requests from a script, keeps the files."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.updates: list[Any] = []
        self.asked: list[Any] = []
        self.writes: list[str] = []

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append(update)

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **_: Any):
        self.asked.append((tool_call, [o.option_id for o in options]))
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=self.answers.pop(0)))

    async def read_text_file(self, session_id: str, path: str, line=None, limit=None, **_: Any):
        return ReadTextFileResponse(content=Path(path).read_text())

    async def write_text_file(self, session_id: str, path: str, content: str, **_: Any):
        self.writes.append(path)
        Path(path).write_text(content)
        return WriteTextFileResponse()

    def on_connect(self, conn: Any) -> None:
        pass

    def of(self, kind: str) -> list[Any]:
        return [u for u in self.updates if u.session_update == kind]


def edit_test_cycle() -> list[Any]:
    return [
        reply("Reading it.", [("read", {"path": "calc.py"}), ("read", {"path": "test_calc.py"})]),
        reply("", [("edit", {"path": "calc.py", "old_string": "def old_name(", "new_string": "def new_name("}),
                   ("edit", {"path": "test_calc.py", "old_string": "old_name", "new_string": "new_name",
                             "replace_all": True})]),
        reply("", [("bash", {"command": "python3 test_calc.py"})]),
        reply("Renamed; the tests pass."),
    ]


async def test_an_editor_drives_an_edit_test_cycle_then_loads_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    caps = ClientCapabilities(fs=FileSystemCapabilities(read_text_file=True, write_text_file=True))
    with FakeModelServer(edit_test_cycle()) as srv:
        env = acp_env(tmp_path, srv)
        editor = Editor(["allow-always", "allow-once"])
        async with spawn_agent_process(editor, AGENT, "acp", env=env, cwd=repo) as (conn, _):
            init = await conn.initialize(protocol_version=1, client_capabilities=caps)
            assert init.agent_capabilities.load_session and init.agent_capabilities.mcp_capabilities.http
            session = await conn.new_session(cwd=str(repo), mcp_servers=[])
            assert session.modes.current_mode_id == "ask"
            done = await conn.prompt(session_id=session.session_id, prompt=[text_block("rename old_name")])
    assert done.stop_reason == "end_turn"
    calls = editor.of("tool_call")
    assert [c.kind for c in calls] == ["read", "read", "edit", "edit", "execute"]
    assert calls[2].locations[0].path == str(repo / "calc.py")
    # One question for the first edit ("always" covers the second: the same rule the TUI stores), one for bash.
    assert [a[0].title for a in editor.asked] == ["edit calc.py", "bash python3 test_calc.py"]
    assert editor.asked[0][1] == ["allow-once", "allow-always", "reject"]
    approvals = json.loads((tmp_path / "data" / "ghostline" / "approvals.json").read_text())
    assert [e["rule"] for e in approvals[str(repo)]] == ["edit"]
    results = {u.tool_call_id: u for u in editor.of("tool_call_update") if u.status != "in_progress"}
    diff = results[calls[2].tool_call_id].content[0]
    assert diff.type == "diff" and diff.old_text.startswith("def old_name") and diff.new_text.startswith("def new_")
    assert "1 passed" in results[calls[4].tool_call_id].content[0].content.text
    assert all(results[c.tool_call_id].status == "completed" for c in calls)
    assert sorted(editor.writes) == [str(repo / "calc.py"), str(repo / "test_calc.py")]
    text = "".join(u.content.text for u in editor.of("agent_message_chunk"))
    assert "Renamed; the tests pass." in text

    replayed = Editor([])
    with FakeModelServer([]) as srv:
        async with spawn_agent_process(replayed, AGENT, "acp", env=acp_env(tmp_path, srv), cwd=repo) as (conn, _):
            await conn.initialize(protocol_version=1)
            await conn.load_session(cwd=str(repo), session_id=session.session_id, mcp_servers=[])
    assert replayed.of("user_message_chunk")[0].content.text == "rename old_name"
    assert [c.kind for c in replayed.of("tool_call")] == ["read", "read", "edit", "edit", "execute"]
    assert "Renamed; the tests pass." in "".join(u.content.text for u in replayed.of("agent_message_chunk"))


class RawClient:
    """Newline-delimited JSON-RPC over the agent's stdio, nothing else."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([AGENT, "acp"], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.inbox.put(json.loads(line))

    def send(self, message: dict[str, Any] | str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> int:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    def expect(self, match: Any, seen: list[dict[str, Any]] | None = None, timeout: float = 60) -> dict[str, Any]:
        """The next message `match` accepts (the others are kept in `seen`)."""
        while True:
            message = self.inbox.get(timeout=timeout)
            if match(message):
                return message
            if seen is not None:
                seen.append(message)

    def answer(self, request_id: int, result: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "result": result})

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        rid = self.request(method, params)
        return self.expect(lambda m: m.get("id") == rid and "method" not in m)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def raw(tmp_path: Path):
    clients: list[RawClient] = []

    def start(srv: FakeModelServer, **kw: Any) -> RawClient:
        client = RawClient(make_repo(tmp_path), acp_env(tmp_path, srv, **kw))
        clients.append(client)
        return client

    yield start
    for c in clients:
        c.close()


def test_errors_are_json_rpc_errors_and_the_agent_lives(raw, tmp_path: Path) -> None:
    with FakeModelServer([]) as srv:
        client = raw(srv, model=False)
        assert client.call("initialize", {"protocolVersion": 1})["result"]["protocolVersion"] == 1
        client.send("{this is not json")  # the SDK logs and skips a line it cannot parse (no id to answer)
        assert client.call("no/such_method", {})["error"]["code"] == -32601
        unknown = client.call("session/prompt", {"sessionId": "nope", "prompt": [{"type": "text", "text": "hi"}]})
        assert unknown["error"]["code"] == -32602 and "no session 'nope'" in unknown["error"]["data"]["message"]
        no_model = client.call("session/new", {"cwd": str(tmp_path / "repo"), "mcpServers": []})
        assert no_model["error"]["code"] == -32000 and "model" in no_model["error"]["message"]
        relative = client.call("session/new", {"cwd": "repo", "mcpServers": []})
        assert relative["error"]["code"] == -32602
        assert client.call("initialize", {"protocolVersion": 1})["result"]  # still answering
        assert client.proc.poll() is None


def test_permission_then_cancel_mid_command(raw, tmp_path: Path) -> None:
    script = [reply("", [("bash", {"command": "echo started; sleep 60; echo never"})]), reply("after cancel")]
    with FakeModelServer(script) as srv:
        client = raw(srv)
        client.call("initialize", {"protocolVersion": 1, "clientCapabilities": {}})
        sid = client.call("session/new", {"cwd": str(tmp_path / "repo"), "mcpServers": []})["result"]["sessionId"]
        assert client.call("session/set_mode", {"sessionId": sid, "modeId": "auto"})["result"] is not None
        bad_mode = client.call("session/set_mode", {"sessionId": sid, "modeId": "yolo"})
        assert bad_mode["error"]["code"] == -32602
        prompt_id = client.request("session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "go"}]})
        seen: list[dict[str, Any]] = []

        def progress(m: dict[str, Any]) -> bool:
            if m.get("method") == "session/request_permission":  # no OS sandbox here: auto still asks
                client.answer(m["id"], {"outcome": {"outcome": "selected", "optionId": "allow-once"}})
                return False
            update = m.get("params", {}).get("update", {})
            return update.get("status") == "in_progress" and "started" in json.dumps(update.get("content"))

        client.expect(progress, seen)
        client.send({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": sid}})
        done = client.expect(lambda m: m.get("id") == prompt_id)
        assert done["result"]["stopReason"] == "cancelled"
        assert any(m.get("params", {}).get("update", {}).get("sessionUpdate") == "tool_call" for m in seen)
        again = client.call("session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "and now?"}]})
        assert again["result"]["stopReason"] == "end_turn"
        sent = srv.bodies()[-1]["messages"]
    assert "interrupted" in json.dumps(sent)  # the model is told the command was cut short


class TerminalEditor(Editor):
    """An editor that also lends its terminal (terminal/*): commands run here, in the test."""

    def __init__(self, answers: list[str]) -> None:
        super().__init__(answers)
        self.terminals: dict[str, Any] = {}
        self.commands: list[list[str]] = []

    async def create_terminal(self, session_id: str, command: str, args=None, env=None, cwd=None, **_: Any):
        self.commands.append([command, *(args or [])])
        proc = await asyncio.create_subprocess_exec(command, *(args or []), cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        tid = f"term-{len(self.terminals)}"
        self.terminals[tid] = proc
        return CreateTerminalResponse(terminal_id=tid)

    async def wait_for_terminal_exit(self, session_id: str, terminal_id: str, **_: Any):
        code = await self.terminals[terminal_id].wait()
        return WaitForTerminalExitResponse(exit_code=code)

    async def terminal_output(self, session_id: str, terminal_id: str, **_: Any):
        proc = self.terminals[terminal_id]
        if proc.returncode is None:
            return TerminalOutputResponse(output="", truncated=False)
        if not hasattr(proc, "output"):
            proc.output = (await proc.stdout.read()).decode()
        return TerminalOutputResponse(output=proc.output, truncated=False,
                                      exit_status=TerminalExitStatus(exit_code=proc.returncode))

    async def release_terminal(self, session_id: str, terminal_id: str, **_: Any):
        return None

    async def kill_terminal(self, session_id: str, terminal_id: str, **_: Any):
        self.terminals[terminal_id].kill()


async def test_editor_mcp_servers_and_terminal(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    script = [reply("", [("mcp__t__echo", {"text": "from the editor's server"})]),
              reply("", [("bash", {"command": "touch made && echo in-the-editor-terminal"})]), reply("ok")]
    server = McpServerStdio(name="t", command=sys.executable, args=["-m", "tests.support.mcp_server"],
                            env=[EnvVariable(name="PYTHONPATH", value=str(ROOT))])
    with FakeModelServer(script) as srv:
        env = acp_env(tmp_path, srv)
        (tmp_path / "config" / "ghostline" / "config.toml").write_text('[acp]\nterminal = "editor"\n')
        editor = TerminalEditor(["allow-once"])
        async with spawn_agent_process(editor, AGENT, "acp", env=env, cwd=repo) as (conn, _):
            await conn.initialize(protocol_version=1, client_capabilities=ClientCapabilities(terminal=True))
            session = await conn.new_session(cwd=str(repo), mcp_servers=[server])
            done = await conn.prompt(session_id=session.session_id, prompt=[text_block("go")])
    assert done.stop_reason == "end_turn"
    calls = editor.of("tool_call")
    assert [(c.kind, c.title) for c in calls] == [("read", 't: echo {"text": "from the editor\'s server"}'),
                                                  ("execute", "bash touch made && echo in-the-editor-terminal")]
    results = [u for u in editor.of("tool_call_update") if u.status == "completed"]
    assert results[0].content[0].content.text == "from the editor's server"
    assert editor.commands == [["bash", "-c", "touch made && echo in-the-editor-terminal"]]
    assert (repo / "made").exists()
    assert "in-the-editor-terminal" in results[1].content[0].content.text
    # The editor's terminal confines nothing: a command that may write is asked about (auto would ask too).
    assert [a[0].title for a in editor.asked] == ["bash touch made && echo in-the-editor-terminal"]
