"""Console entry point. `agent --version` answers before anything heavy is imported."""

from __future__ import annotations

import sys

from ghostline.agent.lifecycle import exit_code_of, exit_without_teardown, main

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~3 ms of `agent --version`
if TYPE_CHECKING:
    from typing import NoReturn


def entry() -> NoReturn:
    """The console script: a warm server's fork runs `agent run` when one answers (see agent/warm.py), else
    `main` here; then a fast exit."""
    code = None
    if sys.argv[1:2] == ["run"]:
        # Only for `agent run`: `--version` stays as light as it was.
        from ghostline.agent.warm import try_warm_run

        code = try_warm_run(sys.argv[1:])
    exit_without_teardown(code if code is not None else exit_code_of(main))


if __name__ == "__main__":
    entry()
