"""Forward passes of the local model: chunked prefill into a dynamic KV cache (or, on the GPU fast path, a static
one), single and batched decode forwards, forwards that stop between decoder layers once the jobs they compute
are cancelled, KV state into the prefix cache, and the measured prefill/decode speeds.

Which job runs when is the scheduler's business (daemon.engine.scheduler); this module only computes.
torch and transformers are imported inside functions only: importing this module stays cheap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ghostline.daemon.engine.decoding import Decoding
from ghostline.daemon.engine.kvcache import KV, PrefixCache
from ghostline.daemon.engine.model import (
    LocalModel,
    StaticDecoder,
    cache_of,
    decoder_layers,
    sample,
    truncate_cache,
)
from ghostline.daemon.engine.types import CompletionRequest, Job

log = logging.getLogger("ghostline.daemon.engine")


class ForwardAborted(Exception):
    """Raised by the decoder-layer pre-hook: every row of the forward pass in flight belongs to a cancelled job."""


def kv_layers(cache: Any) -> KV:
    """A DynamicCache's (keys, values) per layer."""
    return [(layer.keys, layer.values) for layer in cache.layers]


@dataclass
class Prefill:
    """Where a prefill got to: its KV state (`cache`, or `static` on the fast path) covers `pos` tokens."""

    cache: Any  # DynamicCache, or None on the static path
    static: StaticDecoder | None
    start: int  # tokens reused from the prefix cache
    pos: int
    chunk: int  # tokens per forward
    logits: Any = None  # of the last prompt token
    cancelled: bool = False


