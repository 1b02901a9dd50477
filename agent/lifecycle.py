"""How the `agent` process runs its command and ends: `main` (the CLI with one-line crash reports), the exit code
it ends with, and a fast exit. Used by the console script and by the warm process's forks (agent/warm.py)."""

from __future__ import annotations

import atexit
import os
import sys

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~3 ms of `agent --version`
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    from ghostline.codecache import CodeCache


def _report_crash(exc: BaseException) -> None:
    """An internal error: one line for the user, the traceback kept in a log file (GHOSTLINE_DEBUG=1 shows it)."""
    import time
    import traceback

    where = ""
    try:
        from ghostline.dirs import data_dir

        logs = data_dir() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text("".join(traceback.format_exception(exc)))
        where = f"; details in {path}"
    except OSError:
        pass
    sys.stderr.write(f"agent: internal error: {type(exc).__name__}: {exc}{where}\n")


def plain_cli_output() -> None:
    """Plain help and one-line errors: rich rendering in typer costs ~300 ms of startup for every command, and
    boxes an error over several lines. Typer reads this once, when first imported: call before that (the warm
    process too, whose forks inherit its typer)."""
    os.environ.setdefault("TYPER_USE_RICH", "0")


def keep_compiled_code() -> CodeCache | None:
    """Dataclasses' generated methods, string annotations and regular expressions compiled once per Python build,
    not on every start (ghostline/codecache.py): call before the first of them is made."""
    from ghostline import codecache
    from ghostline.dirs import data_dir

    return codecache.install(str(data_dir()))


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from ghostline.agent import __version__

        print(f"ghostline {__version__}")
        return
    try:
        plain_cli_output()
        keep_compiled_code()
        from ghostline.agent.cli import run_cli

        run_cli()
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("GHOSTLINE_DEBUG"):
            raise
        _report_crash(exc)
        sys.exit(1)


def exit_without_teardown(code: int) -> NoReturn:
    """Leave as soon as the work is saved. A run has thousands of modules loaded (the SDKs' pydantic types), and
    tearing the interpreter down (a GC pass and module cleanup over them) costs 0.3-2 s after the last answer.
    What the normal exit would still do that matters happens first: threads that are not daemons finish, exit
    handlers run (logging flushes), the standard streams flush. Sessions are flushed per event already."""
    # Not imported here: `agent --version` would pay ~3 ms for it. If nothing imported it, no thread was started.
    threading = sys.modules.get("threading")
    if threading is not None:
        for t in threading.enumerate():
            if t is not threading.main_thread() and not t.daemon:
                t.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(code)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    sys.stderr.write(f"{exc.code}\n")
    return 1


def exit_code_of(fn: Callable[[], None]) -> int:
    """Run the CLI; the exit code it ends with."""
    try:
        fn()
    except SystemExit as exc:
        return _exit_code(exc)
    except KeyboardInterrupt:
        return 130
    return 0
