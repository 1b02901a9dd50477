"""After the user accepts a suggestion, the next one is computed in the background (priority below every request
a user waits for), so that the request that comes once the editor has inserted it finds it in the result cache,
or follows it while it is still being computed. A request the prefetch cannot serve cancels it at once (a
cancelled job frees its seat at the next step boundary; its KV state stays in the prefix cache)."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ghostline.daemon.engine.resultcache import context_of, document_of, params_of
from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult, Job, new_request_id


class Prefetcher:
    def __init__(self, counters: dict[str, float], recent: int = 16):
        self.counters = counters
        counters.update(prefetch_started=0, prefetch_used=0, prefetch_cancelled=0)
        self._recent: OrderedDict[str, tuple[CompletionRequest, str]] = OrderedDict()
        self._limit = recent
        self._running: list[Job] = []

    def remember(self, req: CompletionRequest, content: str) -> None:
        """An answered suggestion: the one whose acceptance may be reported next."""
        self._recent[req.request_id] = (req, content)
        while len(self._recent) > self._limit:
            self._recent.popitem(last=False)

    def after_accept(self, request_id: str, engine: Any) -> bool:
        got = self._recent.pop(request_id, None)
        if got is None or not got[1] or params_of(got[0]) is None:
            return False
        req, content = got
        nxt = dataclasses.replace(req, request_id=new_request_id(), priority=-1, stream=False, extra=list(req.extra))
        if nxt.raw_prompt is None:
            nxt.prefix = req.prefix + content
        else:
            nxt.raw_prompt = req.raw_prompt + content
        self._running = [j for j in self._running if not j.done]
        self._running.append(engine.submit(nxt))
        self.counters["prefetch_started"] += 1
        return True

    def yield_to(self, req: CompletionRequest) -> Job | None:
        """A request a user waits for: the running prefetch made for exactly its place (it follows that one), and
        every other prefetch cancelled."""
        followed = None
        for job in self._running:
            if job.done:
                continue
            if followed is None and _same_place(job.request, req):
                followed = job
            else:
                job.cancel()
                self.counters["prefetch_cancelled"] += 1
        self._running = [followed] if followed is not None else []
        return followed

    def follow(self, prefetch: Job, job: Job, fallback: Callable[[], None]) -> None:
        """Answer `job` with the prefetch's suggestion when it is done (or from the backend if it fails)."""
        def done(fut: Any) -> None:
            res: CompletionResult = fut.result()
            if job.done:
                return
            if res.cancelled or res.error or not res.completions:
                fallback()
                return
            self.counters["prefetch_used"] += 1
            job.guard = None  # the prefetch's answer passed its own guard
            job.emit(0, res.content)
            job.finish(dataclasses.replace(res, completions=[Completion(res.content, [], "eos")], source="prefetch"))

        prefetch.add_done_callback(done)


def _same_place(a: CompletionRequest, b: CompletionRequest) -> bool:
    return (document_of(a) == document_of(b) and params_of(a) == params_of(b)
            and context_of(a) == context_of(b))
