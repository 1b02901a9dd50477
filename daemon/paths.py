"""Where the daemon keeps its files on this machine: the pid file (JSON: pid, host, port), the log and the local
telemetry store in the user state dir, the bearer token in the user config dir (ghostline/dirs.py says where
those are).

Imports nothing of the daemon: the server, the process control, the telemetry and the LSP bridge all depend on
this module instead of on each other.
"""

from __future__ import annotations

from pathlib import Path

from ghostline.dirs import config_dir, state_dir


def pid_path() -> Path:
    return state_dir() / "daemon.pid"


def log_path() -> Path:
    return state_dir() / "daemon.log"


def telemetry_path() -> Path:
    """The telemetry store: beside the daemon's pid and log files (GHOSTLINE_STATE_DIR, else the user state dir)."""
    return state_dir() / "telemetry.sqlite3"


def token_path() -> Path:
    return config_dir() / "daemon-token"
