"""Model providers: one contract (base.py), three wire protocols (anthropic, openai, react).

Build one with `agent.models.make_provider("anthropic:claude-sonnet-5-5")`. Importing this package does not import
any SDK.
"""

from ghostline.agent.providers.base import (
    ConfigError,
    ContextLengthError,
    Provider,
    ProviderError,
    StreamItem,
    StreamRetry,
    StreamText,
    ToolSpec,
    TurnComplete,
    TurnUsage,
)
from ghostline.agent.providers.retry import RetryPolicy

__all__ = [
    "ConfigError",
    "ContextLengthError",
    "Provider",
    "ProviderError",
    "RetryPolicy",
    "StreamItem",
    "StreamRetry",
    "StreamText",
    "ToolSpec",
    "TurnComplete",
    "TurnUsage",
]
