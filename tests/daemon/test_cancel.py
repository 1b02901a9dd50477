"""Cancellation frees the slot without waiting for the forward pass in flight: the Job state machine (answered
once, by whichever side gets there first; nothing streamed after the answer) and the local worker with a forward
that blocks on an Event."""

from __future__ import annotations

import asyncio
import threading

from ghostline.daemon.engine.kvcache import PrefixCache
from ghostline.daemon.engine.local import LocalBackend
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult, Job, TokenEvent

PREFIX = "import os\n\n\ndef load(path):\n    with open(path) as f:\n        data = f.read()\n    return data"
SUFFIX = "\n\n\ndef main():\n    print(load('x'))\n"


async def drain(job: Job) -> list[TokenEvent | CompletionResult]:
    out = []
    async for ev in job:
        out.append(ev)
        if isinstance(ev, CompletionResult):
            break
    return out


# -- the Job state machine --


async def test_cancel_answers_at_once_with_streamed_text_and_in_order():
    job = Job(CompletionRequest(n_cmpl=2), model="m", n_ctx=99)
    job.emit(0, "ab")
    job.emit(1, "x")
    job.emit(0, "c")
    assert job.cancel() is True
    assert job.done and job.cancelled and not job.dropped
    assert job.released_at >= job.cancel_requested_at > 0
    job.emit(0, "late")  # the worker's output after the answer never reaches the client
    events = await drain(job)
    assert [e.text for e in events[:-1]] == ["ab", "x", "c"]  # token events first, then the result
    res = events[-1]
    assert res.cancelled and res.model == "m" and res.n_ctx == 99
    assert [c.content for c in res.completions] == ["abc", "x"]
    assert {c.stop_type for c in res.completions} == {"cancelled"}
    # the worker's own finish later is not delivered again; it marks the job dropped
    job.finish(CompletionResult([Completion("other", [], "eos")]))
    assert job.dropped and job.dropped_at >= job.released_at
    assert (await job.result()) is res
    assert job.cancel() is False  # a second cancel changes nothing


async def test_worker_finish_first_wins_over_later_cancel():
    job = Job(CompletionRequest())
    done = CompletionResult([Completion("ok", [], "eos")])
    job.finish(done)
    assert job.cancel() is False
    assert (await job.result()) is done and not done.cancelled


async def test_cancel_with_stand_in_result_and_partial_stats():
    job = Job(CompletionRequest())
    job.partial = CompletionResult([], model="w", prompt_tokens=50, tokens_reused=40, prompt_n=10)
    stand_in = CompletionResult([Completion("classical", [], "eos")], source="classical")
    assert job.cancel(result=stand_in)
    assert (await job.result()) is stand_in
    job2 = Job(CompletionRequest())
    job2.partial = CompletionResult([], model="w", prompt_tokens=50, tokens_reused=40, prompt_n=10)
    job2.cancel()
    r = await job2.result()
    assert r.cancelled and r.tokens_reused == 40 and r.prompt_tokens == 50 and r is not job2.partial


async def test_cancel_and_finish_race_deliver_exactly_once():
    for _ in range(50):
        job = Job(CompletionRequest())
        results: list[CompletionResult] = []
        delivered = asyncio.Event()

        def on_answer(f: asyncio.Future[CompletionResult], out: list[CompletionResult] = results,
                      answered: asyncio.Event = delivered) -> None:
            out.append(f.result())
            answered.set()

        job._future.add_done_callback(on_answer)
        t = threading.Thread(target=job.finish, args=(CompletionResult([Completion("w", [], "eos")]),))
        t.start()
        job.cancel()
        t.join()
        await job.result()
        await delivered.wait()
        assert len(results) == 1 and job._queue.qsize() == 1 and job.dropped


# -- the local worker, with a forward pass that blocks --


class BlockingForward:
    """Wraps model.forward: once armed, the next forward call blocks until `gate` is set."""

    def __init__(self, model):
        self.model = model
        self.real = model.forward
        self.armed = threading.Event()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self, *a, **kw):
        if self.armed.is_set() and not self.gate.is_set():
            self.entered.set()
            self.gate.wait(30)
        return self.real(*a, **kw)

    def __enter__(self):
        self.model.forward = self
        return self

    def __exit__(self, *exc):
        self.gate.set()
        self.model.forward = self.real


async def test_cancel_releases_without_waiting_for_the_forward_in_flight(tiny_lm):
    be = LocalBackend(tiny_lm, cache=PrefixCache(), fast_path=False, max_active=1)
    with BlockingForward(tiny_lm.model) as fwd:
        be.start(warmup=False)
        try:
            eng = Engine(be)
            a = eng.submit(CompletionRequest(prefix=PREFIX, suffix=SUFFIX, n_predict=100_000, client_id="doc"))
            assert await asyncio.to_thread(a.generating.wait, 30)  # decoding has begun
            fwd.armed.set()
            assert await asyncio.to_thread(fwd.entered.wait, 30)  # a decode forward is now stuck in flight
            # the next keystroke supersedes it: the old job is answered while that forward is still running
            b = eng.submit(CompletionRequest(prefix=PREFIX + "\n", suffix=SUFFIX, n_predict=3, client_id="doc"))
            assert a.done and a.cancelled and not a.dropped  # answered by the cancel itself, synchronously
            ra = await a.result()
            assert ra.cancelled and ra.completions[0].stop_type == "cancelled"
            assert not fwd.gate.is_set() and not a.dropped  # the worker has not let go yet
            assert a.released_at >= a.cancel_requested_at > 0
            assert list(eng.cancel_latencies_ms) and not list(eng.drop_latencies_ms)
            assert eng.metrics()["active_requests"] == 1  # only the new request; the old one's seat is free
            fwd.gate.set()
            assert await asyncio.to_thread(a.wait_dropped, 30)
            rb = await b.result()
            # the superseding request was admitted (max_active=1) and reused the cancelled one's KV state
            assert not rb.cancelled and rb.predicted_n == 3
            assert rb.tokens_reused >= len(tiny_lm.encode(PREFIX)) // 2
            assert len(eng.drop_latencies_ms) == 1 and be.counters["cancelled"] == 1
        finally:
            be.stop()
