"""Daemon security: the bearer token (generated once, stored 0600 in the user config dir) and the Host check
against DNS rebinding."""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
from pathlib import Path

from ghostline.daemon.paths import token_path


def load_or_create_token(path: Path | None = None) -> str:
    """Read the token, creating it (0600, in a 0700 directory) on first use. A token file readable by others
    is tightened to 0600."""
    path = path or token_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)
        tok = path.read_text(encoding="utf-8").strip()
        if tok:
            return tok
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    tok = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(tok + "\n")
    return tok


def read_token(path: Path | None = None) -> str:
    """The token, or '' when there is no token file (never created from here)."""
    try:
        return (path or token_path()).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _split_host(host_header: str) -> str:
    h = host_header.strip()
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else h
    if h.count(":") == 1:
        return h.split(":", 1)[0]
    return h


def is_loopback_host(host_header: str | None) -> bool:
    if not host_header:
        return False
    h = _split_host(host_header).lower().rstrip(".")
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def host_allowed(host_header: str | None, extra: set[str] | frozenset[str] = frozenset()) -> bool:
    """Loopback names and addresses always; `extra` holds the names the user bound with --host."""
    if is_loopback_host(host_header):
        return True
    if not host_header:
        return False
    return _split_host(host_header).lower() in extra
