"""Token accounting, the provider-neutral transcript, and the five-stage compaction pipeline."""

from compaction.transcript import (
    Block,
    Message,
    SummaryBlock,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

__all__ = ["Block", "Message", "SummaryBlock", "TextBlock", "ToolResultBlock", "ToolUseBlock"]
