"""What `agent` checks before the TUI paints, and what the first frame shows before the run is ready.

The checks cost little (the working directory, the config, the model, a resumed session) and give the messages the
full preparation would, so those mistakes end with one line on stderr and exit code 2 before anything is drawn.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ghostline.agent.config import load_config
from ghostline.agent.models import parse_model_spec
from ghostline.agent.options import RunOptions, UsageError
from ghostline.agent.providers.base import ConfigError
from ghostline.agent.session import Session, sessions_root
from ghostline.dirs import data_dir, find_project_root

START_ERRORS = (UsageError, ConfigError)  # a mistake in the options or the config: one line, exit code 2


@dataclass(frozen=True)
class StartInfo:
    """What the first frame shows, before the run is ready."""

    cwd: Path
    root: Path
    model: str
    approval: str
    sandbox: str


def preflight(opts: RunOptions) -> StartInfo:
    """The cheap checks, with the messages the full preparation would give. Raises UsageError or ConfigError."""
    cwd = (opts.cwd or Path.cwd()).expanduser()
    if not cwd.is_dir():
        raise UsageError(f"working directory {cwd} does not exist")
    cwd = cwd.resolve()
    cfg = load_config(cwd)
    for warning in cfg.warnings:
        sys.stderr.write(f"agent: warning: {warning}\n")
    model = opts.model or cfg.model
    if opts.resume:
        session = _resumed(opts.resume)
        cwd = Path(session.meta().get("cwd") or cwd)
        model = model or session.current_model()
    if not opts.cont:  # --continue: its session, and so its model, is found while the run is prepared
        parse_model_spec(model)
    return StartInfo(cwd, find_project_root(cwd), model or "", opts.approval or cfg.approval or "ask",
                     opts.sandbox or cfg.sandbox)


def _resumed(session_id: str) -> Session:
    try:
        return Session.open(sessions_root(data_dir()), session_id)
    except FileNotFoundError:
        raise UsageError(f"no session {session_id!r}; `agent sessions` lists them") from None
