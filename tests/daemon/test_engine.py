"""The in-process engine on a tiny random-weight checkpoint loaded through the real loading path."""

from __future__ import annotations

import asyncio

import pytest

from ghostline.daemon.engine.classical import ClassicalCompleter
from ghostline.daemon.engine.fim import ExtraChunk
from ghostline.daemon.engine.local import LocalBackend, LocalModel, ModelLoadError
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.engine.types import CompletionRequest, CompletionResult, Job, TokenEvent

PREFIX = "import os\n\n\ndef load(path):\n    with open(path) as f:\n        data = f.read()\n    return data"
SUFFIX = "\n\n\ndef main():\n    print(load('x'))\n"


async def run(backend, **kw) -> tuple[CompletionResult, list[TokenEvent]]:
    job = Job(CompletionRequest(**kw))
    backend.submit(job)
    events = []
    async for ev in job:
        if isinstance(ev, TokenEvent):
            events.append(ev)
        else:
            return ev, events
    raise AssertionError("no result")


def test_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="no Hugging Face checkpoint"):
        LocalModel.load(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="cannot load"):
        LocalModel.load(tmp_path / "bad")


def test_loaded_model(tiny_lm):
    assert tiny_lm.fim.name == "starcoder"  # --fim-format override
    assert tiny_lm.tokenizer.convert_tokens_to_ids("<fim_middle>") in tiny_lm.stop_ids
    ids = tiny_lm.encode("<fim_prefix>x<fim_suffix>")
    assert ids[0] == tiny_lm.tokenizer.convert_tokens_to_ids("<fim_prefix>")  # special tokens are single tokens


async def test_kv_reuse_hit_miss_and_same_output(backend, tiny_lm):
    r1, _ = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=12)
    assert r1.tokens_reused == 0 and r1.prompt_n == r1.prompt_tokens
    # typing one more character: most of the prompt comes from the cache
    r2, _ = await run(backend, prefix=PREFIX + "d", suffix=SUFFIX, n_predict=12)
    assert r2.tokens_reused > r2.prompt_tokens // 2
    assert r2.prompt_n == r2.prompt_tokens - r2.tokens_reused
    # the same request without reuse gives the same greedy completion
    nr, _ = await run(backend, prefix=PREFIX + "d", suffix=SUFFIX, n_predict=12, use_cache=False)
    assert nr.tokens_reused == 0 and nr.content == r2.content
    # an unrelated prompt misses (at most the shared template head is reused)
    r3, _ = await run(backend, prefix="class Completely:\n    different = True\n", suffix="", n_predict=4)
    assert r3.tokens_reused <= 2
    assert backend.cache.stats.hits >= 1


async def test_suffix_first_layout_reuses_more(tiny_ckpt):
    from ghostline.daemon.engine.kvcache import PrefixCache

    lm = LocalModel.load(tiny_ckpt, fim_format="spm")
    be = LocalBackend(lm, cache=PrefixCache(), fast_path=False)
    be.start()
    try:
        await run(be, prefix=PREFIX, suffix=SUFFIX, n_predict=1)
        r, _ = await run(be, prefix=PREFIX + "da", suffix=SUFFIX, n_predict=1)
        # with the prefix last, everything up to the cursor is reused
        assert r.tokens_reused >= len(lm.encode(lm.fim.build(PREFIX, SUFFIX))) - 2
    finally:
        be.stop()


async def test_static_fast_path_matches_dynamic(tiny_lm):
    outs = []
    for fast in (False, True):
        be = LocalBackend(tiny_lm, fast_path=fast)
        assert be.fast_path is fast
        be.start()  # warm-up in the worker thread measures the rates the prefill budget needs
        assert be.runner.prefill_ms_per_token > 0 and be.runner.decode_ms_per_token > 0
        try:
            a, _ = await run(be, prefix=PREFIX, suffix=SUFFIX, n_predict=10)
            b, _ = await run(be, prefix=PREFIX + "d", suffix=SUFFIX, n_predict=10)  # reuse into the static cache
            assert b.tokens_reused > 0
            outs.append((a.content, b.content))
        finally:
            be.stop()
    assert outs[0] == outs[1]


async def test_streaming_matches_result(backend):
    res, events = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=16)
    assert len(events) >= 2
    assert "".join(e.text for e in events) == res.content
    assert res.ttft_ms > 0 and res.predicted_n == 16


async def test_warmup_n_predict_zero(backend):
    res, events = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=0)
    assert res.content == "" and not events and res.predicted_n == 0
    nxt, _ = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=4)
    assert nxt.tokens_reused == nxt.prompt_tokens - 1 and nxt.prompt_n == 1


