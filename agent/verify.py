"""`agent run --verify CMD`: "done" means the model ended its turn *and* CMD passed. The command runs through the
same sandbox as the bash tool; a failure goes back to the model with the end of the output."""

from __future__ import annotations

from dataclasses import dataclass

from ghostline.agent import events as ev
from ghostline.sandbox import SandboxError, run_command
from ghostline.tools.base import ToolContext

# --verify: what the model is shown of a failing command's output (its end, where the errors usually are).
VERIFY_TAIL_BYTES = 4096
VERIFY_TAIL_LINES = 100
VERIFY_OUTPUT_LIMIT = 30000  # captured in memory (head + tail); the whole output goes beside the session
DEFAULT_VERIFY_ATTEMPTS = 2
DEFAULT_VERIFY_TIMEOUT_S = 600.0


@dataclass
class Verification:
    """`agent run --verify CMD`: run CMD when the model says it is done; on failure, send it back to fix."""

    command: str
    attempts: int = DEFAULT_VERIFY_ATTEMPTS  # extra attempts after the first failure (0: verify once)
    timeout_s: float = DEFAULT_VERIFY_TIMEOUT_S

    @property
    def max_runs(self) -> int:
        return 1 + self.attempts


def output_tail(text: str, max_bytes: int = VERIFY_TAIL_BYTES, max_lines: int = VERIFY_TAIL_LINES
                ) -> tuple[str, bool]:
    """The end of a command's output: at most `max_lines` lines and `max_bytes` UTF-8 bytes, starting on a line
    boundary where possible (a single over-long last line keeps its end). Returns (tail, cut): cut is True when
    anything but trailing whitespace was left out."""
    text = text.rstrip()
    if not text:
        return "", False
    lines = text.split("\n")
    cut = len(lines) > max_lines
    tail = "\n".join(lines[-max_lines:]) if cut else text
    raw = tail.encode("utf-8", errors="replace")
    if len(raw) > max_bytes:
        cut = True
        piece = raw[-max_bytes:]
        # Skip continuation bytes: never start inside a multi-byte character.
        start = 0
        while start < len(piece) and (piece[start] & 0xC0) == 0x80:
            start += 1
        tail = piece[start:].decode("utf-8", errors="replace")
        nl = tail.find("\n")
        if 0 <= nl < len(tail) - 1:
            tail = tail[nl + 1:]  # drop the partial first line
    return tail, cut


def verification_feedback(r: ev.VerificationResult, max_runs: int, timeout_s: float) -> str:
    """The user message that sends a failed verification back to the model."""
    if r.timed_out:
        how = f"timed out after {timeout_s:g}s and was killed (exit code {r.exit_code})"
    else:
        how = f"failed with exit code {r.exit_code}"
    parts = [f"The verification command `{r.command}` {how} (attempt {r.attempt} of {max_runs})."]
    if r.output_tail:
        note = ""
        if r.tail_cut:
            note = " (earlier output was cut"
            note += f"; the full output is in {r.full_output_path})" if r.full_output_path else ")"
        parts.append(f"The end of its output{note}:\n```\n{r.output_tail}\n```")
    else:
        parts.append("It printed nothing.")
    parts.append("Find and fix the cause of the failure (do not weaken or skip the check), then end your turn; "
                 "the command runs again when you are done.")
    return "\n".join(parts)


class VerificationError(Exception):
    """The sandbox could not run the verification command at all."""


async def run_verification(v: Verification, attempt: int, ctx: ToolContext) -> ev.VerificationResult:
    """Run the command once (sandboxed like the bash tool) and describe how it ended."""
    try:
        res = await run_command(
            v.command, cwd=ctx.cwd, workspace=ctx.workspace, mode=ctx.sandbox_mode, network=ctx.network,
            timeout=v.timeout_s, output_limit=VERIFY_OUTPUT_LIMIT, env=ctx.env, output_dir=ctx.output_dir,
        )
    except SandboxError as exc:
        raise VerificationError(f"the sandbox could not run the verification command: {exc}") from None
    tail, cut = output_tail(res.output)
    passed = res.exit_code == 0 and not res.timed_out
    return ev.VerificationResult(v.command, attempt, res.exit_code, passed, res.duration_ms, tail,
                                 cut or res.truncated, res.timed_out, res.full_output_path)


def still_failing(v: Verification, runs: int, last: ev.VerificationResult) -> str:
    how = "timed out" if last.timed_out else f"exited with code {last.exit_code}"
    return f"verification still fails after {runs} attempt{'s' * (runs != 1)}: `{v.command}` {how}"
