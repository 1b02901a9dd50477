"""After a plan-mode turn: accept the plan (switch to an editing mode and tell the model to go ahead) or keep
planning (type what to change). The choice sits above the input; typing goes to the input, as always."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ghostline.agent import events as ev
from ghostline.agent.plan import ACCEPT_MODE, ACCEPTED_MESSAGE, PLAN_MODE

if TYPE_CHECKING:
    from ghostline.agent.tui.app import GhostlineApp

ACCEPT = f"Accept the plan: switch to {ACCEPT_MODE} and carry it out"
KEEP = "Keep planning: type what to change in the plan"


class PlanChoice(OptionList):
    DEFAULT_CSS = """
    PlanChoice { height: auto; margin: 0 1; border: round $accent; }
    """
    BINDINGS = [Binding("escape", "keep", "Keep planning", show=False)]

    class Chosen(Message):
        def __init__(self, accept: bool) -> None:
            super().__init__()
            self.accept = accept

    def __init__(self) -> None:
        super().__init__(Option(ACCEPT, id="accept"), Option(KEEP, id="keep"), markup=False, id="plan-choice")
        self.border_title = "plan ready"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(event.option.id == "accept"))

    def action_keep(self) -> None:
        self.post_message(self.Chosen(False))


def plan_turn_ended(e: ev.Event, approval: str) -> bool:
    """A turn of the main loop ended well in plan mode: its last message is the plan."""
    return isinstance(e, ev.Done) and e.subtype == "success" and approval == PLAN_MODE


async def offer(app: GhostlineApp) -> None:
    dismiss(app)
    choice = PlanChoice()
    await app.mount(choice, before=app.prompt)
    choice.highlighted = 0
    choice.focus()


def dismiss(app: GhostlineApp) -> None:
    """Take the choice away (a message sent meanwhile is the answer: feedback on the plan)."""
    for choice in app.query(PlanChoice):
        with suppress(Exception):
            choice.remove()


async def choose(app: GhostlineApp, accept: bool) -> None:
    dismiss(app)
    app.prompt.focus()
    if accept:
        app.commands.set_approval(ACCEPT_MODE)
        app.send(ACCEPTED_MESSAGE)
    else:
        await app.conversation.say("[still planning: tell the model what to change in the plan]")