async def test_n_cmpl_greedy_candidates_distinct(backend):
    res, events = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=6, n_cmpl=3)
    assert len(res.completions) == 3
    assert len({c.tokens[0] for c in res.completions}) == 3
    assert {e.index for e in events} == {0, 1, 2}
    one, _ = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=6)
    assert res.completions[0].content == one.content


async def test_sampling_seeded(backend):
    kw = dict(prefix=PREFIX, suffix=SUFFIX, n_predict=8, temperature=1.0, top_k=20, top_p=0.9, seed=7)
    a, _ = await run(backend, **kw)
    b, _ = await run(backend, **kw)
    assert a.content == b.content and len(a.completions[0].tokens) == 8


async def test_cancel_between_decode_steps(backend):
    job = Job(CompletionRequest(prefix=PREFIX, suffix=SUFFIX, n_predict=100_000))
    backend.submit(job)
    async for ev in job:
        assert isinstance(ev, TokenEvent)
        job.cancel()
        break
    res = await job.result()
    assert res.cancelled and res.completions[0].stop_type == "cancelled"
    assert job.released_at >= job.cancel_requested_at > 0
    assert len(res.completions[0].tokens) < 1000
    # the slot is free: the next request is served
    nxt, _ = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=2)
    assert not nxt.cancelled and nxt.predicted_n == 2


async def test_stop_word(backend):
    first, _ = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=12)
    word = first.content[3:5]
    assert word
    res, events = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=12, stop=[word])
    cut = first.content.index(word)
    assert res.content == first.content[:cut]
    assert res.completions[0].stop_type == "word" and res.completions[0].stopping_word == word
    assert "".join(e.text for e in events) == res.content


@pytest.fixture
def newline_decoder(tiny_lm, monkeypatch):
    """Make every generated token read as its own unindented line, so the line-based rules have lines to act on
    (random weights pick no newlines of their own)."""
    orig = tiny_lm.decode

    def decode(ids):
        return "".join("x" + orig([i]).strip() + "\n" for i in ids)

    monkeypatch.setattr(tiny_lm, "decode", decode)


async def test_t_max_predict_ms_stops_after_newline(backend, newline_decoder):
    res, _ = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=100_000, t_max_predict_ms=1)
    assert res.completions[0].stop_type == "limit" and res.predicted_n < 100_000


async def test_n_indent(backend, newline_decoder):
    res, _ = await run(backend, prefix=PREFIX, suffix=SUFFIX, n_predict=50, n_indent=4)
    assert res.completions[0].stop_type == "limit"
    assert res.content.count("\n") == 1 and res.content.endswith("\n")


async def test_stop_at_unit(backend, newline_decoder):
    res, _ = await run(backend, prefix="x = ", suffix="", n_predict=50, stop_at_unit=True)
    assert "\n" not in res.content and res.content


async def test_t_max_prompt_ms_truncates(backend):
    backend.runner.prefill_ms_per_token = 1.0  # pretend 1 ms per token
    extra = [ExtraChunk(f"def helper_{i}():\n    return {i}\n", f"h{i}.py") for i in range(20)]
    res, _ = await run(backend, prefix=PREFIX * 3, suffix=SUFFIX, extra=extra, n_predict=2, t_max_prompt_ms=40,
                       use_cache=False)
    assert res.truncated and res.prompt_n <= 40
    full, _ = await run(backend, prefix=PREFIX * 3, suffix=SUFFIX, extra=extra, n_predict=2, use_cache=False)
    assert not full.truncated and full.prompt_n > 40


# -- the engine facade --


async def test_engine_same_client_newer_cancels_older(backend):
    eng = Engine(backend)
    a = eng.submit(CompletionRequest(prefix=PREFIX, suffix=SUFFIX, n_predict=100_000, client_id="doc1"))
    b = eng.submit(CompletionRequest(prefix=PREFIX + "d", suffix=SUFFIX, n_predict=3, client_id="doc1"))
    c = eng.submit(CompletionRequest(prefix=PREFIX, suffix=SUFFIX, n_predict=3, client_id="doc2"))
    ra, rb, rc = await asyncio.gather(a.result(), b.result(), c.result())
    assert ra.cancelled and not rb.cancelled and not rc.cancelled
    assert eng.counters["cancelled_superseded"] == 1


async def test_engine_cancel_by_id(backend):
    eng = Engine(backend)
    job = eng.submit(CompletionRequest(prefix=PREFIX, n_predict=100_000, request_id="abc"))
    async for _ev in job:
        break
    assert eng.cancel("abc") and not eng.cancel("nope")
    assert (await job.result()).cancelled


