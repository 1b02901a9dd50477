"""The exceptions compaction raises and recognises."""

from __future__ import annotations


class ContextOverflow(Exception):
    """A request did not fit the model's context window. `limit` is the real window when the error revealed it.

    Providers raise a subclass (`agent.providers.ContextLengthError`); compaction recognises an overflow of the
    summary request by this class, so it never needs to know a provider's exception names."""

    def __init__(self, message: str = "", limit: int | None = None):
        super().__init__(message)
        self.limit = limit


class CompactionFailed(RuntimeError):
    """Compaction could not bring the conversation under the window (the message says what to do)."""