class ModelRunner:
    """Computes for the worker thread, which alone calls it. On the dynamic-cache path a forward is abortable
    between decoder layers: once every row it computes belongs to a cancelled job, a pre-hook on the next layer
    raises ForwardAborted, the KV cache is cut back to its length before that forward. The static-cache GPU path
    (and its compiled decode step) is not: its steps are short and a CUDA graph cannot stop halfway."""

    def __init__(self, lm: LocalModel, cache: PrefixCache, counters: dict[str, float], *, prefill_chunk: int,
                 fast_path: bool | None, static_max_len: int):
        import torch

        self.lm = lm
        self.cache = cache
        self.counters = counters
        self.prefill_chunk = prefill_chunk
        # decode attention on a static cache spans its whole length: keep it no longer than typical prompts
        self.static_max_len = min(lm.n_ctx, static_max_len)
        on_cuda = lm.device.startswith("cuda") and torch.cuda.is_available()
        self.fast_path = on_cuda if fast_path is None else fast_path
        self.static_compile = on_cuda
        self._static: StaticDecoder | None = None
        self.prefill_ms_per_token = 0.0  # marginal cost of a prompt token (measured, then an EMA)
        self.prefill_overhead_ms = 0.0  # fixed cost of one forward call (measured at warm-up)
        self.decode_ms_per_token = 0.0
        # Called between decoder layers of every abortable forward with the jobs it computes (the scheduler lets
        # go of the other cancelled jobs there, instead of after the forward).
        self.between_layers: Callable[[tuple[Job, ...]], None] = lambda _jobs: None
        # While a forward runs, `_fwd_jobs` names the jobs whose rows it computes; the pre-hook raises once all
        # of them are cancelled (a batched decode: once any is; the others redo their step), so a cancelled job
        # stops costing compute within one layer instead of after the whole forward.
        self._fwd_jobs: tuple[Job, ...] | None = None
        self._fwd_abort_on_any = False
        self._hook_handles: list[Any] = []

    # ------------------------------------------------------------------------------------ abortable forwards
    def install_abort_hooks(self) -> None:
        import torch

        if self._hook_handles:
            return
        is_compiling = torch.compiler.is_compiling

        def check(_module: Any, _args: Any) -> None:
            # a constant under torch.compile: the compiled static-cache decode step carries no check
            if is_compiling():
                return
            jobs = self._fwd_jobs
            if jobs:
                self._between_layers(jobs)

        self._hook_handles = [layer.register_forward_pre_hook(check) for layer in decoder_layers(self.lm.model)]

    def remove_abort_hooks(self) -> None:
        for h in self._hook_handles:
            h.remove()
        self._hook_handles = []

    def _between_layers(self, jobs: tuple[Job, ...]) -> None:
        self.between_layers(jobs)
        if self._fwd_abort_on_any:
            if any(j.cancel_event.is_set() for j in jobs):
                raise ForwardAborted
            return
        if all(j.cancel_event.is_set() for j in jobs):
            raise ForwardAborted

    def forward(self, jobs: tuple[Job, ...], cache: Any, abort_on_any: bool = False, **kw: Any) -> Any:
        """One forward of the model on the dynamic-cache path, abortable between decoder layers once every job
        in `jobs` is cancelled, or any of them with `abort_on_any` (raises ForwardAborted; the caller restores
        the KV cache it passed in)."""
        self._fwd_jobs = jobs
        self._fwd_abort_on_any = abort_on_any
        try:
            return self.lm.call(cache, **kw)
        finally:
            self._fwd_jobs = None

    def _count_abort(self) -> None:
        self.counters["aborted_forwards"] = self.counters.get("aborted_forwards", 0) + 1

    # ------------------------------------------------------------------------------------------------ prefill
    def prefill(self, job: Job, prompt: list[int], n_reused: int, kv: KV | None, static: StaticDecoder | None,
                between_chunks: Callable[[], None]) -> Prefill:
        """Compute prompt[n_reused:] on top of `kv` (the reused prefix) in chunks, calling `between_chunks` before
        each. Stops when the job is cancelled: between chunks, or within one (its forward aborts between decoder
        layers and the KV cache goes back to its length before that chunk)."""
        from transformers import DynamicCache

        if static is not None:
            static.load_prefix(kv, n_reused)
            cache = None
        else:
            cache = DynamicCache(ddp_cache_data=kv) if kv is not None else DynamicCache()
        pf = Prefill(cache, static, n_reused, n_reused, self.chunk_size())
        rest = prompt[n_reused:]
        for i in range(0, len(rest), pf.chunk):
            between_chunks()
            if job.cancelled:
                pf.cancelled = True
                return pf
            chunk = rest[i : i + pf.chunk]
            try:
                pf.logits = self._prefill_chunk(pf, job, chunk)
            except ForwardAborted:
                pf.cancelled = True
                return pf
            pf.pos += len(chunk)
        self.sync()
        return pf

    def _prefill_chunk(self, pf: Prefill, job: Job, chunk: list[int]) -> Any:
        import torch

        if pf.static is not None:  # the static-cache (GPU) path is not abortable mid-chunk: chunks are short
            return pf.static.prefill(chunk)
        ids = torch.tensor([chunk], device=self.lm.device)
        position_ids = torch.arange(pf.pos, pf.pos + len(chunk), device=self.lm.device).unsqueeze(0)
        try:
            out = self.forward((job,), pf.cache, input_ids=ids, position_ids=position_ids, use_cache=True,
                               logits_to_keep=1)
        except ForwardAborted:  # cancelled during this chunk: back to the KV state before it
            truncate_cache(pf.cache, pf.pos)
            self._count_abort()
            raise
        pf.cache = cache_of(out)
        return out.logits[:, -1, :]

    def save_prefill(self, prompt: list[int], pf: Prefill) -> None:
        """Keep the work a cancelled prefill did: the next keystroke's prompt shares this prefix."""
        if pf.pos <= pf.start:
            return
        part = pf.static.export(pf.pos) if pf.static is not None else [
            (k[:, :, : pf.pos, :], v[:, :, : pf.pos, :]) for k, v in kv_layers(pf.cache)]
        self.cache.insert(np.asarray(prompt[: pf.pos]), part)

    def chunk_size(self) -> int:
        """Prefill chunk: ~3 ms of work at the measured rate, so a cancel waits at most that long; where one
        forward call alone costs more than that (Python overhead of small models on a busy CPU), a chunk's work
        matches the overhead, so chunking at most doubles a cold prefill (KV reuse makes most prefills one
        chunk anyway) while a cancel still waits only about two overheads."""
        if self.prefill_ms_per_token > 0:
            target = max(3.0, self.prefill_overhead_ms)
            return max(32, min(self.prefill_chunk, int(target / self.prefill_ms_per_token)))
        return self.prefill_chunk

    def first_tokens(self, pf: Prefill, rows: int, req: CompletionRequest) -> tuple[Any, Any, Any]:
        """(the first token of each of `rows` candidates -- distinct greedy ones are the top `rows` --, the KV
        cache widened to `rows` rows, the sampling generator)."""
        import torch
        from transformers import DynamicCache

        gen = None
        if req.temperature > 0:
            gen = torch.Generator(device=self.lm.device)
            gen.manual_seed(req.seed if req.seed is not None else int(time.time_ns() % 2**31))
        logits, cache = pf.logits, pf.cache
        if rows > 1:
            logits = logits.expand(rows, -1)
            if cache is not None:
                cache = DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
                                                     for k, v in kv_layers(cache)])
        if req.temperature <= 0 and rows > 1:
            first = torch.topk(logits[0:1], rows, dim=-1).indices[0]
        else:
            first = sample(logits, req, gen)
        return first, cache, gen

    # ------------------------------------------------------------------------------------------------ decode
    def decode(self, st: Decoding) -> Any:
        """The next-token logits of every row of `st` (raises ForwardAborted on the dynamic path, its KV cache
        back to its length before this forward)."""
        if st.static is not None:
            return st.static.decode(st.next_tok.view(1))
        return self.forward_single(st)

    def forward_single(self, st: Decoding) -> Any:
        import torch

        # every row (finished rows ride along; their output is ignored)
        ids = st.next_tok.view(st.rows, 1)
        n = st.kv_length
        pos = torch.full((st.rows, 1), n, device=self.lm.device)
        try:
            out = self.forward((st.job,), st.cache, input_ids=ids, position_ids=pos, use_cache=True)
        except ForwardAborted:
            truncate_cache(st.cache, n)
            raise
        st.cache = cache_of(out)
        return out.logits[:, -1, :]

    def forward_batch(self, live: list[Decoding]) -> None:
        """One decode forward over several single-row jobs, their KV states left-padded to a common length with
        an attention mask and per-row positions; sets each one's next token. Raises ForwardAborted (at the next
        decoder layer) as soon as any of them is cancelled; the batch's KV is a padded copy, so every job's own
        cache is untouched then."""
        import torch
        from transformers import DynamicCache

        lens = [st.kv_length for st in live]
        maxlen = max(lens)
        cache = DynamicCache(ddp_cache_data=_left_padded(live, lens, maxlen))
        mask = torch.ones((len(live), maxlen + 1), dtype=torch.long, device=self.lm.device)
        for i, n in enumerate(lens):
            mask[i, : maxlen - n] = 0
        ids = torch.stack([st.next_tok.view(()) for st in live]).view(len(live), 1)
        pos = torch.tensor(lens, device=self.lm.device).view(len(live), 1)
        out = self.forward(tuple(st.job for st in live), cache, abort_on_any=True, input_ids=ids,
                           attention_mask=mask, position_ids=pos, use_cache=True)
        logits = out.logits[:, -1, :]
        new = kv_layers(cache_of(out))
        for i, st in enumerate(live):
            pad = maxlen - lens[i]
            st.cache = DynamicCache(ddp_cache_data=[(k[i : i + 1, :, pad:, :], v[i : i + 1, :, pad:, :]) for k, v in new])
            st.next_tok = sample(logits[i : i + 1], st.req, st.gen)
        self.counters["batched_steps"] = self.counters.get("batched_steps", 0) + 1

    def note_aborted(self) -> None:
        """A decode forward was aborted (its KV cache is back to the state before it)."""
        self._count_abort()

    # ---------------------------------------------------------------------------------------------- KV state
    def save(self, tokens: list[int], st: Decoding) -> int:
        """Put the KV state of `st` for `tokens` (a prefix of what it covers) into the prefix cache; returns the
        number of tokens stored."""
        n = len(tokens)
        if st.static is not None:
            n = min(n, st.static.length)
            kv = st.static.export(n)
        elif st.cache is not None:
            kv = [(k[0:1, :, :n, :], v[0:1, :, :n, :]) for k, v in kv_layers(st.cache)]
            k0 = kv[0][0] if kv else None
            if k0 is not None and k0.untyped_storage().nbytes() > 1.5 * k0.numel() * k0.element_size():
                # a view into a bigger tensor (a batch, or n_cmpl rows): copy, so the cache's memory bound holds
                kv = [(k.clone(), v.clone()) for k, v in kv]
            if kv and kv[0][0].shape[2] < n:
                n = kv[0][0].shape[2]
                kv = [(k[:, :, :n, :], v[:, :, :n, :]) for k, v in kv]
        else:
            return 0
        if n <= 0:
            return 0
        self.cache.insert(np.asarray(tokens[:n]), kv)
        return n

    # ------------------------------------------------------------------------------------------------- speed
    def note_prefill(self, n_tokens: int, ms: float, chunk: int) -> None:
        """A prefill of `n_tokens` in chunks of `chunk` took `ms`: update the per-token rate (long ones only)."""
        if n_tokens < 128:
            return
        n_chunks = -(-n_tokens // chunk)
        rate = max(1e-4, (ms - n_chunks * self.prefill_overhead_ms) / n_tokens)
        self.prefill_ms_per_token = rate if self.prefill_ms_per_token == 0 else 0.7 * self.prefill_ms_per_token + 0.3 * rate

    def note_decode(self, ms: float, n_steps: int) -> None:
        if n_steps > 1:
            rate = ms / n_steps
            self.decode_ms_per_token = rate if self.decode_ms_per_token == 0 else 0.7 * self.decode_ms_per_token + 0.3 * rate

    def warmup(self) -> None:
        """Measure prefill and decode speed once (the prefill budget needs a rate) and, on the fast path,
        trigger compilation. The backend runs it in the worker thread."""
        import torch

        base = self.lm.encode("def main():\n    return 0\n" * 64) or [0]
        ids = (base * (256 // len(base) + 1))[:256]
        with torch.inference_mode():
            self._measure(ids)
            if self.fast_path:
                self._capture_static(ids[:64])

    def _measure(self, ids: list[int]) -> None:
        ids_small = ids[:32]
        t_small = t_big = dec = float("inf")
        for _ in range(3):  # best of three: the machine may be busy
            ts, _tok = self._timed_prefill(ids_small)
            tb, (cache, tok) = self._timed_prefill(ids)
            t1 = time.perf_counter()
            for _ in range(4):
                out = self.lm.call(cache, input_ids=tok.view(1, 1), use_cache=True)
                tok = out.logits[:, -1, :].argmax(-1)
            self.sync()
            dec = min(dec, (time.perf_counter() - t1) * 1e3 / 4)
            t_small, t_big = min(t_small, ts), min(t_big, tb)
        # time(n) ~ overhead + n * per_token (two-point fit)
        per_token = max((t_big - t_small) / (len(ids) - len(ids_small)), 1e-4)
        self.prefill_ms_per_token = per_token
        self.prefill_overhead_ms = max(0.0, t_small - len(ids_small) * per_token)
        self.decode_ms_per_token = dec

    def _timed_prefill(self, ids: list[int]) -> tuple[float, tuple[Any, Any]]:
        import torch
        from transformers import DynamicCache

        t0 = time.perf_counter()
        cache = DynamicCache()
        out = self.lm.call(cache, input_ids=torch.tensor([ids], device=self.lm.device), use_cache=True,
                           logits_to_keep=1)
        self.sync()
        return (time.perf_counter() - t0) * 1e3, (cache, out.logits[:, -1, :].argmax(-1))

    def _capture_static(self, ids: list[int]) -> None:
        st = self.static_decoder()
        try:
            for _ in range(3):  # compile and capture the decode step now, not on a user's keystroke
                st.load_prefix(None, 0)
                tok = st.prefill(ids).argmax(-1)
                for _ in range(4):
                    tok = st.decode(tok).argmax(-1)
            self.sync()
        except Exception as e:  # a compile failure must not take the daemon down: run the step eagerly
            log.warning("compiled decode step failed (%s); using the eager static-cache path", e)
            st.compiled = False
            st._step = st._decode_eager

    def sync(self) -> None:
        import torch

        if self.lm.device.startswith("cuda"):
            torch.cuda.synchronize()

    def static_decoder(self) -> StaticDecoder:
        if self._static is None:
            self._static = StaticDecoder(self.lm, self.static_max_len, compile=self.static_compile)
        return self._static


def _left_padded(live: list[Decoding], lens: list[int], maxlen: int) -> KV:
    """Every job's KV state per layer, left-padded to `maxlen` and stacked into one batch."""
    import torch

    per_job = [kv_layers(st.cache) for st in live]
    kv = []
    for li in range(len(per_job[0])):
        ks, vs = [], []
        for j, layers in enumerate(per_job):
            k, v = layers[li]
            pad = maxlen - lens[j]
            if pad:
                k = torch.nn.functional.pad(k, (0, 0, pad, 0))
                v = torch.nn.functional.pad(v, (0, 0, pad, 0))
            ks.append(k)
            vs.append(v)
        kv.append((torch.cat(ks, 0), torch.cat(vs, 0)))
    return kv
