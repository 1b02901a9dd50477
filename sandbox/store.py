"""Per-user stores under the user data dir: remembered approvals (per project) and trusted directories."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ghostline.dirs import data_dir
from ghostline.files import replace_file
from ghostline.sandbox.rules import Rule


def _approvals_file() -> Path:
    return data_dir() / "approvals.json"


def _trust_file() -> Path:
    return data_dir() / "trusted.json"


def _load(path: Path, default: Any) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, type(default)) else default
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return default


def _save(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, [json.dumps(data, indent=2, sort_keys=True).encode("utf-8")], 0o600)


def _key(project: Path) -> str:
    return os.path.realpath(project)


# --- remembered approvals ---------------------------------------------------------------------------------
def remember(project: Path, rule: str) -> None:
    """Remember "always allow `rule`" for this project (rule syntax as in config: `bash: npm test *`)."""
    Rule.parse(rule)  # validate
    data = _load(_approvals_file(), {})
    entries = data.setdefault(_key(project), [])
    if not any(e.get("rule") == rule for e in entries):
        entries.append({"rule": rule, "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    _save(_approvals_file(), data)


def remembered(project: Path) -> list[str]:
    data = _load(_approvals_file(), {})
    return [e["rule"] for e in data.get(_key(project), []) if isinstance(e, dict) and "rule" in e]


def all_remembered() -> dict[str, list[dict[str, str]]]:
    return _load(_approvals_file(), {})


def forget(project: Path, rule: str | None = None) -> int:
    """Forget one rule, or all of a project's rules (rule=None). Returns how many were removed."""
    data = _load(_approvals_file(), {})
    entries = data.get(_key(project), [])
    keep = [e for e in entries if rule is not None and e.get("rule") != rule]
    removed = len(entries) - len(keep)
    if keep:
        data[_key(project)] = keep
    else:
        data.pop(_key(project), None)
    _save(_approvals_file(), data)
    return removed


# --- trust ------------------------------------------------------------------------------------------------
def trusted_dirs() -> list[str]:
    return [p for p in _load(_trust_file(), []) if isinstance(p, str)]


def is_trusted(path: Path) -> bool:
    """True when `path` or one of its ancestors was trusted by the user."""
    real = Path(_key(path))
    for t in trusted_dirs():
        tp = Path(t)
        if real == tp or real.is_relative_to(tp):
            return True
    return False


def trust(path: Path) -> None:
    key = _key(path)
    dirs = trusted_dirs()
    if key not in dirs:
        dirs.append(key)
        _save(_trust_file(), sorted(dirs))


def untrust(path: Path) -> bool:
    key = _key(path)
    dirs = trusted_dirs()
    if key not in dirs:
        return False
    dirs.remove(key)
    _save(_trust_file(), dirs)
    return True


# --- project MCP servers the user approved ------------------------------------------------------------------
def _servers_file() -> Path:
    return data_dir() / "approved_servers.json"


def approve_server(project: Path, name: str, fingerprint: str) -> None:
    """Remember that the user let this project's server `name` run, as configured now (`fingerprint`: a changed
    command line asks again)."""
    data = _load(_servers_file(), {})
    data.setdefault(_key(project), {})[name] = fingerprint
    _save(_servers_file(), data)


def approved_servers(project: Path) -> dict[str, str]:
    entries = _load(_servers_file(), {}).get(_key(project), {})
    return {k: v for k, v in entries.items() if isinstance(v, str)} if isinstance(entries, dict) else {}
