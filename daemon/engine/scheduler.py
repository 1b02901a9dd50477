"""Which job the model works on, and when it lets go: the queue of submitted jobs, the `max_active` seats,
admission in arrival order, one decode round for every admitted job (batched where they can share a forward),
and cancellation -- a cancelled job is let go of at every step boundary, between prefill chunks of another job
and between decoder layers of a forward that does not compute it.

No torch here: the computing is the `Model`'s (daemon.engine.local.LocalBackend).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

from ghostline.daemon.engine.decoding import Decoding
from ghostline.daemon.engine.types import Completion, CompletionResult, Job

log = logging.getLogger("ghostline.daemon.engine")


class Model(Protocol):
    """What the scheduler drives (every call from the worker thread)."""

    name: str

    def admit(self, job: Job, static_free: bool) -> Decoding | None:
        """Prefill the job's prompt; its decoding state, or None when it is already answered (or let go of)."""

    def step(self, st: Decoding) -> bool:
        """One decode round for one job; True when it is finished (answered, or let go of)."""

    def step_batch(self, members: list[Decoding]) -> list[Decoding]:
        """One decode round for several batchable jobs; the ones that finished."""

    def complete(self, st: Decoding) -> None:
        """Answer the job with what it has (its result carries an error when one is set)."""

    def salvage(self, st: Decoding) -> None:
        """Keep a cancelled job's KV state for the next keystroke."""