async def test_engine_classical_without_model():
    cl = ClassicalCompleter()
    cl.add_text("frobnicate_widget frobnicate_widget")
    eng = Engine(None, cl)
    job = eng.submit(CompletionRequest(prefix="x = frobn", n_predict=10))
    res = await job.result()
    assert res.source == "classical" and res.content == "icate_widget"


async def test_engine_deadline_falls_back_to_classical(backend):
    cl = ClassicalCompleter()
    cl.add_text("deadline_value deadline_value")
    eng = Engine(backend, cl)
    job = eng.submit(CompletionRequest(prefix="y = deadline_v", n_predict=100_000, deadline_ms=30))
    res = await job.result()
    assert res.source == "classical" and res.content == "alue"
    assert eng.counters["deadline_missed"] == 1
    # the model's slot is freed too: the job was cancelled and the worker lets go of it
    assert job.cancelled and await asyncio.to_thread(job.wait_dropped, 30)


async def test_concurrent_clients_batched_decode_same_output(tiny_lm):
    """Two clients at once are decoded in one batched forward (left-padded KV, attention mask, per-row
    positions) and get the same greedy completions as when served alone."""
    alone = []
    be = LocalBackend(tiny_lm, fast_path=False, batch_decode=False)
    be.start()
    try:
        for pre in (PREFIX, "class Point:\n    def __init__(self, x):\n        self.x = x\n"):
            r, _ = await run(be, prefix=pre, suffix=SUFFIX, n_predict=12, use_cache=False)
            alone.append(r.content)
    finally:
        be.stop()
    be = LocalBackend(tiny_lm, fast_path=False, batch_decode=True)
    be.start()
    try:
        jobs = [Job(CompletionRequest(prefix=pre, suffix=SUFFIX, n_predict=12, use_cache=False))
                for pre in (PREFIX, "class Point:\n    def __init__(self, x):\n        self.x = x\n")]
        for j in jobs:
            be.submit(j)
        res = [await j.result() for j in jobs]
        assert [r.content for r in res] == alone
        assert be.counters.get("batched_steps", 0) >= 1
    finally:
        be.stop()


async def test_cancel_during_prefill_keeps_partial_kv(tiny_lm):
    """A request superseded mid-prefill leaves the prefix it computed in the cache for the next keystroke."""
    from ghostline.daemon.engine.kvcache import PrefixCache

    be = LocalBackend(tiny_lm, cache=PrefixCache(), fast_path=False, prefill_chunk=32)
    be.runner.prefill_ms_per_token = 0.0  # chunk = prefill_chunk
    long_prefix = PREFIX * 6
    job = Job(CompletionRequest(prefix=long_prefix, suffix=SUFFIX, n_predict=4))
    chunks = 0
    real_forward = tiny_lm.model.forward

    def counting_forward(*a, **kw):
        nonlocal chunks
        chunks += 1
        out = real_forward(*a, **kw)
        if chunks == 2:
            job.cancel()  # cancelled after the second prefill chunk (one during it aborts it: test_abort.py)
        return out

    tiny_lm.model.forward = counting_forward
    try:
        be.start(warmup=False)
        be.submit(job)
        res = await job.result()  # answered by the cancel itself
        assert await asyncio.to_thread(job.wait_dropped, 30)  # the worker salvaged the KV and let go
    finally:
        tiny_lm.model.forward = real_forward
    try:
        assert res.cancelled and len(be.cache) == 1
        r2, _ = await run(be, prefix=long_prefix + "x", suffix=SUFFIX, n_predict=2)
        assert r2.tokens_reused == 64
    finally:
        be.stop()


def test_fast_path_selected_only_with_cuda(tiny_lm, monkeypatch):
    import dataclasses

    import torch

    assert LocalBackend(tiny_lm).fast_path is False  # CPU: the dynamic-cache path
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu_lm = dataclasses.replace(tiny_lm, device="cuda")
    be = LocalBackend(gpu_lm)
    assert be.fast_path is True and be.runner.static_compile is True  # static KV cache + compiled (CUDA-graph) decode
    assert LocalBackend(gpu_lm, fast_path=False).fast_path is False


async def test_max_active_queues_the_rest(tiny_lm):
    be = LocalBackend(tiny_lm, fast_path=False, max_active=1)
    be.start()
    try:
        jobs = [Job(CompletionRequest(prefix=PREFIX + str(i), n_predict=3)) for i in range(3)]
        for j in jobs:
            be.submit(j)
        jobs[2].cancel()  # cancelled while waiting: released without running
        res = [await j.result() for j in jobs]
        assert [r.predicted_n for r in res[:2]] == [3, 3]
        assert res[2].cancelled
    finally:
        be.stop()
