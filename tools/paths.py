"""Path handling shared by the file tools: the sandbox path guard and how paths are shown to the model."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ghostline import sandbox
from ghostline.tools.base import ToolContext, ToolError

log = logging.getLogger(__name__)


def resolve(ctx: ToolContext, path: str, *, write: bool) -> Path:
    """Resolve a model-given path (relative to ctx.cwd or absolute) through the sandbox path guard.

    Raises ToolError with the guard's message when the path is refused.
    """
    if not isinstance(path, str) or not path.strip():
        raise ToolError("path must be a non-empty string")
    if not write and ctx.output_dir is not None:
        # Full outputs that compaction or the bash tool saved beside the session stay readable, so the
        # model can follow the path named in a shortened result.
        kept = os.path.realpath(ctx.output_dir)
        real = os.path.realpath(os.path.join(ctx.cwd, os.path.expanduser(path)))
        if _is_within(real, kept):
            return Path(real)
    try:
        return sandbox.resolve_path(
            path, cwd=ctx.cwd, workspace=ctx.workspace, write=write, mode=ctx.sandbox_mode
        )
    except sandbox.PathDenied as exc:
        raise ToolError(str(exc) or f"access to {path} denied") from None


def display(ctx: ToolContext, path: Path | str) -> str:
    """How a path is shown to the model: relative to the working directory, POSIX separators.

    Paths outside the working directory stay relative (`../x`) while inside the workspace and
    absolute beyond it.
    """
    p = os.path.abspath(path)
    cwd = str(ctx.cwd)
    if p == cwd:
        return "."
    ws = str(ctx.workspace)
    if _is_within(p, cwd) or _is_within(p, ws):
        return Path(os.path.relpath(p, cwd)).as_posix()
    return Path(p).as_posix()


def _is_within(p: str, root: str) -> bool:
    return p == root or p.startswith(root.rstrip(os.sep) + os.sep)


def require_fresh(ctx: ToolContext, path: Path, given: str, action: str) -> None:
    """Refuse to change an existing file the model has not read, or that changed on disk since it read it."""
    snap = ctx.file_state.seen.get(str(path))
    if snap is None:
        raise ToolError(
            f"{given} exists but has not been read in this session; read it first with `read`, then {action}"
        )
    try:
        current = ctx.file_state.snapshot(path)
    except OSError as exc:
        raise ToolError(f"cannot read {given}: {exc.strerror or exc}") from None
    if current.sha256 != snap.sha256:
        raise ToolError(
            f"{given} has changed on disk since it was last read (by the user, a command or another "
            f"tool); read it again before you {action}"
        )


def unread(ctx: ToolContext, given: str, action: str) -> str | None:
    """What `require_fresh` would refuse about changing the existing file `given`, asked before the call runs;
    None when it would pass, or when the path is not for this check to judge (the path guard's refusals come
    from the gate and from `run`)."""
    try:
        path = resolve(ctx, given, write=True)
    except ToolError:
        return None
    try:
        if path.is_file():
            require_fresh(ctx, path, given, action)
    except ToolError as exc:
        return str(exc)
    except OSError:
        return None
    return None


def record(ctx: ToolContext, path: Path) -> None:
    """After a successful change: remember the new content (the model may change it again without
    re-reading) and tell whoever follows file changes."""
    try:
        ctx.file_state.record(path)
    except OSError:
        ctx.file_state.forget(path)
    if ctx.on_file_changed is not None:
        try:
            ctx.on_file_changed(path)
        except Exception:  # a follower's failure must not turn a successful change into an error
            log.exception("on_file_changed callback failed for %s", path)
