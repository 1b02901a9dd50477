"""The engine facade the server talks to: submit requests, cancel by id or by client, fall back to classical
completions with no model or past a deadline, and keep counters for /metrics."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from ghostline.daemon.engine.classical import ClassicalCompleter
from ghostline.daemon.engine.guard import GuardReport, SuggestionGuard
from ghostline.daemon.engine.prefetch import Prefetcher
from ghostline.daemon.engine.resultcache import Hit, ResultCache
from ghostline.daemon.engine.secrets import SecretScanner
from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult, Job


class Backend(Protocol):
    kind: str
    counters: dict[str, float]
    busy: bool

    @property
    def name(self) -> str: ...

    n_ctx: Any

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def submit(self, job: Job) -> None: ...


class Engine:
    def __init__(self, backend: Backend | None = None, classical: ClassicalCompleter | None = None, *,
                 default_deadline_ms: float = 0.0, model_alias: str = "", context: Any = None,
                 scanner: SecretScanner | None = None):
        self.backend = backend
        # every suggestion passes it before it is answered (daemon.engine.guard)
        self.scanner = scanner or SecretScanner()
        self.classical = classical or ClassicalCompleter()
        # daemon.context.RepoContext: repository snippets ahead of the editor's extra chunks (None: none)
        self.context = context
        self.default_deadline_ms = default_deadline_ms
        self.model_alias = model_alias
        self._jobs: dict[str, Job] = {}
        self._by_client: dict[str, Job] = {}
        self.started_at = time.time()
        self.counters: dict[str, float] = {
            "requests_total": 0, "cancelled_superseded": 0, "cancelled_explicit": 0, "classical_served": 0,
            "deadline_missed": 0, "secrets_blocked": 0,
        }
        self.scan_ms: deque[float] = deque(maxlen=2048)  # the credential scanner's time per answered request
        self.counters.update(cache_hits=0, cache_typed_through=0)
        self.results = ResultCache()
        self.prefetch = Prefetcher(self.counters)
        # (request id, accepted | typed_through | dismissed, characters): outcomes inferred for clients that do
        # not report them (the server records them in the telemetry)
        self.on_outcome: Callable[[str, str, int], None] | None = None
        self.latencies_ms: deque[float] = deque(maxlen=2048)
        # cancel requested -> job released: answered as cancelled and its backend seat free (see Job); the
        # cancelling side does this at once, so it does not wait for the forward pass in flight
        self.cancel_latencies_ms: deque[float] = deque(maxlen=2048)
        # cancel requested -> the backend's worker let go of the job (after its forward in flight; KV salvaged):
        # how long a cancelled job still costs compute (appended from the worker thread; deque.append is atomic)
        self.drop_latencies_ms: deque[float] = deque(maxlen=2048)

    # -- info --
    @property
    def model_name(self) -> str:
        if self.model_alias:
            return self.model_alias
        return self.backend.name if self.backend is not None else "ghostline-classical"

    @property
    def n_ctx(self) -> int:
        return int(self.backend.n_ctx) if self.backend is not None else 0

    @property
    def kind(self) -> str:
        return self.backend.kind if self.backend is not None else "classical"

    def start(self) -> None:
        if self.context is not None:
            self.context.start()
        if self.backend is not None:
            self.backend.start()

    async def aclose(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel()
        if self.backend is not None:
            aclose = getattr(self.backend, "aclose", None)
            if aclose is not None:
                await aclose()
            else:
                await asyncio.to_thread(self.backend.stop)
        if self.context is not None:
            await asyncio.to_thread(self.context.stop)

    def running_for(self, client_id: str) -> Job | None:
        """The client's unanswered job, which its next request will supersede (cancel)."""
        job = self._by_client.get(client_id) if client_id else None
        return job if job is not None and not job.done else None

    # -- requests --
    def submit(self, req: CompletionRequest) -> Job:
        """Answer `req`: from the result cache when the user typed the start of a suggestion on screen (or came
        back to its place), by following a prefetch already computing this place, else from the backend (the
        classical completer without one). A request of a document supersedes the running one of the same
        document; any request a user waits for cancels background prefetches it cannot use."""
        job = Job(req, model=self.model_name, n_ctx=self.n_ctx)
        job.on_dropped = self._dropped
        job.guard = SuggestionGuard(req, self.scanner, stream=req.stream)
        self.counters["requests_total"] += 1
        if req.priority >= 0:
            self._supersede(job)
        self._jobs[req.request_id] = job
        job.add_done_callback(lambda _f, j=job: self._done(j))
        self._feed_classical(req)
        if req.priority >= 0 and req.n_predict != 0:
            self._report(self.results.settle(req))
            followed = self.prefetch.yield_to(req)
            hit = self.results.lookup(req)
            if hit is not None:
                self._serve_cached(job, hit)
                return job
            if followed is not None:
                self.prefetch.follow(followed, job, lambda: self._to_backend(job))
                return job
        self._to_backend(job)
        return job

    def _supersede(self, job: Job) -> None:
        cid = job.request.client_id
        if not cid:
            return
        old = self._by_client.get(cid)
        if old is not None and not old.done:
            old.cancel()
            self.counters["cancelled_superseded"] += 1
        self._by_client[cid] = job

    def _feed_classical(self, req: CompletionRequest) -> None:
        """What the editor sent, to the classical completer (open buffers beat the repository) when it may answer:
        no model, or a deadline after which it stands in."""
        if self.backend is not None and not (req.deadline_ms or self.default_deadline_ms):
            return
        if req.raw_prompt is None and (req.prefix or req.suffix):
            self.classical.update_buffer(req.filename or req.client_id or "<buffer>", req.prefix + req.suffix)
        for ch in req.extra:
            if ch.filename:
                self.classical.update_buffer(ch.filename, ch.text)

    def _to_backend(self, job: Job) -> None:
        req = job.request
        if self.backend is None:
            self._serve_classical(job)
            return
        if self.context is not None and req.raw_prompt is None and (req.prefix or req.suffix):
            from ghostline.daemon.context import merge_extra

            # never blocks: the snippets ready for this place in the document (computed in the background)
            repo = self.context.chunks_for(req.filename or req.client_id or "<buffer>", req.prefix + req.suffix,
                                           req.prefix.count("\n") + 1)
            req.extra = merge_extra(repo, req.extra)
        self.backend.submit(job)
        deadline = req.deadline_ms or self.default_deadline_ms
        if deadline > 0 and req.n_predict != 0 and req.priority >= 0:
            job.loop.call_later(deadline / 1e3, self._deadline, job)

    def _serve_cached(self, job: Job, hit: Hit) -> None:
        """The rest of a stored suggestion (already post-processed when it was stored), without the engine."""
        job.guard = None
        self.counters["cache_hits"] += 1
        self.counters["cache_typed_through"] += hit.typed > 0
        self._report(self.results.shown(job.request, hit.entry))
        job.emit(0, hit.rest)
        job.finish(CompletionResult([Completion(hit.rest, [], "eos")], model=self.model_name, source="cache",
                                    n_ctx=self.n_ctx))

    def chat_prompt(self, messages: list[dict[str, str]]) -> tuple[str, list[str]]:
        """A chat's prompt under the model's chat template, and the strings that end its turn. ValueError when the
        backend has no chat (classical completions, a remote server)."""
        fn = getattr(self.backend, "chat_prompt", None)
        if fn is None:
            raise ValueError(f"chat needs a local model; this daemon serves {self.kind} completions")
        return fn(messages)

    def accepted(self, request_id: str) -> bool:
        """The client inserted the suggestion of `request_id`: compute the next one in the background (it yields to
        every request a user waits for). True when a prefetch started."""
        return self.backend is not None and self.prefetch.after_accept(request_id, self)

    def _report(self, outcomes: list[tuple[str, str, int]]) -> None:
        if self.on_outcome is not None:
            for rid, event, chars in outcomes:
                self.on_outcome(rid, event, chars)

    def _done(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
        cid = job.request.client_id
        if cid and self._by_client.get(cid) is job:
            del self._by_client[cid]
        res = job._future.result()
        if isinstance(job.guard, SuggestionGuard):
            self._count_guard(job.guard.report)
        self._remember(job, res)
        if not res.cancelled:
            self.latencies_ms.append((time.perf_counter() - job.submitted_at) * 1e3)
        # only cancels that released the job (not a cancel arriving after it was answered)
        if job.cancel_requested_at and job.released_at >= job.cancel_requested_at:
            self.cancel_latencies_ms.append((job.released_at - job.cancel_requested_at) * 1e3)

    def _remember(self, job: Job, res: CompletionResult) -> None:
        """A suggestion the backend finished goes into the result cache (and is what its document shows now)."""
        req = job.request
        if res.cancelled or res.error or res.source not in ("model", "remote") or not res.completions:
            return
        entry = self.results.store(req, res.content)
        if req.priority >= 0:
            self.prefetch.remember(req, res.content)
            if entry is not None:
                self._report(self.results.shown(req, entry))

    def _count_guard(self, report: GuardReport) -> None:
        """Secrets blocked (by kind) and filters that changed or dropped a suggestion, for /metrics and the bench."""
        c = self.counters
        for kind in report.blocked:
            c["secrets_blocked"] += 1
            c[f"secrets_blocked_{kind}"] = c.get(f"secrets_blocked_{kind}", 0) + 1
        for name in report.changed:
            c[f"filter_{name}_changed"] = c.get(f"filter_{name}_changed", 0) + 1
        for name in report.dropped:
            c[f"filter_{name}_dropped"] = c.get(f"filter_{name}_dropped", 0) + 1
        if report.scan_ms:
            self.scan_ms.append(report.scan_ms)

    def _dropped(self, job: Job) -> None:
        if job.cancel_requested_at and job.dropped_at:
            self.drop_latencies_ms.append(max(0.0, job.dropped_at - job.cancel_requested_at) * 1e3)

    def _classical_result(self, req: CompletionRequest) -> CompletionResult:
        prefix = req.raw_prompt if req.raw_prompt is not None else req.prefix
        cands = self.classical.complete(prefix, req.suffix, n=max(1, req.n_cmpl)) if req.n_predict != 0 else []
        comps = [Completion(c, [], "eos") for c in cands] or [Completion("", [], "eos")]
        return CompletionResult(comps, model=self.model_name, source="classical", n_ctx=self.n_ctx)

    def _serve_classical(self, job: Job) -> None:
        res = self._classical_result(job.request)
        for i, c in enumerate(res.completions):
            job.emit(i, c.content)
        self.counters["classical_served"] += 1
        job.finish(res)

    def _deadline(self, job: Job) -> None:
        if job.done:
            return
        res = self._classical_result(job.request)
        res.deadline_missed = True
        # the model's partial stream (if any) stays as the events already sent; the result is the fallback,
        # delivered by the cancel itself (the worker lets go of the job at its next step boundary)
        if job.cancel(result=res):
            self.counters["deadline_missed"] += 1
            self.counters["classical_served"] += 1

    def cancel(self, request_id: str) -> bool:
        job = self._jobs.get(request_id)
        if job is None or job.done:
            return False
        job.cancel()
        self.counters["cancelled_explicit"] += 1
        return True

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = dict(self.counters)
        if self.backend is not None:
            for k, v in self.backend.counters.items():
                out[f"backend_{k}"] = v
            cache = getattr(self.backend, "cache", None)
            if cache is not None:
                s = cache.stats
                out.update(kv_cache_lookups=s.lookups, kv_cache_hits=s.hits, kv_cache_reused_tokens=s.reused_tokens,
                           kv_cache_evictions=s.evictions, kv_cache_entries=len(cache), kv_cache_bytes=cache.nbytes)
        out["active_requests"] = len(self._jobs)
        out["classical_files_indexed"] = self.classical.files_indexed
        return out
