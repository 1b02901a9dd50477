"""Plan mode: the model explores with tools that read and ends its turn with a plan, which the user accepts
(switching to a mode that edits, and telling the model to go ahead) or refines by answering with feedback.

The policy does the refusing (`sandbox.policy`, approval "plan"); this module holds what the model is told.
"""

from __future__ import annotations

PLAN_MODE = "plan"
ACCEPT_MODE = "auto-edit"  # where accepting a plan switches to: edits in the workspace run, commands still ask

PLAN_PROMPT = """
Plan mode is on: the user wants a plan before anything changes. Only tools that read run now (reading and
searching files, read-only shell commands such as `git log` or `ls`); anything that would change a file or run a
command that may write is refused. Explore what you need, then end your turn with the plan: one line on the goal,
then numbered steps naming the files and functions to change and how the result will be verified. Do not start
the work: the user will accept the plan (and switch to a mode that can edit) or tell you what to change in it.
"""

ACCEPTED_MESSAGE = ("I accept the plan. Plan mode is off and you may now edit files: go ahead and carry it out "
                    "step by step, then verify the result.")


def system_for_mode(system: str, approval: str) -> str:
    """The system prompt for an approval mode: the plan-mode section is there only while planning (so the prompt
    stays byte-stable, and cached, while the mode holds)."""
    return system + PLAN_PROMPT if approval == PLAN_MODE else system
