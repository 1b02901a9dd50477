"""`agent run` and `agent sessions`; the options `agent run`, `agent tui` and bare `agent` share."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import typer

from ghostline.agent.commands.signature import with_options
from ghostline.sandbox.modes import ApprovalMode, SandboxMode

OutputFormat = Literal["text", "json", "stream-json"]

# Options shared by `agent run`, `agent tui` and bare `agent` (typer reads these as metadata; one definition each).
MODEL_OPT = typer.Option(None, "--model", "-m", help="PROVIDER:NAME, e.g. anthropic:claude-sonnet-5-5, "
                         "openai:gpt-4.1 (also GHOSTLINE_MODEL or `model` in config).")
BASE_URL_OPT = typer.Option(None, "--base-url", help="Base URL of the provider's API (e.g. an OpenAI-compatible "
                            "vLLM, SGLang, Ollama or llama.cpp server).")
MAX_TURNS_OPT = typer.Option(None, "--max-turns", min=1, help="Stop after N model calls (exit 3).")
MAX_TOKENS_OPT = typer.Option(None, "--max-tokens", min=1, help="Stop once input+output tokens reach N (exit 4).")
MAX_COST_OPT = typer.Option(None, "--max-cost", min=0.0, help="Stop once the cost reaches USD (exit 4).")
APPROVAL_OPT = typer.Option(None, "--approval", help="plan | ask | auto-edit | auto. Default: ask on a terminal, "
                            "auto when headless (CI, no TTY). plan: only what reads runs, and the model ends with a "
                            "plan.")
SANDBOX_OPT = typer.Option(None, "--sandbox", help="read-only | workspace-write | full-access "
                           "(default workspace-write).")
NETWORK_OPT = typer.Option(None, "--network/--no-network", help="Allow network for commands (off by default in "
                           "sandboxed modes).")
RESUME_OPT = typer.Option(None, "--resume", "-r", help="Continue the session with this ID.")
CONTINUE_OPT = typer.Option(False, "--continue", "-c", help="Continue the latest session in this directory.")
WORKTREE_OPT = typer.Option(None, "--worktree", help="Work in a new git worktree on a new branch "
                            "(--worktree or --worktree=NAME).")
CWD_OPT = typer.Option(None, "--cwd", help="Work in this directory instead of the current one.")
OUTPUT_FORMAT_OPT = typer.Option("text", "--output-format", "-o", help="text (streamed), json (one result "
                                 "object) or stream-json (one event per line).")
VERBOSE_OPT = typer.Option(False, "--verbose", "-v", help="Show tool output and diffs.")
VERIFY_OPT = typer.Option(None, "--verify", help="A command that must pass (exit 0) before the run counts as done, "
                          "e.g. \"pytest -q\". Run in the sandbox when the model ends its turn; a failure goes back "
                          "to the model to fix (exit 5 if it still fails).")
VERIFY_ATTEMPTS_OPT = typer.Option(None, "--verify-attempts", help="Extra attempts after the first failed "
                                   "verification (default 2; 0: verify once).")
IMAGE_OPT = typer.Option(None, "--image", "-i", help="An image (PNG, JPEG, GIF, WebP) sent with the task; repeat "
                         "for several. The model must take images.")
VERIFY_TIMEOUT_OPT = typer.Option(None, "--verify-timeout", help="Seconds per verification run before it is "
                                  "killed (default 600).")
ALLOW_OPT = typer.Option(None, "--allow", metavar="RULE", help="Allow what RULE matches without asking, as a "
                         "permission rule in config would (repeatable), e.g. --allow 'bash: npm test *'.")
DENY_OPT = typer.Option(None, "--deny", metavar="RULE", help="Refuse what RULE matches (repeatable; a deny wins "
                        "over any allow), e.g. --deny 'bash: git push *'.")
COMMIT_OPT = typer.Option(False, "--commit", help="When the run succeeds, commit the files it changed (message "
                          "from the model's summary; author from [commit] author in config, GIT_AUTHOR_* or the "
                          "repository's).")
OUTPUT_SCHEMA_OPT = typer.Option(None, "--output-schema", metavar="FILE", help="The final answer must be JSON "
                                 "valid against this JSON Schema: told once if not, then exit 6; the value is the "
                                 "report's structured_result.")


def _session_options(
    model: str = MODEL_OPT,
    base_url: str = BASE_URL_OPT,
    max_turns: int = MAX_TURNS_OPT,
    max_tokens: int = MAX_TOKENS_OPT,
    max_cost: float = MAX_COST_OPT,
    approval: ApprovalMode = APPROVAL_OPT,
    sandbox: SandboxMode = SANDBOX_OPT,
    network: bool = NETWORK_OPT,
    resume: str = RESUME_OPT,
    cont: bool = CONTINUE_OPT,
    worktree: str = WORKTREE_OPT,
    cwd: Path = CWD_OPT,
) -> None:
    """The options of a session wherever it starts (`agent run`, `agent tui`, bare `agent`): written once here."""


with_session_options = with_options(_session_options, into="session")


def run(
    task: str = typer.Argument(None, help="What the agent should do (`-`: read it from stdin; text piped to "
                               "stdin is attached to it). Omit with --continue/--resume to go on."),
    output_format: OutputFormat = OUTPUT_FORMAT_OPT,
    verbose: bool = VERBOSE_OPT,
    verify: str = VERIFY_OPT,
    verify_attempts: int = VERIFY_ATTEMPTS_OPT,
    verify_timeout: float = VERIFY_TIMEOUT_OPT,
    allow: list[str] = ALLOW_OPT,
    deny: list[str] = DENY_OPT,
    commit: bool = COMMIT_OPT,
    patch: Path = typer.Option(None, "--patch", metavar="FILE", help="Write the run's changes as a git diff "
                               "(apply with `git apply`)."),
    branch: str = typer.Option(None, "--branch", metavar="NAME", help="Work on a new branch NAME (the "
                               "worktree's branch with --worktree; else made from HEAD in this checkout)."),
    output_schema: Path = OUTPUT_SCHEMA_OPT,
    image: list[Path] = IMAGE_OPT,
    session: dict[str, Any] | None = None,
) -> None:
    """Run the agent on a task until it is done or a budget stops it.

    Exit codes: 0 done; 1 failed during execution; 2 usage or configuration error; 3 stopped at --max-turns;
    4 stopped at --max-tokens or --max-cost; 5 the --verify command still fails after its attempts;
    6 the final answer does not satisfy --output-schema; 7 a hook stopped the run; 130 interrupted (the session is
    saved).
    """
    from ghostline.agent.headless import run_task
    from ghostline.agent.options import RunOptions

    raise typer.Exit(run_task(RunOptions(
        task=task, **(session or {}), output_format=output_format, verbose=verbose, verify=verify,
        verify_attempts=verify_attempts, verify_timeout=verify_timeout, allow=list(allow or []),
        deny=list(deny or []), commit=commit, patch=patch, branch=branch, output_schema=output_schema,
        images=tuple(image or ()),
    )))


def sessions(
    all_dirs: bool = typer.Option(False, "--all", "-a", help="Sessions from every directory, not just this one."),
    limit: int = typer.Option(20, "--limit", "-n", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List saved sessions, newest first."""
    from ghostline.agent.runner import list_sessions_command

    raise typer.Exit(list_sessions_command(all_dirs=all_dirs, limit=limit, as_json=as_json))


def register(app: typer.Typer) -> None:
    app.command("run")(with_session_options(run))
    app.command("sessions")(sessions)
