"""Configuration: user TOML, project TOML (trusted before it may loosen anything), env vars, then flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostline.agent.hooks.config import HookTable, merge_tables, parse_hooks
from ghostline.agent.providers.base import ConfigError
from ghostline.dirs import config_dir, find_project_root
from ghostline.sandbox.modes import APPROVAL_MODES, SANDBOX_MODES, ApprovalMode, SandboxMode
from ghostline.sandbox.store import is_trusted


@dataclass
class Config:
    model: str | None = None
    base_url: str | None = None
    approval: ApprovalMode | None = None  # None: decided by interactive/headless
    sandbox: SandboxMode = "workspace-write"
    network: bool = False
    max_turns: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    max_output_tokens: int = 8192
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    permissions: dict[str, Any] = field(default_factory=dict)
    compaction: dict[str, Any] = field(default_factory=dict)
    acp: dict[str, Any] = field(default_factory=dict)  # `agent acp`: terminal = "auto" | "editor" | "sandbox"
    retry: dict[str, Any] = field(default_factory=dict)
    commit: dict[str, Any] = field(default_factory=dict)  # --commit: author = "Name <email>"
    hooks: HookTable = field(default_factory=dict)  # the user's, then the (trusted) project's
    warnings: list[str] = field(default_factory=list)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, OSError) as e:
        raise ConfigError(f"cannot read config {path}: {e}") from None


def _tighter(kind: tuple[str, ...], a: str | None, b: str | None) -> str | None:
    """The stricter of two modes (earlier in `kind` is stricter)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if kind.index(a) <= kind.index(b) else b


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# Keys a project file may only use to make things stricter until the user trusts the directory.
_LOOSENING_KEYS = ("sandbox", "approval", "network", "permissions", "acp")


def _load_hooks(user: dict[str, Any], user_file: Path, project: dict[str, Any], project_file: Path,
                trusted: bool, warnings: list[str]) -> HookTable:
    """Hooks run code: a project's only once the user trusts the directory. Both sets run (lists concatenate
    rather than the project's replacing the user's)."""
    user_hooks, w1 = parse_hooks(user.pop("hooks", None), str(user_file))
    project_table = project.pop("hooks", None)
    if project_table is not None and not trusted:
        warnings.append(f"ignoring hooks in {project_file}: this directory is not trusted (run `agent trust` to "
                        f"allow it)")
        project_table = None
    project_hooks, w2 = parse_hooks(project_table, str(project_file))
    warnings.extend(w1 + w2)
    return merge_tables(user_hooks, project_hooks)


def load_config(cwd: Path, *, user_file: Path | None = None) -> Config:
    user_file = user_file or config_dir() / "config.toml"
    user = read_toml(user_file)
    root = find_project_root(cwd)
    project_file = root / ".ghostline" / "config.toml"
    project = read_toml(project_file)
    warnings: list[str] = []
    hooks = _load_hooks(user, user_file, project, project_file, bool(project) and is_trusted(root), warnings)
    if project and not is_trusted(root):
        restricted = {k: project.pop(k) for k in _LOOSENING_KEYS if k in project}
        # A stricter sandbox/approval from an untrusted project is still honoured.
        if "sandbox" in restricted and restricted["sandbox"] in SANDBOX_MODES:
            project["sandbox"] = _tighter(SANDBOX_MODES, user.get("sandbox", "workspace-write"), restricted["sandbox"])
        if "approval" in restricted and restricted["approval"] in APPROVAL_MODES:
            project["approval"] = _tighter(APPROVAL_MODES, user.get("approval"), restricted["approval"])
        if "permissions" in restricted and isinstance(restricted["permissions"], dict):
            deny_only = {k: v for k, v in restricted["permissions"].items() if k in ("deny", "ask")}
            if deny_only:
                project["permissions"] = deny_only
        ignored = [k for k in restricted if k not in project]
        if ignored:
            warnings.append(
                f"ignoring {', '.join(ignored)} in {root / '.ghostline/config.toml'}: "
                f"this directory is not trusted (run `agent trust` to allow it)"
            )
    data = _merge(user, project)
    cfg = Config(warnings=warnings, hooks=hooks)
    for key in ("model", "base_url", "approval", "sandbox", "max_turns", "max_tokens", "max_cost",
                "max_output_tokens", "network"):
        if key in data:
            setattr(cfg, key, data[key])
    for key in ("models", "permissions", "compaction", "retry", "acp", "commit"):
        if isinstance(data.get(key), dict):
            setattr(cfg, key, data[key])
    env_model = os.environ.get("GHOSTLINE_MODEL")
    if env_model:
        cfg.model = env_model
    if cfg.sandbox not in SANDBOX_MODES:
        raise ConfigError(f"sandbox must be one of {', '.join(SANDBOX_MODES)} (got {cfg.sandbox!r} in config)")
    if cfg.approval is not None and cfg.approval not in APPROVAL_MODES:
        raise ConfigError(f"approval must be one of {', '.join(APPROVAL_MODES)} (got {cfg.approval!r} in config)")
    return cfg
