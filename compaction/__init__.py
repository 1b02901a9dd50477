"""Token accounting, the provider-neutral transcript, and the five-stage compaction pipeline.

Public surface: `Compactor` (the pipeline the loop calls), `CompactionConfig`, `CompactionEvent`,
`CompactionFailed`, `ContextOverflow` (the base of a provider's context-length error), `Ledger`, `TokenCounter`/`TokenAccountant`, and the transcript types. See
`compaction.pipeline` for the API in full.
"""

from ghostline.compaction.errors import ContextOverflow
from ghostline.compaction.ledger import Ledger, parse_test_output
from ghostline.compaction.pipeline import (
    CompactionConfig,
    CompactionEvent,
    CompactionFailed,
    Compactor,
    validate_pairs,
)
from ghostline.compaction.tokens import Calibration, TokenAccountant, TokenCounter
from ghostline.compaction.transcript import (
    Block,
    Message,
    SummaryBlock,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

__all__ = [
    "Block", "Calibration", "CompactionConfig", "CompactionEvent", "CompactionFailed", "Compactor", "ContextOverflow", "Ledger",
    "Message", "SummaryBlock", "TextBlock", "TokenAccountant", "TokenCounter", "ToolResultBlock", "ToolUseBlock",
    "parse_test_output", "validate_pairs",
]
