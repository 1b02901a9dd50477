"""Path guard for the file tools: real-path resolution, workspace confinement, protected paths."""

from __future__ import annotations

import os
from pathlib import Path

from ghostline.dirs import config_dir, data_dir
from ghostline.sandbox.modes import SANDBOX_MODES, SandboxMode

# Directory names inside a workspace that tools may never write into.
PROTECTED_NAMES = (".git", ".ghostline")


class PathDenied(Exception):
    """A path the file tools may not use; the message is one clear line for the model and the user."""


def protected_dirs() -> list[Path]:
    """Ghostline's own config and data (trust store, approvals): never writable from tools or commands."""
    out = []
    for d in (config_dir(), data_dir()):
        out.append(Path(os.path.realpath(d)))
    return out


def _within(path: Path, root: Path) -> bool:
    # Component-wise: /ws-evil is not inside /ws.
    return path == root or path.is_relative_to(root)


def _realpath(p: Path) -> Path:
    try:
        return Path(os.path.realpath(p, strict=False))
    except OSError as e:  # symlink loops and the like
        raise PathDenied(f"cannot resolve {p}: {e.strerror or e}") from None


def protected_reason(real: Path, workspace: Path) -> str | None:
    """Why writing `real` (already resolved) is refused regardless of mode, or None."""
    ws = _realpath(workspace)
    if _within(real, ws):
        rel = real.relative_to(ws)
        for part in rel.parts:
            low = part.lower()
            if low == ".git":
                return ".git internals (hooks, config, objects) are protected"
            if low == ".ghostline":
                return "Ghostline's project config (.ghostline/) is protected"
    for d in protected_dirs():
        if _within(real, d):
            return f"Ghostline's own config/data ({d}) is protected"
    return None


def resolve_path(path: str, *, cwd: Path, workspace: Path, write: bool,
                 mode: SandboxMode = "workspace-write") -> Path:
    """Resolve `path` (relative to `cwd`) to a real path the file tools may use, or raise PathDenied.

    Symlinks, `..`, `/proc/self/root` and friends are resolved before the check, so none of them
    can leave the workspace; a sibling directory sharing the workspace's name as a prefix is outside.
    """
    if mode not in SANDBOX_MODES:
        raise PathDenied(f"unknown sandbox mode {mode!r}")
    if not isinstance(path, str) or not path or "\x00" in path:
        raise PathDenied("empty or invalid path")
    p = Path(os.path.expanduser(path))
    if not p.is_absolute():
        p = Path(cwd) / p
    real = _realpath(p)
    ws = _realpath(Path(workspace))
    if write and mode == "read-only":
        raise PathDenied(f"{path}: writes are not allowed in read-only mode")
    if mode != "full-access" and not _within(real, ws):
        verb = "write" if write else "read"
        raise PathDenied(f"{path}: cannot {verb} outside the workspace {ws} (resolves to {real})")
    if write:
        reason = protected_reason(real, ws)
        if reason:
            raise PathDenied(f"{path}: {reason}")
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise PathDenied(f"{path}: {e.strerror}") from None
        if st is not None:
            import stat as _stat

            if _stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and mode != "full-access":
                raise PathDenied(f"{path}: refusing to write a file with {st.st_nlink} hard links "
                                 f"(it may be a link to a file outside the workspace)")
            if not (_stat.S_ISREG(st.st_mode) or _stat.S_ISDIR(st.st_mode)):
                raise PathDenied(f"{path}: not a regular file")
    return real
