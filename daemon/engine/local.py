"""The in-process model backend: one worker thread owns a Hugging Face causal LM loaded from a local path and
serves FIM requests (prefix-cache reuse, chunked prefill, per-step cancellation, time bounds, streaming).

Its parts: `model` (loading, sampling, the static-cache fast path), `runner` (forward passes, KV state, speeds),
`scheduler` (jobs, seats, cancellation), `decoding` (one job's stop rules and streaming). This module composes
them and decides what each request gets: its prompt, what the prefix cache reuses, its first tokens, its answer.

torch and transformers are imported inside functions only: importing this module stays cheap.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from ghostline.daemon.engine.decoding import Decoding
from ghostline.daemon.engine.kvcache import PrefixCache
from ghostline.daemon.engine.model import LocalModel, ModelLoadError, sample
from ghostline.daemon.engine.prompt import PromptBuilder
from ghostline.daemon.engine.runner import ForwardAborted, ModelRunner, Prefill
from ghostline.daemon.engine.scheduler import Scheduler
from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult, Job

__all__ = ["LocalBackend", "LocalModel", "ModelLoadError"]

log = logging.getLogger("ghostline.daemon.engine")


class LocalBackend:
    """One worker thread owns the model. `submit(job)` is thread-safe; the worker admits queued jobs (prefill,
    in chunks, checking for cancellation between chunks) and then advances every active job by one token per
    round, checking for cancellation between decode steps. On the dynamic-cache path a forward is also abortable
    between decoder layers: once every row it computes belongs to a cancelled job, a pre-hook on the next layer
    raises, the KV cache is cut back to its length before that forward, and the jobs are dropped (a batched
    decode with any live row always completes). The static-cache GPU path (and its compiled decode step) keeps
    the step-boundary check only: its steps are short and a CUDA graph cannot stop halfway."""

    kind = "local"

    def __init__(
        self,
        lm: LocalModel,
        *,
        cache: PrefixCache | None = None,
        kv_reuse: bool = True,
        prefill_chunk: int = 1024,
        fast_path: bool | None = None,
        max_active: int = 8,
        batch_decode: bool = True,
        static_max_len: int = 8192,
        cpu_threads: int | None = None,
    ):
        _limit_cpu_threads(lm, cpu_threads)
        self.lm = lm
        self.cache = cache if cache is not None else PrefixCache()
        self.kv_reuse = kv_reuse
        self.builder = PromptBuilder(lm.fim, lm.encode)
        self.counters: dict[str, float] = {
            "requests": 0, "cancelled": 0, "prompt_tokens": 0, "prompt_tokens_reused": 0, "predicted_tokens": 0,
            "truncated": 0, "errors": 0,
        }
        self.runner = ModelRunner(lm, self.cache, self.counters, prefill_chunk=prefill_chunk, fast_path=fast_path,
                                  static_max_len=static_max_len)
        self.scheduler = Scheduler(self, self.counters, max_active=max_active, batch_decode=batch_decode)
        self.runner.between_layers = self.scheduler.let_go_idle
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.lm.name

    @property
    def n_ctx(self) -> int:
        return self.lm.n_ctx

    @property
    def fast_path(self) -> bool:
        """The static KV cache (and on CUDA its compiled decode step) for single-candidate requests."""
        return self.runner.fast_path

    @property
    def busy(self) -> bool:
        return self.scheduler.busy

    # ---------------------------------------------------------------------------------------------- lifecycle
    def start(self, warmup: bool = True) -> None:
        """Start the worker thread. With `warmup`, the worker first measures prefill/decode speed and (on the
        GPU fast path) compiles and captures the decode step -- in its own thread, where it will replay it;
        this returns when the worker is ready."""
        if self._thread is not None:
            return
        self.scheduler.reset()
        self.runner.install_abort_hooks()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(warmup, ready), name="ghostline-model", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        self.scheduler.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self.runner.remove_abort_hooks()

    def submit(self, job: Job) -> None:
        self.scheduler.submit(job)

    def chat_prompt(self, messages: list[dict[str, str]]) -> tuple[str, list[str]]:
        return self.lm.chat_prompt(messages)

    def _work(self, warmup: bool, ready: threading.Event) -> None:
        import torch

        if warmup:
            try:
                self.runner.warmup()
            except Exception:  # measured rates stay unknown; requests are still served
                log.exception("warm-up failed")
        ready.set()
        with torch.inference_mode():
            self.scheduler.run()

    # ---------------------------------------------------------------------------------------------- admission
    def admit(self, job: Job, static_free: bool) -> Decoding | None:
        """Build the job's prompt, reuse what the prefix cache holds of it, prefill the rest (letting go of
        cancelled jobs between chunks) and sample the first tokens. None when the job needs no decoding: it was
        cancelled meanwhile (the prefill's work is kept for the next keystroke), or only warms the cache."""
        req = job.request
        t0 = time.perf_counter()
        self.counters["requests"] += 1
        reuse = self._reuses(req)
        n_predict = req.n_predict if req.n_predict >= 0 else self.lm.n_ctx
        prompt, res = self._prompt(job, reuse, n_predict, t0)
        kv, n_reused = (self.cache.lookup(prompt, max_len=len(prompt) - 1) if reuse else (None, 0))
        rows = max(1, req.n_cmpl)
        use_static = (self.runner.fast_path and static_free and rows == 1
                      and len(prompt) + n_predict + 1 < self.runner.static_max_len)
        static = self.runner.static_decoder() if use_static else None
        pf = self.runner.prefill(job, prompt, n_reused, kv, static, between_chunks=self.scheduler.sweep)
        if pf.cancelled:
            self._cancel_prefill(job, res, prompt, pf, reuse)
            return None
        t1 = time.perf_counter()
        self._account_prefill(res, pf, len(prompt), t0, t1)
        first, cache, gen = self.runner.first_tokens(pf, rows, req)
        st = Decoding.start(job, res, prompt, rows, cache, static, first, gen, t0, t1)
        if n_predict == 0:
            self._warm_only(st)
            return None
        return st

    def _reuses(self, req: CompletionRequest) -> bool:
        """Whether the request reads and feeds the prefix cache (the engine's setting, the request's overrides)."""
        return req.use_cache is True or (self.kv_reuse and req.cache_prompt and req.use_cache is not False)

    def _prompt(self, job: Job, reuse: bool, n_predict: int, t0: float) -> tuple[list[int], CompletionResult]:
        """The prompt's tokens within the context window and the prefill time budget, and the job's result so far
        (a cancel answered from the cancelling side reports it)."""
        req = job.request
        budget_tokens = None
        rate = self.runner.prefill_ms_per_token
        if req.t_max_prompt_ms > 0 and rate > 0:
            budget_tokens = max(16, int((req.t_max_prompt_ms - self.runner.prefill_overhead_ms) / rate))
        built = self.builder.build(
            req, n_ctx=self.lm.n_ctx - max(1, min(n_predict, self.lm.n_ctx // 2)),
            new_token_budget=budget_tokens, reused=(self.cache.peek if reuse else None),
        )
        prompt = built.tokens or self.lm.encode("\n")
        res = CompletionResult([], model=self.name, n_ctx=self.lm.n_ctx, prompt_tokens=len(prompt),
                               truncated=built.truncated, queue_ms=(t0 - job.submitted_at) * 1e3)
        job.partial = res
        if built.truncated:
            self.counters["truncated"] += 1
        return prompt, res

    def _cancel_prefill(self, job: Job, res: CompletionResult, prompt: list[int], pf: Prefill, reuse: bool) -> None:
        res.prompt_n = pf.pos - pf.start
        if reuse:  # keep the work done so far: the next keystroke's prompt shares this prefix
            self.runner.save_prefill(prompt, pf)
        self.scheduler.finish_cancelled(job, None)

    def _account_prefill(self, res: CompletionResult, pf: Prefill, n_prompt: int, t0: float, t1: float) -> None:
        n_new = n_prompt - pf.start
        res.prompt_n = n_new
        res.tokens_reused = pf.start
        res.prompt_ms = (t1 - t0) * 1e3
        self.counters["prompt_tokens"] += n_new
        self.counters["prompt_tokens_reused"] += pf.start
        self.runner.note_prefill(n_new, res.prompt_ms, pf.chunk)

    def _warm_only(self, st: Decoding) -> None:
        """n_predict 0 (warm-up only): keep the prompt's KV for the next request and answer at once."""
        self._store(st, generated=False)
        res = st.result
        res.completions = [Completion("", [], "limit")]
        res.tokens_cached = len(st.prompt) - 1
        st.job.finish(res)

    # ----------------------------------------------------------------------------------------- decode rounds
    def step(self, st: Decoding) -> bool:
        """One decode round for one job on its own: consume the sampled tokens, then compute the next ones."""
        if self._consume(st):
            return True
        try:
            logits = self.runner.decode(st)
        except ForwardAborted:
            self._drop_aborted(st)
            return True
        st.next_tok = sample(logits, st.req, st.gen)
        return False

    def step_batch(self, members: list[Decoding]) -> list[Decoding]:
        """One decode round for several single-row jobs in one forward. Returns the jobs that finished."""
        finished = [st for st in members if self._consume(st)]
        live = [st for st in members if st not in finished]
        while live:
            if len(live) == 1:
                st = live[0]
                try:
                    st.next_tok = sample(self.runner.forward_single(st), st.req, st.gen)
                except ForwardAborted:
                    self._drop_aborted(st)
                    finished.append(st)
                return finished
            try:
                self.runner.forward_batch(live)
                return finished
            except ForwardAborted:
                # a row's job was cancelled mid-forward: drop it now (every job's own cache is untouched) and
                # redo the step for the others, who lose at most one forward
                gone = [st for st in live if st.job.cancelled]
                for st in gone:
                    self._drop_aborted(st)
                finished += gone
                live = [st for st in live if st not in gone]
        return finished

    def _consume(self, st: Decoding) -> bool:
        """Take the tokens sampled last round: stop rules, streaming. True when the job is finished (answered, or
        let go of when it was cancelled)."""
        if st.job.cancelled:
            self.scheduler.let_go(st)
            return True
        n_predict = st.req.n_predict if st.req.n_predict > 0 else self.lm.n_ctx
        if st.take(st.next_tok.tolist(), self.lm.stop_ids, self.lm.decode, n_predict, self.lm.n_ctx):
            self.complete(st)
            return True
        return False

    def _drop_aborted(self, st: Decoding) -> None:
        """A decode forward of `st` was aborted (its job is cancelled; its KV cache is back to the state before
        that forward): salvage the KV state and let go."""
        self.runner.note_aborted()
        self.scheduler.let_go(st)

    # -------------------------------------------------------------------------------------------------- answers
    def complete(self, st: Decoding) -> None:
        t = time.perf_counter()
        res = st.result
        res.predicted_n = sum(len(x) for x in st.ids)
        res.predicted_ms = (t - st.t_predict_start) * 1e3
        self.counters["predicted_tokens"] += res.predicted_n
        self.runner.note_decode(res.predicted_ms, st.n_steps)
        res.completions = st.completions()
        res.tokens_cached = self._store(st, generated=True)
        if st.job.first_token_at:
            res.ttft_ms = (st.job.first_token_at - st.job.submitted_at) * 1e3
        st.job.finish(res)

    def salvage(self, st: Decoding) -> None:
        self._store(st, generated=True)

    def _store(self, st: Decoding, generated: bool) -> int:
        """Put the KV state of the prompt (+ the first candidate's generated tokens) into the prefix cache."""
        if not self._reuses(st.req):
            return 0
        return self.runner.save(st.kv_tokens(generated), st)


def _limit_cpu_threads(lm: LocalModel, cpu_threads: int | None) -> None:
    import torch

    if lm.device.startswith("cuda"):
        return
    # On CPU, torch's default (one thread per core) leaves no core for the server and the worker's own Python,
    # and its threads' barriers stall whenever another process takes a core: keep one core free. Measured by
    # bench/daemon_bench.py on 2 busy cores: p50 TTFT 5.3 s with 2 threads, 10 ms with 1.
    if cpu_threads is None:
        cpu_threads = max(1, min(8, (os.cpu_count() or 2) - 1))
    if cpu_threads > 0:
        torch.set_num_threads(cpu_threads)
