"""Token accounting, the provider-neutral transcript, and the five-stage compaction pipeline.

Public surface: `Compactor` (the pipeline the loop calls), `CompactionConfig`, `CompactionEvent`,
`CompactionFailed`, `ContextOverflow` (the base of a provider's context-length error), `Ledger`,
`TokenCounter`/`TokenAccountant`, the tool kinds a `kind_of` lookup returns, and the transcript types. See
`compaction.pipeline` for the API in full and `compaction.toolcalls` for the result meta compaction reads.
"""

from ghostline.compaction.blocks import validate_pairs
from ghostline.compaction.config import CompactionConfig, CompactionEvent
from ghostline.compaction.errors import CompactionFailed, ContextOverflow
from ghostline.compaction.ledger import Ledger
from ghostline.compaction.pipeline import Compactor
from ghostline.compaction.testruns import parse_test_output
from ghostline.compaction.tokens import Calibration, TokenAccountant, TokenCounter
from ghostline.compaction.toolcalls import EDIT, OTHER, READ, SHELL, KindOf
from ghostline.compaction.transcript import (
    Block,
    Message,
    SummaryBlock,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

__all__ = [
    "EDIT", "OTHER", "READ", "SHELL",
    "Block", "Calibration", "CompactionConfig", "CompactionEvent", "CompactionFailed", "Compactor",
    "ContextOverflow", "KindOf", "Ledger", "Message", "SummaryBlock", "TextBlock", "TokenAccountant", "TokenCounter",
    "ToolResultBlock", "ToolUseBlock", "parse_test_output", "validate_pairs",
]
