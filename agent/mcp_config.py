"""Where MCP servers are configured, in the formats users already have, and `agent mcp add/remove` writing them.

Scopes, in the order a name found twice is taken (local wins):
    local    the user's config.toml, `[projects."<root>".mcp_servers.NAME]`: theirs, for this project only
    project  `<root>/.mcp.json` (Claude Code's format) and `<root>/.ghostline/config.toml`'s `[mcp_servers]`
    user     the user's config.toml, `[mcp_servers.NAME]` (Codex's keys): theirs, in every project
`.mcp.json` is `{"mcpServers": {NAME: {"command", "args", "env"} | {"type": "http", "url", "headers"}}}`; strings
in either format may use `${VAR}` and `${VAR:-default}`. A project's servers run code its author chose: they
are marked origin "project" and start only in a trusted directory or once the user approved them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostline.agent.config import read_toml
from ghostline.agent.providers.base import ConfigError
from ghostline.dirs import config_dir
from ghostline.tools.mcp import DEFAULT_STARTUP_TIMEOUT_S, DEFAULT_TOOL_TIMEOUT_S, ServerSpec

SCOPES = ("local", "project", "user")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


@dataclass
class McpServers:
    """The servers configured for a project, and one line per entry that could not be used."""

    specs: list[ServerSpec] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    scopes: dict[str, str] = field(default_factory=dict)  # server name -> the scope it came from

    def by_origin(self, origin: str) -> list[ServerSpec]:
        return [s for s in self.specs if s.origin == origin]


def user_config_file() -> Path:
    return config_dir() / "config.toml"


def mcp_json_file(root: Path) -> Path:
    return root / ".mcp.json"


def load_servers(root: Path, *, user_file: Path | None = None) -> McpServers:
    """Every enabled server configured for the project at `root` (nothing is started here)."""
    user_file = user_file or user_config_file()
    out = McpServers()
    user = _readable(lambda: read_toml(user_file), out.problems)
    project_toml = root / ".ghostline" / "config.toml"
    sources: list[tuple[str, str, dict[str, Any], str]] = [
        ("local", "user", _local_table(user, root), f"{user_file} [projects.\"{root}\"]"),
        ("project", "project", _readable(lambda: _read_mcp_json(mcp_json_file(root)), out.problems),
         str(mcp_json_file(root))),
        ("project", "project", _table(_readable(lambda: read_toml(project_toml), out.problems).get("mcp_servers")),
         str(project_toml)),
        ("user", "user", _table(user.get("mcp_servers")), str(user_file)),
    ]
    for scope, origin, table, source in sources:
        for name, entry in table.items():
            if name in out.scopes:
                continue
            try:
                spec = server_from_entry(name, entry, origin=origin, source=source)
            except ValueError as exc:
                out.problems.append(f"MCP server {name!r} in {source}: {exc}")
                continue
            if spec is not None:
                out.specs.append(spec)
                out.scopes[name] = scope
    return out


def _readable(read: Callable[[], dict[str, Any]], problems: list[str]) -> dict[str, Any]:
    """A config file's content; a file that cannot be read costs its servers and one line, not the run."""
    try:
        return read()
    except ConfigError as exc:
        problems.append(f"MCP servers skipped: {exc}")
        return {}


def server_from_entry(name: str, entry: Any, *, origin: str, source: str) -> ServerSpec | None:
    """One entry of either format as a ServerSpec (None when `enabled = false`). Raises ValueError."""
    if not isinstance(entry, dict):
        raise ValueError("expected a table of settings")
    if not _NAME.match(name):
        raise ValueError("a server name may use letters, digits, '_', '-' and '.' (at most 40)")
    if entry.get("enabled", True) is False or entry.get("disabled") is True:
        return None
    kind = str(entry.get("type") or ("http" if entry.get("url") else "stdio"))
    if kind not in ("stdio", "http", "streamable-http", "streamable_http"):
        raise ValueError(f"transport {kind!r} is not supported (stdio or http)")
    common = {"name": name, "origin": origin, "source": source,
              "startup_timeout_s": _seconds(entry, "startup_timeout", DEFAULT_STARTUP_TIMEOUT_S),
              "tool_timeout_s": _seconds(entry, "tool_timeout", DEFAULT_TOOL_TIMEOUT_S)}
    if kind == "stdio":
        command = expand(_string(entry, "command"))
        if not command:
            raise ValueError("needs a `command` (or a `url`)")
        args = entry.get("args") or []
        if not isinstance(args, list):
            raise ValueError("`args` must be a list of strings")
        cwd = entry.get("cwd")
        return ServerSpec(command=command, args=tuple(expand(str(a)) for a in args),
                          env={str(k): expand(str(v)) for k, v in _mapping(entry, "env").items()},
                          cwd=expand(str(cwd)) if cwd else None, **common)
    return ServerSpec(url=expand(_string(entry, "url")), headers=_headers(entry), **common)


