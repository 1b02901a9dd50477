"""Console entry point. `agent --version` answers before anything heavy is imported."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from agent import __version__

        print(f"ghostline {__version__}")
        return
    from agent.cli import run_cli

    run_cli()


if __name__ == "__main__":
    main()
