"""A prefix cache of KV states: longest-common-token-prefix reuse, a memory bound, LRU eviction.

An entry is a token sequence and the per-layer key/value tensors that cover exactly those tokens (shape
`[batch=1, heads, len, head_dim]`). A lookup returns the entry sharing the longest token prefix with a new prompt;
the caller slices the tensors to that length (views, no copy) and only computes the rest. Entries that are a
prefix of a newly inserted one are dropped (the new one covers them), so typing forward keeps one growing entry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

KV = list[tuple[Any, Any]]  # per layer (keys, values), torch tensors [1, H, L, D]


def common_prefix_len(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    neq = np.flatnonzero(a[:n] != b[:n])
    return int(neq[0]) if len(neq) else n


def kv_nbytes(kv: KV) -> int:
    total = 0
    for k, v in kv:
        total += k.numel() * k.element_size() + v.numel() * v.element_size()
    return total


@dataclass
class CacheEntry:
    key: int
    tokens: np.ndarray
    kv: KV
    nbytes: int
    hits: int = 0


@dataclass
class CacheStats:
    lookups: int = 0
    hits: int = 0  # lookups that reused at least `min_hit` tokens (a shared template head is not a hit)
    reused_tokens: int = 0
    looked_up_tokens: int = 0
    evictions: int = 0
    inserts: int = 0


class PrefixCache:
    """Thread-safe (the model worker uses it; the server reads stats)."""

    def __init__(self, max_bytes: int = 512 * 2**20, max_entries: int = 64, min_reuse: int = 1, min_hit: int = 8):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.min_reuse = min_reuse
        self.min_hit = min_hit
        self._entries: OrderedDict[int, CacheEntry] = OrderedDict()
        self._next = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _best(self, toks: np.ndarray) -> tuple[CacheEntry | None, int]:
        best: CacheEntry | None = None
        best_n = 0
        for e in self._entries.values():
            n = common_prefix_len(e.tokens, toks)
            if n > best_n:
                best, best_n = e, n
        return best, best_n

    def peek(self, tokens: list[int] | np.ndarray) -> int:
        """The reusable prefix length for `tokens`, without touching LRU order or stats."""
        toks = np.asarray(tokens, dtype=np.int64)
        with self._lock:
            return self._best(toks)[1]

    def lookup(self, tokens: list[int] | np.ndarray, max_len: int | None = None) -> tuple[KV | None, int]:
        """(kv views covering the common prefix, its length); (None, 0) on a miss. `max_len` caps the reuse
        (a full hit must still leave one token to compute, for its logits)."""
        toks = np.asarray(tokens, dtype=np.int64)
        with self._lock:
            self.stats.lookups += 1
            self.stats.looked_up_tokens += len(toks)
            entry, n = self._best(toks)
            if max_len is not None:
                n = min(n, max_len)
            if entry is None or n < self.min_reuse:
                return None, 0
            entry.hits += 1
            self._entries.move_to_end(entry.key)
            if n >= self.min_hit:
                self.stats.hits += 1
            self.stats.reused_tokens += n
            kv = [(k[:, :, :n, :], v[:, :, :n, :]) for k, v in entry.kv]
            return kv, n

    def insert(self, tokens: list[int] | np.ndarray, kv: KV) -> None:
        toks = np.asarray(tokens, dtype=np.int64)
        if len(toks) == 0:
            return
        nbytes = kv_nbytes(kv)
        if nbytes > self.max_bytes:
            return
        with self._lock:
            # Drop entries the new one covers (their tokens are a prefix of the new tokens).
            for key in [k for k, e in self._entries.items() if len(e.tokens) <= len(toks)
                        and common_prefix_len(e.tokens, toks) == len(e.tokens)]:
                self._bytes -= self._entries.pop(key).nbytes
            # An existing entry already covers the new tokens: just refresh it.
            for e in self._entries.values():
                if len(e.tokens) >= len(toks) and common_prefix_len(e.tokens, toks) == len(toks):
                    self._entries.move_to_end(e.key)
                    return
            self._next += 1
            self._entries[self._next] = CacheEntry(self._next, toks, kv, nbytes)
            self._bytes += nbytes
            self.stats.inserts += 1
            while self._entries and (self._bytes > self.max_bytes or len(self._entries) > self.max_entries):
                _, old = self._entries.popitem(last=False)
                self._bytes -= old.nbytes
                self.stats.evictions += 1