class Scheduler:
    """The worker loop and the job lists it shares with the abort hook and the prefill (all in the worker
    thread). `submit` and `stop` are thread-safe."""

    def __init__(self, model: Model, counters: dict[str, float], *, max_active: int, batch_decode: bool):
        self.model = model
        self.counters = counters
        self.max_active = max_active
        self.batch_decode = batch_decode
        self.busy = False
        self.active: list[Decoding] = []  # admitted jobs
        self.waiting: tuple[list[Job], list[Job]] | None = None  # (pending, admitted this round, not prefilled yet)
        self._q: queue.Queue[Job | None] = queue.Queue()
        self._stop = threading.Event()

    def submit(self, job: Job) -> None:
        self._q.put(job)

    def stop(self) -> None:
        self._stop.set()
        self._q.put(None)

    def reset(self) -> None:
        self._stop.clear()

    # ------------------------------------------------------------------------------------------------ the loop
    def run(self) -> None:
        """Until stopped: take what was submitted, admit up to max_active jobs, advance every admitted job by one
        token. At the end, let go of everything still held."""
        active: list[Decoding] = []
        self.active = active  # seen by the abort hook (let_go_idle)
        pending: list[Job] = []
        while not self._stop.is_set():
            if not self._collect(pending, wait=not (active or pending)):
                continue
            new = self._seat(pending)
            if self._stop.is_set():
                break
            self._sweep(active)
            self.waiting = (pending, new)  # swept between prefill chunks of another job (_sweep_waiting)
            self._admit(new)
            self._step_all()
            self.busy = bool(active or pending)
        for st in active:
            if not st.released:
                st.released = True
                self.finish_cancelled(st.job, st)
        for job in pending:
            self.finish_cancelled(job, None)

    def _collect(self, pending: list[Job], wait: bool) -> bool:
        """Move the queue into `pending` (waiting a little when there is nothing to do). False: still nothing."""
        try:
            item = self._q.get(timeout=0.05) if wait else self._q.get_nowait()
        except queue.Empty:
            item = None
            if wait:
                return False
        while item is not None:
            pending.append(item)
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                item = None
        return True

    def _seat(self, pending: list[Job]) -> list[Job]:
        """Take jobs from `pending` for the free seats, in arrival order; a cancelled waiting job is let go of at
        once. A cancelled active job holds no seat: its cancel released it (Job), its row goes at the next sweep."""
        new: list[Job] = []
        seats = sum(1 for a in self.active if not a.job.cancelled)
        pending.sort(key=lambda j: -j.request.priority)  # background work (a prefetch) after everything else
        for job in list(pending):
            if job.cancelled:
                pending.remove(job)
                self.finish_cancelled(job, None)
            elif seats + len(new) < self.max_active:
                pending.remove(job)
                new.append(job)
        return new

    def _admit(self, new: list[Job]) -> None:
        while new:
            job = new.pop(0)
            if job.cancelled:
                self.finish_cancelled(job, None)
                continue
            self.busy = True
            try:
                st = self.model.admit(job, static_free=not any(a.static for a in self.active))
            except Exception as e:  # a bad request must not kill the worker
                log.exception("request %s failed", job.id)
                self.counters["errors"] += 1
                job.finish(CompletionResult([Completion()], model=self.model.name, error=f"{type(e).__name__}: {e}"))
                continue
            if st is not None:
                self.active.append(st)

    def _step_all(self) -> None:
        """One decode round: the batchable jobs in one forward (when there are two or more), the others alone."""
        batchable = [st for st in self.active if self.batch_decode and st.batchable]
        if len(batchable) >= 2:
            self._step_batch(batchable)
            batched = {id(st) for st in batchable}
        else:
            batched = set()
        for st in [a for a in self.active if id(a) not in batched]:
            try:
                done = self.model.step(st)
            except Exception as e:
                log.exception("request %s failed", st.job.id)
                self._fail(st, e)
                done = True
            if done:
                self.active.remove(st)

    def _step_batch(self, batchable: list[Decoding]) -> None:
        try:
            for st in self.model.step_batch(batchable):
                self.active.remove(st)
        except Exception as e:
            log.exception("batched decode failed")
            self.counters["errors"] += 1
            for st in batchable:
                if not st.job.done:
                    st.result.error = f"{type(e).__name__}: {e}"
                    self.model.complete(st)
                if st in self.active:
                    self.active.remove(st)

    def _fail(self, st: Decoding, e: Exception) -> None:
        self.counters["errors"] += 1
        st.result.error = f"{type(e).__name__}: {e}"
        self.model.complete(st)

    # ---------------------------------------------------------------------------------------------- letting go
    def sweep(self) -> None:
        """Between prefill chunks of a job being admitted: let go of the cancelled jobs, admitted or waiting."""
        self._sweep(self.active)
        self._sweep_waiting()

    def _sweep(self, active: list[Decoding]) -> None:
        """Drop every cancelled active job now (called between forwards): salvage its KV state into the prefix
        cache for the next keystroke, then let go. Its client was answered and its seat freed by the cancel
        itself (Job.cancel), so neither waits for this."""
        for st in [a for a in active if a.job.cancelled]:
            active.remove(st)
            self.let_go(st)

    def _sweep_waiting(self) -> None:
        """Between prefill chunks of one job: let go of the cancelled jobs still waiting for admission (queued,
        pending, or admitted in the same round behind the job being prefilled), so they are not held until that
        prefill ends."""
        if self.waiting is None:
            return
        pending, new = self.waiting
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is None:  # stop(): leave the sentinel for the loop
                self._q.put(None)
                break
            pending.append(item)
        for lst in (new, pending):
            for job in [j for j in lst if j.cancelled]:
                lst.remove(job)
                self.finish_cancelled(job, None)

    def let_go_idle(self, in_forward: tuple[Job, ...]) -> None:
        """Between decoder layers of any forward: let go of the cancelled jobs that forward does not compute
        (waiting for admission, or admitted and idle until this forward ends), instead of after it."""
        for st in self.active:
            if st.job.cancel_event.is_set() and not st.released and st.job not in in_forward:
                self.let_go(st)
        self._sweep_waiting()

    def let_go(self, st: Decoding) -> None:
        """Let go of a cancelled active job (once): salvage its KV state into the prefix cache for the next
        keystroke. Its client was answered and its seat freed by the cancel itself (Job.cancel)."""
        if st.released:
            return
        st.released = True
        self.model.salvage(st)
        self.finish_cancelled(st.job, st)

    def finish_cancelled(self, job: Job, st: Decoding | None) -> None:
        """The worker lets go of a cancelled job. Normally `Job.cancel` has answered it already (then this only
        marks it dropped); the result built here is delivered only when the job was not answered yet."""
        self.counters["cancelled"] += 1
        if job.done:
            job.drop()
            return
        res = st.result if st else CompletionResult([], model=self.model.name)
        if st:
            res.completions = st.completions("cancelled")
        res.cancelled = True
        job.finish(res)
