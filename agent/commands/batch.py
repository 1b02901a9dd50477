"""`agent batch JOBS.jsonl [options]` and `agent batch merge R1.json R2.json ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from ghostline.agent.commands.run import (
    ALLOW_OPT,
    APPROVAL_OPT,
    BASE_URL_OPT,
    CWD_OPT,
    DENY_OPT,
    MAX_COST_OPT,
    MAX_TOKENS_OPT,
    MAX_TURNS_OPT,
    MODEL_OPT,
    NETWORK_OPT,
    OUTPUT_SCHEMA_OPT,
    SANDBOX_OPT,
    VERIFY_ATTEMPTS_OPT,
    VERIFY_OPT,
    VERIFY_TIMEOUT_OPT,
)
from ghostline.sandbox.modes import ApprovalMode, SandboxMode


class _RunByDefault(TyperGroup):
    """`agent batch JOBS ...` is `agent batch run JOBS ...`; `agent batch merge ...` stays a subcommand."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


batch_app = typer.Typer(cls=_RunByDefault, no_args_is_help=True, help=(
    "Run many headless jobs in parallel, each in its own git worktree and branch: agent batch JOBS.jsonl. "
    "Shard a batch over CI machines with --shard K/N, then: agent batch merge R1.json R2.json > report.json."))


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")


@batch_app.command("run")
def run_cmd(
    jobs: Path = typer.Argument(..., metavar="JOBS.jsonl", help='One job per line: {"id", "task", "cwd"?, '
                                '"model"?, "verify"?, "max_turns"?, "max_cost"?, "base"?}.'),
    parallel: int = typer.Option(4, "--parallel", "-p", min=1, help="Jobs at once."),
    report: Path = typer.Option(Path("batch-report.json"), "--report", metavar="FILE",
                                help="Where the report goes (rewritten as each job ends)."),
    shard: str = typer.Option(None, "--shard", metavar="K/N", help="Run only the jobs with index i where "
                              "i %% N == K-1 (a CI matrix of N machines splits one batch)."),
    max_cost_total: float = typer.Option(None, "--max-cost-total", min=0.0, metavar="USD", help="Stop every job "
                                         "once the batch has cost this much (exit 4)."),
    junit: Path = typer.Option(None, "--junit", metavar="FILE", help="Also write JUnit XML: one testcase per job."),
    resume: Path = typer.Option(None, "--resume", metavar="REPORT", help="Run again only the jobs this report "
                                "shows did not succeed or never ran (interrupted ones go on in their session)."),
    commit: bool = typer.Option(False, "--commit", help="Commit each successful job's changes on its branch."),
    patch_dir: Path = typer.Option(None, "--patch", metavar="DIR", help="Write each job's changes to DIR/ID.patch."),
    branch: str = typer.Option("ghostline/{id}", "--branch", metavar="TEMPLATE", help="Each job's branch."),
    model: str = MODEL_OPT,
    base_url: str = BASE_URL_OPT,
    max_turns: int = MAX_TURNS_OPT,
    max_tokens: int = MAX_TOKENS_OPT,
    max_cost: float = MAX_COST_OPT,
    approval: ApprovalMode = APPROVAL_OPT,
    sandbox: SandboxMode = SANDBOX_OPT,
    network: bool = NETWORK_OPT,
    cwd: Path = CWD_OPT,
    verify: str = VERIFY_OPT,
    verify_attempts: int = VERIFY_ATTEMPTS_OPT,
    verify_timeout: float = VERIFY_TIMEOUT_OPT,
    allow: list[str] = ALLOW_OPT,
    deny: list[str] = DENY_OPT,
    output_schema: Path = OUTPUT_SCHEMA_OPT,
) -> None:
    """Run the jobs of JOBS.jsonl. A job's own model/verify/max_turns/max_cost beat the options here.

    Progress: a live table on a terminal, JSON lines on stdout otherwise. Exit codes: 0 every job succeeded;
    1 some job did not; 2 usage error (a bad JOBS line: nothing ran); 4 --max-cost-total stopped the batch;
    130 interrupted (sessions saved; --resume REPORT goes on).
    """
    from ghostline.agent.batch import BatchOptions, run_batch
    from ghostline.agent.options import RunOptions

    shared: dict[str, Any] = dict(
        model=model, base_url=base_url, max_turns=max_turns, max_tokens=max_tokens, max_cost=max_cost,
        approval=approval, sandbox=sandbox, network=network, cwd=cwd, verify=verify,
        verify_attempts=verify_attempts, verify_timeout=verify_timeout, allow=list(allow or []),
        deny=list(deny or []), output_schema=output_schema, output_format="json")
    raise typer.Exit(run_batch(BatchOptions(
        jobs=jobs, run=RunOptions(**shared), parallel=parallel, report=report, shard=shard,
        max_cost_total=max_cost_total, junit=junit, resume=resume, commit=commit, patch_dir=patch_dir,
        branch=branch)))


@batch_app.command("merge")
def merge_cmd(
    reports: list[Path] = typer.Argument(..., metavar="REPORT...", help="The shard reports (--shard 1/N ... N/N)."),
    junit: Path = typer.Option(None, "--junit", metavar="FILE", help="Also write JUnit XML for the whole batch."),
) -> None:
    """Combine the reports of a sharded batch into one (on stdout). Exits like the batch: 0 only when every job
    succeeded."""
    from ghostline.agent.batch import merge_command

    raise typer.Exit(merge_command(reports, junit))
