"""Abortable forwards: a forward pass whose rows all belong to cancelled jobs stops between decoder layers, the KV
cache goes back to its state before that forward; a batched decode stops as soon as any row is cancelled, lets
that row go and redoes the step for the others.

The worker's methods are driven directly from the test (no worker thread), and the cancel is issued from inside
the forward by a pre-hook on the first decoder layer, so the abort point is deterministic."""

from __future__ import annotations

import pytest
import torch

from ghostline.daemon.engine.kvcache import PrefixCache
from ghostline.daemon.engine.local import LocalBackend
from ghostline.daemon.engine.model import decoder_layers, truncate_cache
from ghostline.daemon.engine.runner import ForwardAborted, kv_layers
from ghostline.daemon.engine.types import CompletionRequest, Job

PREFIX = "import os\n\n\ndef load(path):\n    with open(path) as f:\n        data = f.read()\n    return data\n" * 6
SUFFIX = "\n\n\ndef main():\n    print(load('x'))\n"


def req(n_predict: int = 40, prefix: str = PREFIX) -> CompletionRequest:
    return CompletionRequest(prefix=prefix, suffix=SUFFIX, n_predict=n_predict)


class Probe:
    """Pre-hooks on the first and the last decoder layer: `cancel` (jobs to cancel once the first layer sees an
    input matching `when`) and a record of the input shapes the last layer saw."""

    def __init__(self, model):
        layers = decoder_layers(model)
        assert len(layers) >= 2
        self.cancel: list[Job] = []
        self.when = lambda hidden: False
        self.fired = 0
        self.last_seen: list[tuple[int, ...]] = []
        self.handles = [layers[0].register_forward_pre_hook(self._first),
                        layers[-1].register_forward_pre_hook(self._last)]

    def _first(self, _m, args):
        if self.cancel and self.when(args[0]):
            for j in self.cancel:
                j.cancel()
            self.cancel = []
            self.fired += 1

    def _last(self, _m, args):
        self.last_seen.append(tuple(args[0].shape))

    def remove(self):
        for h in self.handles:
            h.remove()


@pytest.fixture
def be(tiny_lm):
    # no worker thread: the test drives admission and decode steps itself
    b = LocalBackend(tiny_lm, cache=PrefixCache(max_bytes=64 * 2**20), fast_path=False, prefill_chunk=1024)
    b.runner.install_abort_hooks()
    probe = Probe(tiny_lm.model)
    b.probe = probe
    yield b
    probe.remove()
    b.stop()


def run_to_end(b: LocalBackend, job: Job) -> list[int]:
    with torch.inference_mode():
        st = b.admit(job, static_free=True)
        assert st is not None
        while not b.step(st):
            pass
    assert job.done and not job.cancelled
    return st.ids[0]


async def test_decoder_layers_found(tiny_lm):
    layers = decoder_layers(tiny_lm.model)
    assert layers == list(tiny_lm.model.model.layers)


async def test_cancel_during_a_prefill_chunk_aborts_within_the_chunk(be):
    job = Job(req())
    be.probe.cancel = [job]
    be.probe.when = lambda h: h.shape[1] > 1  # the prefill chunk (one chunk: prefill_chunk=1024)
    with torch.inference_mode():
        assert be.admit(job, static_free=True) is None
    assert be.probe.fired == 1
    assert be.probe.last_seen == []  # the last decoder layer never ran: aborted between layers
    assert job.cancelled and job.dropped
    assert be.counters["aborted_forwards"] == 1 and be.counters["cancelled"] == 1
    assert be.cache.stats.inserts == 0  # nothing was computed before the aborted chunk: nothing to salvage


async def test_prefill_abort_salvages_the_chunks_before_and_next_request_matches(be, tiny_lm):
    be.runner.prefill_chunk = 32
    n_prompt = len(be.builder.build(req(), n_ctx=tiny_lm.n_ctx - 40).tokens)
    assert n_prompt > 96
    job = Job(req())
    calls = {"n": 0}

    def third_chunk(h):
        calls["n"] += 1
        return calls["n"] == 3

    be.probe.cancel = [job]
    be.probe.when = third_chunk
    with torch.inference_mode():
        assert be.admit(job, static_free=True) is None
    assert be.counters["aborted_forwards"] == 1 and job.dropped
    assert len(be.probe.last_seen) == 2  # two whole chunks ran; the third stopped after its first layer
    # the salvaged entry covers exactly the two finished chunks, in every layer
    entries = list(be.cache._entries.values())
    assert len(entries) == 1 and len(entries[0].tokens) == 64
    assert {k.shape[2] for k, _v in entries[0].kv} == {64} and {v.shape[2] for _k, v in entries[0].kv} == {64}
    # a request reusing that prefix produces exactly the tokens of a backend that never saw the abort
    after = Job(req(n_predict=12))
    got = run_to_end(be, after)
    assert after.partial.tokens_reused == 64
    fresh = LocalBackend(tiny_lm, cache=PrefixCache(), fast_path=False, prefill_chunk=32)
    want = run_to_end(fresh, Job(req(n_predict=12)))
    assert got == want and len(got) > 0


