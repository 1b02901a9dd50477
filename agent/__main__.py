"""Console entry point. `agent --version` answers before anything heavy is imported."""

from __future__ import annotations

import os
import sys


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


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from ghostline.agent import __version__

        print(f"ghostline {__version__}")
        return
    try:
        # Plain help and errors: rich rendering in typer costs ~300 ms of startup for every command.
        os.environ.setdefault("TYPER_USE_RICH", "0")
        from ghostline.agent.cli import run_cli

        run_cli()
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("GHOSTLINE_DEBUG"):
            raise
        _report_crash(exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
