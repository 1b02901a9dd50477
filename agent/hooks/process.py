"""Running one hook command: as the user (outside the command sandbox, with the user's environment), JSON on
stdin, a time limit, bounded output; a hook that runs out of time is killed with everything it started."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from ghostline.agent.hooks.config import HookCommand

OUTPUT_LIMIT = 64 * 1024  # bytes kept of each of stdout and stderr; the rest is read and dropped
_CHUNK = 64 * 1024


@dataclass
class HookRun:
    command: str
    exit_code: int | None  # None: it did not finish (timed out, or could not start)
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    error: str = ""  # why it could not start
    duration_s: float = 0.0


async def run_hook(hook: HookCommand, payload: bytes, *, cwd: Path, env: dict[str, str]) -> HookRun:
    """Run `hook` with `payload` on stdin. Never raises (but cancellation, which kills it)."""
    started = time.perf_counter()
    try:
        proc = await asyncio.create_subprocess_shell(
            hook.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=str(cwd), env=env, start_new_session=True)
    except OSError as e:
        return HookRun(hook.command, None, error=f"cannot start: {e.strerror or e}")
    out, err = asyncio.ensure_future(_bounded(proc.stdout)), asyncio.ensure_future(_bounded(proc.stderr))
    run = HookRun(hook.command, None)
    try:
        await asyncio.wait_for(asyncio.gather(_feed(proc, payload), out, err, proc.wait()), hook.timeout)
        run.exit_code = proc.returncode
    except TimeoutError:
        run.timed_out = True
    finally:
        if run.exit_code is None:  # timed out or cancelled: nothing of it may go on running
            _kill_group(proc)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
    run.stdout = _text(out)
    run.stderr = _text(err)
    run.duration_s = time.perf_counter() - started
    return run


async def _feed(proc: asyncio.subprocess.Process, payload: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(payload)
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):  # a hook that does not read its input
        pass
    finally:
        proc.stdin.close()


async def _bounded(stream: asyncio.StreamReader | None) -> bytes:
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(_CHUNK):
        if len(kept) < OUTPUT_LIMIT:
            kept += chunk[: OUTPUT_LIMIT - len(kept)]
    return bytes(kept)


def _text(task: asyncio.Future[bytes]) -> str:
    if not task.done() or task.cancelled() or task.exception() is not None:
        task.cancel()
        return ""
    return task.result().decode("utf-8", errors="replace")


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """The hook and whatever it started (it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
