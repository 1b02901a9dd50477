"""A backend that answers every request with scripted text, streamed in the given pieces: what a model would say,
without a model (the post-processing, the scanner and the caches are what the tests look at)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult, Job


class ScriptedBackend:
    kind = "scripted"
    n_ctx = 4096
    cache = None
    busy = False

    def __init__(self, answer: Callable[[CompletionRequest], list[str]] | list[str], *, stop_type: str = "eos"):
        self.answer = answer if callable(answer) else (lambda _req: list(answer))
        self.stop_type = stop_type
        self.counters: dict[str, float] = {"requests": 0}
        self.submitted: list[CompletionRequest] = []
        self.gate: asyncio.Event | None = None  # when set: each answer waits for it

    @property
    def name(self) -> str:
        return "scripted"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def submit(self, job: Job) -> None:
        self.counters["requests"] += 1
        self.submitted.append(job.request)
        job.loop.create_task(self._run(job))

    async def _run(self, job: Job) -> None:
        if self.gate is not None:
            await self.gate.wait()
        pieces = self.answer(job.request)
        for p in pieces:
            if job.cancelled:
                return
            job.emit(0, p)
            await asyncio.sleep(0)
        job.finish(CompletionResult([Completion("".join(pieces), [], self.stop_type)], model="scripted",
                                    source="model", predicted_n=len(pieces)))