async def test_decode_abort_restores_the_kv_cache_to_its_pre_forward_length(be, tiny_lm):
    job = Job(req(n_predict=1000))
    with torch.inference_mode():
        st = be.admit(job, static_free=True)
        for _ in range(5):
            assert not be.step(st)
        n_before = len(st.prompt) + st.n_steps  # the KV length before the next decode forward
        cache = st.cache
        before = [(k.clone(), v.clone()) for k, v in kv_layers(cache)]
        assert {k.shape[2] for k, _ in before} == {n_before}
        be.probe.cancel = [job]
        be.probe.when = lambda h: h.shape[1] == 1
        assert be.step(st) is True  # consumed the last token, then its forward was aborted
    assert be.probe.fired == 1 and be.counters["aborted_forwards"] == 1 and job.dropped
    for (k0, v0), (k1, v1) in zip(before, kv_layers(cache), strict=True):
        assert torch.equal(k0, k1) and torch.equal(v0, v1)
    # the salvaged prefix (prompt + the generated tokens fed back) is reused and continues identically
    entry = max(be.cache._entries.values(), key=lambda e: len(e.tokens))
    assert len(entry.tokens) == n_before and {k.shape[2] for k, _v in entry.kv} == {n_before}


async def test_truncate_cache_after_an_aborted_forward(be, tiny_lm):
    from transformers import DynamicCache

    ids = torch.tensor([tiny_lm.encode(PREFIX)[:40]])
    with torch.inference_mode():
        ref_cache = DynamicCache()
        ref = tiny_lm.call(ref_cache, input_ids=ids, use_cache=True).logits
        cache = DynamicCache()
        tiny_lm.call(cache, input_ids=ids[:, :24], use_cache=True)
        job = Job(req())
        be.probe.when = lambda h: True
        be.probe.cancel = [job]
        with pytest.raises(ForwardAborted):
            be.runner.forward((job,), cache, input_ids=ids[:, 24:], position_ids=torch.arange(24, 40).unsqueeze(0),
                              use_cache=True)
        lens = [layer.keys.shape[2] for layer in cache.layers]
        assert lens[0] == 40 and lens[-1] == 24  # the first layer grew, the last did not
        truncate_cache(cache, 24)
        assert [layer.keys.shape[2] for layer in cache.layers] == [24] * len(lens)
        out = tiny_lm.call(cache, input_ids=ids[:, 24:], position_ids=torch.arange(24, 40).unsqueeze(0),
                           use_cache=True).logits
    torch.testing.assert_close(out, ref[:, 24:], rtol=1e-4, atol=1e-4)
    for a, b in zip(kv_layers(cache), kv_layers(ref_cache), strict=True):
        torch.testing.assert_close(a[0], b[0], rtol=1e-4, atol=1e-4)


async def test_batched_decode_drops_a_cancelled_row_at_once_and_redoes_the_live_rows(be, tiny_lm):
    b_req = req(n_predict=10, prefix=PREFIX + "x = 1\n")
    a, b = Job(req(n_predict=1000)), Job(b_req)
    with torch.inference_mode():
        sa, sb = be.admit(a, static_free=True), be.admit(b, static_free=True)
        assert be.step_batch([sa, sb]) == []  # first round: both consume, one batched forward
        be.probe.last_seen.clear()
        be.probe.cancel = [a]  # `a` is cancelled inside the next batched forward; `b` is live
        be.probe.when = lambda h: h.shape[0] == 2
        finished = be.step_batch([sa, sb])
        # the batch stopped between layers; `a` was let go in that same round; `b` redid its step alone
        assert finished == [sa] and be.probe.fired == 1 and a.dropped
        assert be.probe.last_seen == [(1, 1, tiny_lm.model.config.hidden_size)]
        assert be.counters["aborted_forwards"] == 1 and not b.done
        while be.step_batch([sb]) != [sb]:
            pass
    assert b.done and not b.cancelled
    # `b` lost nothing: its tokens are those of a backend that never saw the abort
    fresh = LocalBackend(tiny_lm, cache=PrefixCache(), fast_path=False, prefill_chunk=1024)
    assert sb.ids[0] == run_to_end(fresh, Job(b_req)) and len(sb.ids[0]) > 0


