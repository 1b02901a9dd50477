"""Requests, results and streaming events shared by every backend (local model, remote server, classical)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ghostline.daemon.engine.fim import ExtraChunk

_ids = itertools.count(1)


def new_request_id() -> str:
    return f"req-{next(_ids)}-{int(time.time() * 1000) % 100000}"


@dataclass
class CompletionRequest:
    """One completion. `prefix` is all text before the cursor (llama.cpp: input_prefix + prompt)."""

    prefix: str = ""
    suffix: str = ""
    extra: list[ExtraChunk] = field(default_factory=list)
    filename: str = ""
    repo_name: str = ""
    raw_prompt: str | None = None  # /completion: the prompt as-is, no FIM template
    n_predict: int = 128  # 0: only warm the cache; < 0: up to the context window
    n_indent: int = 0
    t_max_prompt_ms: float = 0.0  # 0: no bound
    t_max_predict_ms: float = 0.0
    temperature: float = 0.0  # greedy by default
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    n_cmpl: int = 1
    stop: list[str] = field(default_factory=list)
    stop_at_unit: bool = False  # stop at the end of the line/block (by indentation)
    cache_prompt: bool = True
    client_id: str = ""  # a newer request with the same non-empty client_id cancels the older one
    request_id: str = field(default_factory=new_request_id)
    deadline_ms: float = 0.0  # > 0: answer from the classical completer if the model has not finished by then
    use_cache: bool | None = None  # per-request override of the engine's KV reuse (benchmarks)
    stream: bool = True  # the client reads the token events (else only the final answer counts)
    priority: int = 0  # < 0: background work (a prefetch) that yields to every request a user waits for
    reports_outcomes: bool = False  # the client posts accepted/typed_through/dismissed itself (the LSP bridge)


@dataclass
class Completion:
    content: str = ""
    tokens: list[int] = field(default_factory=list)
    stop_type: str = "none"  # llama.cpp: none | eos | limit | word ; plus: cancelled
    stopping_word: str = ""


@dataclass
class CompletionResult:
    completions: list[Completion]
    model: str = ""
    source: str = "model"  # model | classical | remote
    prompt_tokens: int = 0  # tokens in the prompt (llama.cpp tokens_evaluated)
    prompt_n: int = 0  # prompt tokens actually computed (not reused from the KV cache)
    tokens_reused: int = 0  # prompt tokens served from the KV cache
    tokens_cached: int = 0  # tokens in the KV state after this request (llama.cpp n_past)
    prompt_ms: float = 0.0
    predicted_n: int = 0
    predicted_ms: float = 0.0
    ttft_ms: float = 0.0  # submit -> first token
    queue_ms: float = 0.0
    truncated: bool = False
    cancelled: bool = False
    deadline_missed: bool = False  # the model missed the request's deadline: this is the classical stand-in
    n_ctx: int = 0
    error: str = ""

    @property
    def content(self) -> str:
        return self.completions[0].content if self.completions else ""

    def timings(self) -> dict[str, Any]:
        pn, pms, gn, gms = self.prompt_n, self.prompt_ms, self.predicted_n, self.predicted_ms
        return {
            "prompt_n": pn,
            "prompt_ms": pms,
            "prompt_per_token_ms": pms / pn if pn else 0.0,
            "prompt_per_second": 1e3 * pn / pms if pms > 0 else 0.0,
            "predicted_n": gn,
            "predicted_ms": gms,
            "predicted_per_token_ms": gms / gn if gn else 0.0,
            "predicted_per_second": 1e3 * gn / gms if gms > 0 else 0.0,
        }


@dataclass
class TokenEvent:
    """A piece of streamed text for candidate `index`."""

    index: int
    text: str


class Guard(Protocol):
    """Post-processing between the worker and the client (daemon.engine.guard.SuggestionGuard)."""

    def feed(self, index: int, piece: str) -> str: ...

    def finish(self, result: CompletionResult, *, follows_stream: bool = True) -> tuple[CompletionResult,
                                                                                       dict[int, str]]: ...


class Job:
    """A submitted request: stream its events with `async for`, or `await job.result()`; `cancel()` any time.

    State machine (every transition under `_lock`, so the cancelling thread and the worker never both answer):

        running --cancel()--> answered as cancelled (released) --worker lets go--> dropped
        running --worker finish()--> answered (released and dropped)

    "Released" (`released_at`) is what "a cancel frees the slot" means: the job is finished -- its client is
    answered with the cancelled result (the text streamed so far) -- and it no longer holds a seat in the
    backend's `max_active` (the worker counts only jobs that are not cancelled), so the superseding request is
    admitted at the worker's next step boundary without waiting for the cancelled one. `cancel()` does that at once,
    in the cancelling thread; it does not wait for the forward pass in flight. "Dropped" (`dropped_at`) is when
    the worker itself let go of the job (its row leaves the batch, its KV state is salvaged into the prefix
    cache); the worker never answers or streams for the job again. The local backend aborts the forward in flight
    at its next decoder layer when every row it computes belongs to cancelled jobs (dynamic-cache path; the KV
    cache goes back to its state before that forward); otherwise -- a batch with a live client's row, or the GPU
    static-cache path -- the worker lets go after that forward.

    The worker side (a thread, or a task for remote backends) calls `emit`/`finish` from any thread.
    """

    def __init__(self, request: CompletionRequest, loop: asyncio.AbstractEventLoop | None = None, *,
                 model: str = "", n_ctx: int = 0):
        self.request = request
        self.loop = loop or asyncio.get_running_loop()
        self.model = model
        self.n_ctx = n_ctx
        self.cancel_event = threading.Event()
        self.cancel_requested_at: float = 0.0
        self.released_at: float = 0.0  # when the job was answered and its seat freed (after a cancel: the latency)
        self.dropped_at: float = 0.0  # when the worker let go of it (forward in flight aborted or done, KV salvaged)
        self.submitted_at = time.perf_counter()
        self.first_token_at: float = 0.0
        # what the worker knows so far (prompt sizes, reuse), set at admission; a cancelled answer copies it
        self.partial: CompletionResult | None = None
        self.on_dropped: Callable[[Job], None] | None = None
        # every piece of text and the final answer pass it (filters, the credential scanner); None: as they are
        self.guard: Guard | None = None
        self._lock = threading.Lock()
        self._texts: dict[int, list[str]] = {}  # streamed text per candidate (for the cancelled answer)
        self._queue: asyncio.Queue[TokenEvent | CompletionResult] = asyncio.Queue()
        self._future: asyncio.Future[CompletionResult] = self.loop.create_future()
        self._done = threading.Event()
        self._dropped = threading.Event()
        # the backend produced its first text (what the client sees may be held back longer: see `guard`)
        self.generating = threading.Event()

    @property
    def id(self) -> str:
        return self.request.request_id

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def done(self) -> bool:
        """Answered (a result was delivered or is on its way to the event loop)."""
        return self._done.is_set()

    @property
    def dropped(self) -> bool:
        """The backend holds nothing for this job any more."""
        return self._dropped.is_set()

    def wait_dropped(self, timeout: float | None = None) -> bool:
        return self._dropped.wait(timeout)

    def cancel(self, result: CompletionResult | None = None) -> bool:
        """Cancel from any thread and, unless already answered, answer at once: with `result` (a stand-in such
        as the deadline's classical completion) or with the cancelled result (the text streamed so far). The
        worker lets go at its next step boundary. True when this call answered the job."""
        with self._lock:
            if not self.cancel_event.is_set():
                self.cancel_requested_at = time.perf_counter()
                self.cancel_event.set()
            if self._done.is_set():
                return False
            if result is None:
                result = self._cancelled_result()
            self._settle(result)
            return True

    def _cancelled_result(self) -> CompletionResult:
        n = max(1, self.request.n_cmpl, *(i + 1 for i in self._texts))
        comps = [Completion("".join(self._texts.get(i, [])), [], "cancelled") for i in range(n)]
        p = self.partial
        if p is not None:
            res = dataclasses.replace(p, completions=comps, cancelled=True)
        else:
            res = CompletionResult(comps, model=self.model, n_ctx=self.n_ctx, cancelled=True)
        if self.first_token_at:
            res.ttft_ms = (self.first_token_at - self.submitted_at) * 1e3
        return res

    # -- worker side (thread-safe) --
    def emit(self, index: int, text: str) -> None:
        if not text:
            return
        self.generating.set()
        with self._lock:
            if self._done.is_set():  # answered (cancelled): nothing more reaches the client
                return
            if self.guard is not None:
                text = self.guard.feed(index, text)
                if not text:
                    return
            self._put_text(index, text)

    def _put_text(self, index: int, text: str) -> None:
        # caller holds _lock
        if not self.first_token_at:
            self.first_token_at = time.perf_counter()
        self._texts.setdefault(index, []).append(text)
        self._call(self._queue.put_nowait, TokenEvent(index, text))

    def finish(self, result: CompletionResult) -> None:
        """The worker is done with the job: deliver `result` unless the job was already answered (by `cancel`),
        and mark it dropped. Never delivers twice."""
        with self._lock:
            if not self._done.is_set():
                self._settle(result)
        self.drop()

    def drop(self) -> None:
        """The worker let go of the job (idempotent)."""
        with self._lock:
            if self._dropped.is_set():
                return
            self.dropped_at = time.perf_counter()
            self._dropped.set()
        cb = self.on_dropped
        if cb is not None:
            try:
                cb(self)
            except Exception:  # a metrics hook must never break the worker
                pass

    def _settle(self, result: CompletionResult) -> None:
        # caller holds _lock; scheduled after every event emitted before it (the loop runs callbacks in order)
        if self.guard is not None and not result.cancelled:
            try:
                result, tails = self.guard.finish(result, follows_stream=not result.deadline_missed)
            except Exception:  # a bug in post-processing must not hang the client: answer without the text
                result = dataclasses.replace(result, completions=[Completion("", [], "none")],
                                             error="post-processing failed")
                tails = {}
            if not result.deadline_missed:  # a stand-in answer is not streamed (the model's partial stream stays)
                for i, tail in sorted(tails.items()):
                    self._put_text(i, tail)
        self.released_at = time.perf_counter()
        self._done.set()
        self._call(self._finish, result)

    def _finish(self, result: CompletionResult) -> None:
        self._queue.put_nowait(result)
        if not self._future.done():
            self._future.set_result(result)

    def _call(self, fn: Any, *args: Any) -> None:
        # always through the loop's queue (also from the loop's own thread), so a cancel answered from the
        # loop thread lands after the token events the worker scheduled before it
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed: nobody is listening any more
            pass

    # -- consumer side --
    def add_done_callback(self, fn: Callable[[asyncio.Future[CompletionResult]], None]) -> None:
        """Call fn(future) on the event loop once the job is answered (or cancelled)."""
        self._future.add_done_callback(fn)

    async def result(self) -> CompletionResult:
        return await asyncio.shield(self._future)

    def __aiter__(self) -> Job:
        return self

    async def __anext__(self) -> TokenEvent | CompletionResult:
        if self._queue.empty() and self._future.done() and getattr(self, "_drained", False):
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, CompletionResult):
            self._drained = True
        return item
