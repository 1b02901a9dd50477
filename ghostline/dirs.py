"""Where Ghostline keeps its files on this machine, and where a project starts.

Every package needs these (the agent its config and sessions, the sandbox to protect them, the daemon its token
and state), so they live below all of them; this module imports nothing of Ghostline's.
"""

from __future__ import annotations

import os
from pathlib import Path


def _dir(env: str, kind: str) -> Path:
    override = os.environ.get(env)
    if override:
        return Path(override)
    import platformdirs  # not needed when the variable is set (tests, `agent --version`)

    return Path(getattr(platformdirs, f"user_{kind}_dir")("ghostline"))


def config_dir() -> Path:
    """config.toml, commands, hooks, the daemon token (GHOSTLINE_CONFIG_DIR, else the platform's config dir)."""
    return _dir("GHOSTLINE_CONFIG_DIR", "config")


def data_dir() -> Path:
    """Sessions, approvals, trust, checkpoints, logs (GHOSTLINE_DATA_DIR, else the platform's data dir)."""
    return _dir("GHOSTLINE_DATA_DIR", "data")


def state_dir() -> Path:
    """The daemon's pid/port files, log and telemetry (GHOSTLINE_STATE_DIR, else the platform's state dir)."""
    return _dir("GHOSTLINE_STATE_DIR", "state")


def find_project_root(cwd: Path) -> Path:
    """The nearest ancestor of `cwd` holding .git (or .ghostline), else `cwd` itself."""
    for d in (cwd, *cwd.parents):
        if (d / ".git").exists() or (d / ".ghostline").is_dir():
            return d
    return cwd
