"""The report's changed files and diffstat, worked out while the model writes its answer instead of after it.

Once a turn's tools have run and the next model call has started, nothing of the run changes files until the
model answers; a headless run's report (its `files_changed` and `diffstat`, agent/landing.py) can be counted
then, in a thread, and at the end it is taken as it is when the checkpoints' tree watch saw nothing change
since (`Checkpoints.generation`) and the run names the same files. Otherwise — a command that left something
running, the user's editor, no watch — it is counted again at the end, as without this.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghostline.agent import events as ev
from ghostline.agent.landing import LandingError, worktree_diffstat
from ghostline.agent.later import Later
from ghostline.agent.runner import PreparedRun, report_paths


def landed_paths(files_changed: list[str]) -> list[str]:
    """Of a report's files, those a landing counts and commits: the ones inside the repository."""
    return [p for p in files_changed if not Path(p).is_absolute()]


class ReportAhead:
    """Follows a headless run's events (`observe`) and counts its diffstat after each turn whose tools may have
    changed files; `diffstat(paths)` is that count when it still holds."""

    def __init__(self, run: PreparedRun, base: str | None):
        self.run, self.base = run, base
        self._moved = False  # a tool that may change files ran since the last count began
        self._count: Later | None = None  # (the checkpoints' generation, the paths, their diffstat), or None

    def observe(self, e: ev.Event) -> None:
        if isinstance(e, ev.ToolCall) and e.kind != "read":
            self._moved = True
        elif isinstance(e, ev.TurnStarted) and self._moved and self._can_count():
            self._moved = False
            if self._count is not None:
                self._count.get()  # one count at a time: the newer one is the one that matters
            self._count = Later(self._work, list(self.run.loop.stats.files_changed))

    def _can_count(self) -> bool:
        return self.run.is_git and self.run.loop.checkpoints is not None and \
            self.run.loop.first_checkpoint is not None

    def _work(self, tool_paths: list[str]) -> tuple[int, list[str], dict[str, int]] | None:
        try:
            moved = self.run.changed_by_run()
            generation = self.run.loop.checkpoints.generation
            paths = landed_paths(report_paths(self.run.root, tool_paths, moved))
            return generation, paths, worktree_diffstat(self.run.root, self.base, paths)
        except (LandingError, OSError):
            return None  # counted at the end instead, where a failure is reported

    def diffstat(self, paths: list[str]) -> dict[str, Any] | None:
        """The count made ahead, when the files are as they were then and the run names the same ones; else
        None. Call after the report's `changed_by_run`, which brings the generation up to date."""
        if self._count is None:
            return None
        count, checkpoints = self._count.get(), self.run.loop.checkpoints
        if count is None or checkpoints is None or count[0] != checkpoints.generation or count[1] != paths:
            return None
        return count[2]
