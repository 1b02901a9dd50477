"""Identifier-aware tokens for BM25: `getUserName` and `get_user_name` both also yield `get user name`."""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# A rough token count (close enough to BPE counts for code) used to size chunks.
_APPROX = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")

# English filler and the commonest keywords: they carry no signal and make OR-queries slow.
STOPWORDS = frozenset(
    """a an and are as at be by do does for from has have how i if in into is it its of on or
    that the their then there these this those to was were what when where which who why will
    with you your self def return none true false null var let const""".split()
)


def split_identifier(word: str) -> list[str]:
    """`HTTPServerError` -> [http, server, error]; `load_json2` -> [load, json, 2]."""
    parts: list[str] = []
    for piece in word.split("_"):
        if piece:
            parts.extend(p.lower() for p in _PART.findall(piece))
    return parts


def identifier_tokens(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Every identifier lowercased, followed by its parts when it has more than one."""
    out: list[str] = []
    for word in _WORD.findall(text):
        low = word.lower().strip("_")
        if not low:
            continue
        if len(low) > 1 and (keep_stopwords or low not in STOPWORDS):
            out.append(low)
        parts = split_identifier(word)
        if len(parts) > 1:
            out.extend(p for p in parts if len(p) > 1 and (keep_stopwords or p not in STOPWORDS))
    return out


def index_text(text: str) -> str:
    """The string stored in the FTS5 column (tokenised there by unicode61 with `_` as a token char)."""
    return " ".join(identifier_tokens(text))


def query_terms(text: str, limit: int = 24) -> list[str]:
    """Distinct query tokens, in order, capped so a pasted paragraph stays fast."""
    seen: dict[str, None] = {}
    for tok in identifier_tokens(text):
        if tok not in seen:
            seen[tok] = None
        if len(seen) >= limit:
            break
    return list(seen)


_CODEISH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:(?:\.|::)[A-Za-z_][A-Za-z0-9_]*)*")


def code_identifiers(text: str, limit: int = 8) -> list[str]:
    """Identifiers the text spells as code: snake_case, camelCase/PascalCase with an inner capital,
    dotted or `::` paths (their last part), or the whole query when it is one word."""
    words = _CODEISH.findall(text.strip())
    single = len(words) == 1 and len(text.split()) == 1
    out: dict[str, None] = {}
    for w in words:
        last = re.split(r"\.|::", w)[-1]
        codeish = (
            single or "_" in last.strip("_") or "." in w or "::" in w
            or any(c.isupper() for c in last[1:]) and any(c.islower() for c in last)
        )
        if codeish and len(last) > 2:
            out[last] = None
        if len(out) >= limit:
            break
    return list(out)


def fts_query(terms: Iterable[str]) -> str:
    """An FTS5 MATCH expression OR-ing quoted terms (quoting disables FTS5 query syntax)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def approx_tokens(text: str) -> int:
    return len(_APPROX.findall(text))