def _headers(entry: dict[str, Any]) -> dict[str, str]:
    headers = {str(k): expand(str(v)) for k, v in {**_mapping(entry, "headers"),
                                                    **_mapping(entry, "http_headers")}.items()}
    for header, var in _mapping(entry, "env_http_headers").items():
        if os.environ.get(str(var)):
            headers[str(header)] = os.environ[str(var)]
    token_var = entry.get("bearer_token_env_var")
    if token_var:
        token = os.environ.get(str(token_var))
        if not token:
            raise ValueError(f"bearer_token_env_var names {token_var}, which is not set")
        headers["Authorization"] = f"Bearer {token}"
    return headers


def expand(text: str) -> str:
    """`${VAR}` and `${VAR:-default}` from the environment. Raises ValueError for an unset VAR without default."""
    def one(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value is not None and (value or m.group(2) is None):
            return value
        if m.group(2) is not None:
            return m.group(2)
        raise ValueError(f"${{{m.group(1)}}} is not set")

    return _VAR.sub(one, text)


def _seconds(entry: dict[str, Any], key: str, default: float) -> float:
    for name in (f"{key}_s", f"{key}_sec"):
        if name in entry:
            value = entry[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"`{name}` must be a positive number of seconds")
            return float(value)
    return default


def _string(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"`{key}` must be a string")
    return value or ""


def _mapping(entry: dict[str, Any], key: str) -> dict[str, Any]:
    value = entry.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"`{key}` must be a table of strings")
    return value


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _local_table(user: dict[str, Any], root: Path) -> dict[str, Any]:
    projects = _table(user.get("projects"))
    return _table(_table(projects.get(str(root))).get("mcp_servers"))


def _read_mcp_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    return servers if isinstance(servers, dict) else {}


# --- writing (agent mcp add/remove) -------------------------------------------------------------------------

def add_server(scope: str, name: str, entry: dict[str, Any], root: Path, *, user_file: Path | None = None) -> Path:
    """Write one server's entry to the scope's file; returns the file. Raises ValueError (bad entry/name)."""
    server_from_entry(name, entry, origin="user", source="")  # validate before writing anything
    if scope == "project":
        path = mcp_json_file(root)
        data = _json_document(path)
        data.setdefault("mcpServers", {})[name] = entry
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path
    path = user_file or user_config_file()
    doc = _toml_document(path)
    _servers_table(doc, scope, root, create=True)[name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dump_toml(doc), encoding="utf-8")
    return path


def remove_server(scope: str, name: str, root: Path, *, user_file: Path | None = None) -> bool:
    if scope == "project":
        path = mcp_json_file(root)
        data = _json_document(path)
        if name not in data.get("mcpServers", {}):
            return False
        del data["mcpServers"][name]
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return True
    path = user_file or user_config_file()
    doc = _toml_document(path)
    table = _servers_table(doc, scope, root, create=False)
    if table is None or name not in table:
        return False
    del table[name]
    path.write_text(_dump_toml(doc), encoding="utf-8")
    return True


def _json_document(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"mcpServers": {}}
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return data


def _toml_document(path: Path) -> Any:
    import tomlkit  # keeps the user's comments and layout

    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return tomlkit.document()
    except Exception as exc:  # noqa: BLE001 - tomlkit's parse errors have no common base
        raise ConfigError(f"cannot read config {path}: {exc}") from None


def _dump_toml(doc: Any) -> str:
    import tomlkit

    return tomlkit.dumps(doc)


def _servers_table(doc: Any, scope: str, root: Path, *, create: bool) -> Any:
    import tomlkit

    def child(table: Any, key: str) -> Any:
        if key not in table:
            if not create:
                return None
            table[key] = tomlkit.table(is_super_table=True)
        return table[key]

    if scope == "user":
        return child(doc, "mcp_servers")
    projects = child(doc, "projects")
    project = child(projects, str(root)) if projects is not None else None
    return child(project, "mcp_servers") if project is not None else None