async def test_batched_decode_with_every_row_cancelled_is_aborted(be, tiny_lm):
    a, b = Job(req(n_predict=1000)), Job(req(n_predict=1000, prefix=PREFIX + "x = 1\n"))
    with torch.inference_mode():
        sa, sb = be.admit(a, static_free=True), be.admit(b, static_free=True)
        assert be.step_batch([sa, sb]) == []
        lens = [[k.shape[2] for k, _ in kv_layers(s.cache)] for s in (sa, sb)]
        be.probe.last_seen.clear()
        be.probe.cancel = [a, b]
        be.probe.when = lambda h: h.shape[0] == 2
        finished = be.step_batch([sa, sb])
    assert finished == [sa, sb] and a.dropped and b.dropped
    assert be.probe.last_seen == [] and be.counters["aborted_forwards"] == 2
    # each job's own KV cache was untouched by the aborted (padded, copied) batch
    assert [[k.shape[2] for k, _ in kv_layers(s.cache)] for s in (sa, sb)] == lens


async def test_after_a_decode_abort_the_same_prompt_decodes_as_on_a_fresh_backend(be, tiny_lm):
    job = Job(req(n_predict=1000))
    with torch.inference_mode():
        st = be.admit(job, static_free=True)
        for _ in range(3):
            assert not be.step(st)
        be.probe.cancel = [job]
        be.probe.when = lambda h: h.shape[1] == 1
        assert be.step(st) is True
    assert be.counters["aborted_forwards"] == 1
    nxt = Job(req(n_predict=12))
    got = run_to_end(be, nxt)
    assert nxt.partial.tokens_reused > 0
    want = run_to_end(LocalBackend(tiny_lm, cache=PrefixCache(), fast_path=False, prefill_chunk=1024),
                      Job(req(n_predict=12)))
    assert got == want and len(got) > 0


async def test_cancelled_jobs_waiting_for_admission_are_dropped_during_another_prefill(be):
    be.runner.prefill_chunk = 32
    behind, waiting, queued, live = Job(req()), Job(req()), Job(req()), Job(req())
    new, pending = [behind], [waiting, live]
    be.scheduler.waiting = (pending, new)
    be.submit(queued)
    for j in (behind, waiting, queued):
        j.cancel()
    with torch.inference_mode():
        st = be.admit(Job(req(n_predict=4)), static_free=True)
    assert st is not None
    assert behind.dropped and waiting.dropped and queued.dropped and not live.done
    assert new == [] and pending == [live] and be.counters["cancelled"] == 3


async def test_an_idle_job_cancelled_during_another_jobs_prefill_is_let_go_between_layers(be, tiny_lm):
    a = Job(req(n_predict=1000))
    b = Job(req(n_predict=4, prefix=PREFIX + "y = 2\n"))
    with torch.inference_mode():
        sa = be.admit(a, static_free=True)
        assert not be.step(sa)
        be.scheduler.active = [sa]  # what the worker loop shares with the abort hook
        seen_at_last_layer = []
        handle = decoder_layers(tiny_lm.model)[-1].register_forward_pre_hook(
            lambda _m, _a: seen_at_last_layer.append(a.dropped))
        try:
            be.probe.cancel = [a]  # `a` is cancelled while `b`'s prefill chunk is in its first layer
            be.probe.when = lambda h: h.shape[1] > 1
            sb = be.admit(b, static_free=True)
        finally:
            handle.remove()
    assert sb is not None and not b.cancelled  # b's prefill ran to the end
    # `a` was let go before the chunk's last layer ran, with its KV state salvaged, exactly once
    assert seen_at_last_layer[0] is True and sa.released and a.dropped
    assert be.counters["cancelled"] == 1 and be.counters.get("aborted_forwards", 0) == 0
    assert [len(e.tokens) for e in be.cache._entries.values()] == [len(sa.prompt) + sa.n_steps - 1], (len(sa.prompt), sa.n_steps)
    with torch.inference_mode():
        assert be.step(sa) is True  # the worker loop's next look at it: already gone, nothing twice
    assert be.counters["cancelled"] == 1
